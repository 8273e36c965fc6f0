//! The new password's policy, read from the same variables as AWS's rotation functions.

use aws_sdk_secretsmanager::Client;

use crate::error::RotationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub length: i64,
    /// `:` breaks .pgpass files, `/ @ " ' \` break connection strings and shells.
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            length: 32,
            exclude_characters: ":/@\"'\\".into(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            require_each_included_type: true,
        }
    }
}

impl PasswordPolicy {
    /// `PASSWORD_LENGTH`, `EXCLUDE_CHARACTERS`, `EXCLUDE_NUMBERS`, `EXCLUDE_PUNCTUATION`,
    /// `EXCLUDE_UPPERCASE`, `EXCLUDE_LOWERCASE`, `REQUIRE_EACH_INCLUDED_TYPE`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let env = shared::settings::Lookup::new(lookup);
        let d = PasswordPolicy::default();
        let length = match env.parsed::<i64>("PASSWORD_LENGTH", "a number from 1 to 4096")? {
            None => d.length,
            Some(n) if (1..=4096).contains(&n) => n,
            Some(n) => return Err(format!("PASSWORD_LENGTH is \"{n}\"; expected a number from 1 to 4096")),
        };
        Ok(PasswordPolicy {
            length,
            // Not trimmed: a space may be one of the characters to exclude.
            exclude_characters: env.raw("EXCLUDE_CHARACTERS").unwrap_or(d.exclude_characters),
            exclude_numbers: env.flag("EXCLUDE_NUMBERS", d.exclude_numbers)?,
            exclude_punctuation: env.flag("EXCLUDE_PUNCTUATION", d.exclude_punctuation)?,
            exclude_uppercase: env.flag("EXCLUDE_UPPERCASE", d.exclude_uppercase)?,
            exclude_lowercase: env.flag("EXCLUDE_LOWERCASE", d.exclude_lowercase)?,
            require_each_included_type: env.flag("REQUIRE_EACH_INCLUDED_TYPE", d.require_each_included_type)?,
        })
    }

    /// A new password from `GetRandomPassword`.
    pub async fn generate(&self, client: &Client, secret_id: &str) -> Result<String, RotationError> {
        let output = client
            .get_random_password()
            .password_length(self.length)
            .exclude_characters(&self.exclude_characters)
            .exclude_numbers(self.exclude_numbers)
            .exclude_punctuation(self.exclude_punctuation)
            .exclude_uppercase(self.exclude_uppercase)
            .exclude_lowercase(self.exclude_lowercase)
            .require_each_included_type(self.require_each_included_type)
            .send()
            .await
            .map_err(|e| crate::versions::sm_error("GetRandomPassword", secret_id, &e))?;
        output.random_password().map(str::to_owned).ok_or_else(|| RotationError::SecretsManager {
            operation: "GetRandomPassword",
            secret_id: secret_id.to_owned(),
            message: "no password in the answer".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_exclude_what_breaks_pgpass_and_urls() {
        let policy = PasswordPolicy::from_lookup(|_| None).unwrap();
        assert_eq!(policy, PasswordPolicy::default());
        assert!(policy.exclude_characters.contains(':'));
        let custom = PasswordPolicy::from_lookup(|n| match n {
            "PASSWORD_LENGTH" => Some("20".into()),
            "EXCLUDE_PUNCTUATION" => Some("TRUE".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((custom.length, custom.exclude_punctuation), (20, true));
        assert!(PasswordPolicy::from_lookup(|n| (n == "PASSWORD_LENGTH").then(|| "0".into())).is_err());
        for (text, value) in [("yes", true), ("No", false), ("1", true), ("0", false), ("False", false)] {
            let policy = PasswordPolicy::from_lookup(|n| (n == "EXCLUDE_NUMBERS").then(|| text.into())).expect(text);
            assert_eq!(policy.exclude_numbers, value, "{text}");
        }
        let err = PasswordPolicy::from_lookup(|n| (n == "EXCLUDE_NUMBERS").then(|| "maybe".into())).unwrap_err();
        assert!(err.contains("EXCLUDE_NUMBERS"), "{err}");
    }
}
