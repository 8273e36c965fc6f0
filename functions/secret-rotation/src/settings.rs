//! The function's settings, read once at init from its environment.

use crate::engine::DbSettings;
use crate::password::PasswordPolicy;

/// How a database secret is rotated (`ROTATION_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Alternating users when the secret has `masterarn`, else single user.
    #[default]
    Auto,
    /// The user changes its own password, even when the secret has `masterarn` (CDK writes
    /// `masterarn` into single-user secrets too).
    Single,
    /// Alternating users; a secret without `masterarn` is refused.
    Alternating,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub password_policy: PasswordPolicy,
    pub db: DbSettings,
    pub strategy: Strategy,
    /// The field of a generic secret that is rotated (`GENERIC_FIELD`, default `password`).
    pub generic_field: String,
    /// How often finishSecret asks whether the replica regions are in sync.
    pub replication_poll: std::time::Duration,
}

const DEFAULT_GENERIC_FIELD: &str = "password";
const DEFAULT_REPLICATION_POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            password_policy: PasswordPolicy::default(),
            db: DbSettings::default(),
            strategy: Strategy::default(),
            generic_field: DEFAULT_GENERIC_FIELD.into(),
            replication_poll: DEFAULT_REPLICATION_POLL,
        }
    }
}

impl Settings {
    /// The password variables, `ROTATION_STRATEGY`, `DB_CA_BUNDLE`,
    /// `DB_CONNECT_TIMEOUT_SECONDS` and `DB_STATEMENT_TIMEOUT_SECONDS` (both default 5).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let password_policy = PasswordPolicy::from_lookup(&lookup)?;
        let env = shared::settings::Lookup::new(lookup);
        let defaults = DbSettings::default();
        let seconds = |name: &str, default: std::time::Duration| -> Result<std::time::Duration, String> {
            Ok(env.positive(name)?.map_or(default, std::time::Duration::from_secs))
        };
        let db = DbSettings {
            ca_bundle: shared::tls::ExtraBundle::from_lookup("DB_CA_BUNDLE", |name| env.text(name)),
            connect_timeout: seconds("DB_CONNECT_TIMEOUT_SECONDS", defaults.connect_timeout)?,
            statement_timeout: seconds("DB_STATEMENT_TIMEOUT_SECONDS", defaults.statement_timeout)?,
            ..defaults
        };
        let strategy = match env.text("ROTATION_STRATEGY").map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("auto") => Strategy::Auto,
            Some("single") => Strategy::Single,
            Some("alternating") => Strategy::Alternating,
            Some(other) => return Err(format!("ROTATION_STRATEGY is {other:?}; expected auto, single or alternating")),
        };
        let generic_field = env.text("GENERIC_FIELD").unwrap_or_else(|| DEFAULT_GENERIC_FIELD.into());
        Ok(Settings { password_policy, db, strategy, generic_field, replication_poll: DEFAULT_REPLICATION_POLL })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strategy_is_auto_unless_set() {
        let strategy = |value: Option<&str>| {
            Settings::from_lookup(|n| (n == "ROTATION_STRATEGY").then(|| value.map(str::to_owned)).flatten())
                .map(|s| s.strategy)
        };
        assert_eq!(strategy(None), Ok(Strategy::Auto));
        assert_eq!(strategy(Some("Single")), Ok(Strategy::Single));
        assert_eq!(strategy(Some("alternating")), Ok(Strategy::Alternating));
        assert!(strategy(Some("both")).unwrap_err().contains("ROTATION_STRATEGY"));
    }
}
