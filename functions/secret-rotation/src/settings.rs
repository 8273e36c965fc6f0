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
    /// How many servers of a `hosts` secret a step works on at once (`HOST_CONCURRENCY`).
    pub host_concurrency: usize,
    /// Whether a failed step puts the AWSCURRENT password back where it changed, and clears
    /// AWSPENDING after a refusal that no retry can pass (`ROLLBACK_ON_FAILURE`, default true).
    pub rollback_on_failure: bool,
}

const DEFAULT_GENERIC_FIELD: &str = "password";
const DEFAULT_REPLICATION_POLL: std::time::Duration = std::time::Duration::from_secs(1);
const DEFAULT_HOST_CONCURRENCY: usize = 4;
/// As many as a secret may list: more would only queue.
const MAX_HOST_CONCURRENCY: usize = crate::secret::MAX_SERVERS;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            password_policy: PasswordPolicy::default(),
            db: DbSettings::default(),
            strategy: Strategy::default(),
            generic_field: DEFAULT_GENERIC_FIELD.into(),
            replication_poll: DEFAULT_REPLICATION_POLL,
            host_concurrency: DEFAULT_HOST_CONCURRENCY,
            rollback_on_failure: true,
        }
    }
}

impl Settings {
    /// The password variables, `ROTATION_STRATEGY`, `DB_CA_BUNDLE`,
    /// `DB_CONNECT_TIMEOUT_SECONDS` and `DB_STATEMENT_TIMEOUT_SECONDS` (both default 5),
    /// `GENERIC_FIELD`, `HOST_CONCURRENCY` (1 to 64, default 4) and `ROLLBACK_ON_FAILURE`.
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
        let host_concurrency = env.positive_as("HOST_CONCURRENCY", DEFAULT_HOST_CONCURRENCY)?;
        if host_concurrency > MAX_HOST_CONCURRENCY {
            return Err(format!("HOST_CONCURRENCY is {host_concurrency}; at most {MAX_HOST_CONCURRENCY}"));
        }
        let rollback_on_failure = env.flag("ROLLBACK_ON_FAILURE", true)?;
        Ok(Settings {
            password_policy,
            db,
            strategy,
            generic_field,
            replication_poll: DEFAULT_REPLICATION_POLL,
            host_concurrency,
            rollback_on_failure,
        })
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

    #[test]
    fn host_concurrency_and_rollback_have_defaults_and_bounds() {
        let settings = |name: &'static str, value: &'static str| {
            Settings::from_lookup(move |n| (n == name).then(|| value.to_owned()))
        };
        let defaults = Settings::from_lookup(|_| None).unwrap();
        assert_eq!((defaults.host_concurrency, defaults.rollback_on_failure), (4, true));
        assert_eq!(settings("HOST_CONCURRENCY", "1").unwrap().host_concurrency, 1);
        assert!(settings("HOST_CONCURRENCY", "0").unwrap_err().contains("HOST_CONCURRENCY"));
        assert!(settings("HOST_CONCURRENCY", "65").unwrap_err().contains("64"));
        assert!(!settings("ROLLBACK_ON_FAILURE", "false").unwrap().rollback_on_failure);
        assert!(settings("ROLLBACK_ON_FAILURE", "maybe").unwrap_err().contains("ROLLBACK_ON_FAILURE"));
    }
}
