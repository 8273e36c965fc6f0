//! Which two users alternate. The pair is recorded in the secret when the function first makes
//! it (`"alternating_users": [original, clone]`, kept in every later version), never inferred
//! from a name alone: a real user that merely ends in `_clone` must not make the function reset
//! the password of an unrelated role without the suffix and hand it to the secret.

use serde_json::Value;

use crate::secret::SecretDoc;

pub const CLONE_SUFFIX: &str = "_clone";
const FIELD: &str = "alternating_users";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPair {
    /// The user whose privileges the clone copies.
    pub original: String,
    pub clone: String,
}

impl UserPair {
    /// The pair the secret records, if it records one.
    pub fn recorded(doc: &SecretDoc) -> Result<Option<UserPair>, String> {
        let Some(value) = doc.field(FIELD) else { return Ok(None) };
        let names: Option<Vec<&str>> = value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect());
        match names.as_deref() {
            Some([original, clone]) if !original.is_empty() && !clone.is_empty() && original != clone => {
                Ok(Some(UserPair { original: (*original).to_owned(), clone: (*clone).to_owned() }))
            }
            _ => Err(format!("\"{FIELD}\" is not a list of two different user names")),
        }
    }

    /// The pair `user` belongs to: the one the secret records; else the one an earlier rotation
    /// made before pairs were recorded (the user is `<name>_clone` and the previous version's
    /// user is `<name>`, so the secret's own history says the function made it); else `user`
    /// is the original of a new pair with `<user>_clone`, whatever its name ends with.
    pub fn for_user(doc: &SecretDoc, user: &str, previous_user: Option<&str>) -> Result<UserPair, String> {
        if let Some(pair) = UserPair::recorded(doc)? {
            return match pair.alternate(user) {
                Some(_) => Ok(pair),
                None => Err(format!("the user {user:?} is not one of the secret's \"{FIELD}\"")),
            };
        }
        let made_earlier = user.strip_suffix(CLONE_SUFFIX).filter(|original| previous_user == Some(*original));
        Ok(match made_earlier {
            Some(original) => UserPair { original: original.to_owned(), clone: user.to_owned() },
            None => UserPair { original: user.to_owned(), clone: format!("{user}{CLONE_SUFFIX}") },
        })
    }

    /// The other user of the pair, if `user` is one of them.
    pub fn alternate(&self, user: &str) -> Option<&str> {
        if user == self.original {
            Some(&self.clone)
        } else if user == self.clone {
            Some(&self.original)
        } else {
            None
        }
    }

    pub fn record(&self, doc: &mut SecretDoc) {
        doc.set_field(FIELD, Value::from(vec![self.original.clone(), self.clone.clone()]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Origin;

    fn doc(text: &str) -> SecretDoc {
        SecretDoc::parse(text, Origin { secret_id: "s", stage: "AWSCURRENT" }).unwrap()
    }

    #[test]
    fn a_name_ending_in_clone_is_no_pair_without_the_secrets_word() {
        let plain = doc(r#"{"username":"report_clone"}"#);
        let pair = UserPair::for_user(&plain, "report_clone", None).unwrap();
        assert_eq!((pair.original.as_str(), pair.clone.as_str()), ("report_clone", "report_clone_clone"));
        // The previous version names the original: the function made this pair before.
        let pair = UserPair::for_user(&plain, "report_clone", Some("report")).unwrap();
        assert_eq!(pair.alternate("report_clone"), Some("report"));
        let pair = UserPair::for_user(&plain, "report_clone", Some("someone")).unwrap();
        assert_eq!(pair.original, "report_clone");
    }

    #[test]
    fn a_recorded_pair_is_kept_and_checked() {
        let mut pending = doc(r#"{"username":"app"}"#);
        let pair = UserPair::for_user(&pending, "app", None).unwrap();
        pair.record(&mut pending);
        assert_eq!(UserPair::recorded(&pending).unwrap(), Some(pair.clone()));
        assert_eq!(UserPair::for_user(&pending, "app_clone", None).unwrap(), pair);
        assert!(UserPair::for_user(&pending, "intruder", None).unwrap_err().contains("alternating_users"));
        let bad = doc(r#"{"alternating_users":["a","a"]}"#);
        assert!(UserPair::recorded(&bad).is_err());
    }
}
