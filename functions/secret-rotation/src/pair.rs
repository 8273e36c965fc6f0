//! Which two users alternate. The pair is recorded in the secret when the function first makes
//! it (`"alternating_users": [original, clone]`, kept in every later version), never inferred
//! from a name alone: a real user that merely ends in `_clone` must not make the function reset
//! the password of an unrelated role without the suffix and hand it to the secret. A recorded
//! pair always has the shape the function makes (`<user>` and `<user>_clone`), so a forged record
//! can name no role but the clone's own original.

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
            Some([original, clone]) if !original.is_empty() && *clone == format!("{original}{CLONE_SUFFIX}") => {
                Ok(Some(UserPair { original: (*original).to_owned(), clone: (*clone).to_owned() }))
            }
            _ => Err(format!("\"{FIELD}\" must be [\"<user>\", \"<user>{CLONE_SUFFIX}\"]")),
        }
    }

    /// The pair `user` belongs to: the one the secret records; else `user` is the original of a
    /// new pair with `<user>_clone`. A user that itself ends in `_clone`, with no pair recorded,
    /// is refused: it may be the clone of an earlier rotation or a user of its own, and only the
    /// secret's owner can say which (by recording the pair, or by renaming the user).
    pub fn for_user(doc: &SecretDoc, user: &str) -> Result<UserPair, String> {
        if let Some(pair) = UserPair::recorded(doc)? {
            return match pair.alternate(user) {
                Some(_) => Ok(pair),
                None => Err(format!("the user {user:?} is not one of the secret's \"{FIELD}\"")),
            };
        }
        if let Some(original) = user.strip_suffix(CLONE_SUFFIX) {
            return Err(format!(
                "the user {user:?} ends in {CLONE_SUFFIX} and the secret records no \"{FIELD}\": if it alternates with \"{original}\", add \"{FIELD}\": [\"{original}\", \"{user}\"] to the secret; if it is a user of its own, add [\"{user}\", \"{user}{CLONE_SUFFIX}\"]"
            ));
        }
        Ok(UserPair { original: user.to_owned(), clone: format!("{user}{CLONE_SUFFIX}") })
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
        let refused = UserPair::for_user(&plain, "report_clone").unwrap_err();
        assert!(refused.contains("alternating_users") && refused.contains("\"report\""), "{refused}");
        let own = doc(r#"{"username":"report_clone","alternating_users":["report_clone","report_clone_clone"]}"#);
        assert_eq!(
            UserPair::for_user(&own, "report_clone").unwrap().alternate("report_clone"),
            Some("report_clone_clone")
        );
    }

    #[test]
    fn a_forged_record_can_name_only_the_clones_own_original() {
        for forged in [r#"["payroll","app"]"#, r#"["app","payroll"]"#, r#"["a","a"]"#, r#"["","_clone"]"#] {
            let text = format!(r#"{{"username":"app","alternating_users":{forged}}}"#);
            assert!(UserPair::recorded(&doc(&text)).is_err(), "{forged}");
        }
    }

    #[test]
    fn a_recorded_pair_is_kept_and_checked() {
        let mut pending = doc(r#"{"username":"app"}"#);
        let pair = UserPair::for_user(&pending, "app").unwrap();
        pair.record(&mut pending);
        assert_eq!(UserPair::recorded(&pending).unwrap(), Some(pair.clone()));
        assert_eq!(UserPair::for_user(&pending, "app_clone").unwrap(), pair);
        assert!(UserPair::for_user(&pending, "intruder").unwrap_err().contains("alternating_users"));
    }
}
