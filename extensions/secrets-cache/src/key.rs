//! What a request asks for, as the cache's key: a secret at a stage or a version, or a parameter
//! at its latest, a version or a label, decrypted or not. The same key from a prefetch and from a
//! request, so the function's first read finds the prefetched entry (or waits on its fetch).

/// The stage a secret is read at when none is named, as `GetSecretValue` does.
pub const CURRENT: &str = "AWSCURRENT";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Secret { id: String, at: Version },
    Parameter { name: String, at: Option<Selector>, decrypt: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// A staging label: what it points at moves on rotation.
    Stage(String),
    /// A version id: never changes.
    Id(String),
    /// A version id that must still carry a staging label (`GetSecretValue` with both, as AWS's
    /// extension passes them): the value never changes, but the label may move off it, and the
    /// read is then refused.
    IdAtStage { id: String, stage: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// A parameter version number: never changes.
    Version(u64),
    /// A parameter label: can be moved.
    Label(String),
}

impl Key {
    /// Whether the entry can never change (a secret's version id, a parameter's version): its
    /// refresh skips the "did it move?" check, but still reads it (it can be deleted or denied).
    pub fn pinned(&self) -> bool {
        matches!(
            self,
            Key::Secret { at: Version::Id(_) | Version::IdAtStage { .. }, .. }
                | Key::Parameter { at: Some(Selector::Version(_)), .. }
        )
    }

    /// `/secretsmanager/get?secretId=&versionId=&versionStage=`.
    pub fn secret_from_query(query: &str) -> Result<Key, String> {
        let (mut id, mut version_id, mut stage) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "secretId" => &mut id,
                "versionId" => &mut version_id,
                "versionStage" => &mut stage,
                _ => continue,
            };
            *slot = Some(value.into_owned()).filter(|v| !v.is_empty());
        }
        let id = id.ok_or("secretId is required")?;
        let at = match (version_id, stage) {
            (Some(id), Some(stage)) => Version::IdAtStage { id, stage },
            (Some(version), None) => Version::Id(version),
            (None, stage) => Version::Stage(stage.unwrap_or_else(|| CURRENT.to_owned())),
        };
        Ok(Key::Secret { id, at })
    }

    /// `/systemsmanager/parameters/get?name=&version=|label=&withDecryption=`.
    pub fn parameter_from_query(query: &str) -> Result<Key, String> {
        let (mut name, mut version, mut label, mut decrypt) = (None, None, None, None);
        for (field, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match field.as_ref() {
                "name" => &mut name,
                "version" => &mut version,
                "label" => &mut label,
                "withDecryption" => &mut decrypt,
                _ => continue,
            };
            *slot = Some(value.into_owned()).filter(|v| !v.is_empty());
        }
        let name = name.ok_or("name is required")?;
        let at = match (version, label) {
            (Some(_), Some(_)) => return Err("give version or label, not both".to_owned()),
            (Some(v), None) => Some(Selector::Version(v.parse().map_err(|_| "version is not a whole number")?)),
            (None, Some(label)) => Some(Selector::Label(label)),
            (None, None) => None,
        };
        let decrypt = match decrypt.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err("withDecryption is true or false".to_owned()),
        };
        Ok(Key::Parameter { name, at, decrypt })
    }

    /// The name Parameter Store's `GetParameter` takes: `name`, `name:version` or `name:label`.
    pub fn parameter_name(name: &str, at: &Option<Selector>) -> String {
        match at {
            None => name.to_owned(),
            Some(Selector::Version(v)) => format!("{name}:{v}"),
            Some(Selector::Label(label)) => format!("{name}:{label}"),
        }
    }
}

/// `SECRETS_CACHE_PREFETCH`: comma-separated; `id` or `id@STAGE` for a secret, `ssm:name` for a
/// parameter (read decrypted, as a function reading a `SecureString` asks for it).
pub fn prefetch_list(list: &str) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("an empty item (two commas in a row, or one at an end)".to_owned());
        }
        let key = match item.strip_prefix("ssm:") {
            Some("") => return Err("ssm: names no parameter".to_owned()),
            Some(name) => Key::Parameter { name: name.to_owned(), at: None, decrypt: true },
            None => match item.rsplit_once('@') {
                Some((id, stage)) if !id.is_empty() && !stage.is_empty() => {
                    Key::Secret { id: id.to_owned(), at: Version::Stage(stage.to_owned()) }
                }
                Some(_) => return Err(format!("{item:?} is not id@STAGE")),
                None => Key::Secret { id: item.to_owned(), at: Version::Stage(CURRENT.to_owned()) },
            },
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, stage: &str) -> Key {
        Key::Secret { id: id.to_owned(), at: Version::Stage(stage.to_owned()) }
    }

    #[test]
    fn a_prefetched_secret_and_a_plain_read_are_one_key() {
        assert_eq!(Key::secret_from_query("secretId=db%2Fmain"), Ok(secret("db/main", CURRENT)));
        assert_eq!(prefetch_list("db/main").unwrap(), vec![secret("db/main", CURRENT)]);
        assert_eq!(Key::secret_from_query("secretId=a&versionStage=AWSPREVIOUS"), Ok(secret("a", "AWSPREVIOUS")));
        let pinned = Key::secret_from_query("secretId=a&versionId=v1").unwrap();
        assert!(pinned.pinned());
        assert!(Key::secret_from_query("versionId=v1").is_err());
        // Both, as GetSecretValue takes them: a version that must still carry the label.
        let both = Key::secret_from_query("secretId=a&versionId=v1&versionStage=AWSCURRENT").unwrap();
        assert_eq!(
            both,
            Key::Secret { id: "a".into(), at: Version::IdAtStage { id: "v1".into(), stage: CURRENT.into() } }
        );
        assert!(both.pinned(), "its value never changes; each refresh reads it, which fails once the label moved");
    }

    #[test]
    fn parameters_take_a_version_or_a_label() {
        let key = Key::parameter_from_query("name=%2Fapp%2Furl&withDecryption=true").unwrap();
        assert_eq!(key, Key::Parameter { name: "/app/url".into(), at: None, decrypt: true });
        let key = Key::parameter_from_query("name=p&version=3").unwrap();
        assert!(key.pinned());
        assert_eq!(Key::parameter_name("p", &Some(Selector::Version(3))), "p:3");
        assert_eq!(Key::parameter_name("p", &Some(Selector::Label("blue".into()))), "p:blue");
        assert!(Key::parameter_from_query("name=p&version=3&label=x").is_err());
        assert!(Key::parameter_from_query("name=p&version=three").is_err());
        assert!(Key::parameter_from_query("name=p&withDecryption=maybe").is_err());
    }

    #[test]
    fn the_prefetch_list_names_secrets_stages_and_parameters() {
        let keys = prefetch_list(" a , b@AWSPENDING, ssm:/app/url ,a").unwrap();
        assert_eq!(
            keys,
            vec![
                secret("a", CURRENT),
                secret("b", "AWSPENDING"),
                Key::Parameter { name: "/app/url".into(), at: None, decrypt: true }
            ]
        );
        for bad in ["a,", "ssm:", "a@", "@X"] {
            assert!(prefetch_list(bad).is_err(), "{bad}");
        }
    }
}
