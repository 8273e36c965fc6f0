//! The extension's settings: the names AWS's Parameters and Secrets Lambda Extension reads (so a
//! function's configuration carries over unchanged), plus ours, prefixed `SECRETS_CACHE_`. A bad
//! value is reported to Lambda through `init/error` (see `lifecycle`), never guessed around.

use std::time::Duration;

use shared::settings::Lookup;

use crate::key::{self, Key};

/// AWS's limit for both TTLs: five minutes.
pub const MAX_TTL: Duration = Duration::from_secs(300);
/// AWS's limit for the cache size.
pub const MAX_CACHE_SIZE: usize = 1000;
/// The longest the first `next` waits for the prefetch: Lambda's init has 10 s in all, and the
/// runtime's and the function's init must fit beside it.
pub const MAX_PREFETCH_DEADLINE: Duration = Duration::from_millis(8000);
/// The longest an entry is served stale: an hour past its TTL is already an outage to page on.
pub const MAX_STALE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` (2773).
    pub port: u16,
    /// `SECRETS_MANAGER_TTL`, seconds (300, at most 300; 0 caches nothing).
    pub secret_ttl: Duration,
    /// `SSM_PARAMETER_STORE_TTL`, seconds (300, at most 300; 0 caches nothing).
    pub parameter_ttl: Duration,
    /// `PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED` (true).
    pub cache_enabled: bool,
    /// `PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE` (1000, at most 1000; 0 caches nothing, as AWS's).
    pub cache_size: usize,
    /// `PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS` (3): more at once are answered 429.
    pub max_connections: usize,
    /// `SECRETS_CACHE_IDLE_CONNECTION_MS` (10000): a connection that sends no request for this
    /// long is closed, so idle kept-alive connections do not hold the places of the cap.
    pub idle_connection: Duration,
    /// `PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL` (info): debug, info, warn, error or none.
    pub log_level: LogLevel,
    /// `SECRETS_MANAGER_TIMEOUT_MILLIS` (0: the SDK's own timeouts).
    pub secrets_timeout: Option<Duration>,
    /// `SSM_PARAMETER_STORE_TIMEOUT_MILLIS` (0: the SDK's own timeouts).
    pub parameters_timeout: Option<Duration>,
    /// `SECRETS_CACHE_PREFETCH`: what to fetch during init.
    pub prefetch: Vec<Key>,
    /// `SECRETS_CACHE_PREFETCH_DEADLINE_MS` (1500): how long the first `next` waits for it.
    pub prefetch_deadline: Duration,
    /// `SECRETS_CACHE_STALE_MAX_SECONDS` (300): how long past its TTL an entry is still served
    /// while Secrets Manager or Parameter Store cannot be reached.
    pub stale_max: Duration,
}

impl Settings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let vars = Lookup::new(lookup);
        let ttl = |name: &str| -> Result<Duration, String> {
            let ttl = vars.seconds(name, MAX_TTL)?;
            if ttl > MAX_TTL {
                return Err(format!("{name} is {}; expected at most 300 seconds", ttl.as_secs()));
            }
            Ok(ttl)
        };
        let timeout = |name: &str| -> Result<Option<Duration>, String> {
            Ok(Some(vars.millis(name, Duration::ZERO)?).filter(|d| !d.is_zero()))
        };
        // 0 is AWS's documented "no caching", not an error.
        let cache_size = vars.whole("PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE")?.unwrap_or(MAX_CACHE_SIZE as u64);
        if cache_size > MAX_CACHE_SIZE as u64 {
            return Err(format!("PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE is {cache_size}; expected at most 1000"));
        }
        let cache_size = cache_size as usize;
        let prefetch = match vars.text("SECRETS_CACHE_PREFETCH") {
            None => Vec::new(),
            Some(list) => key::prefetch_list(&list).map_err(|e| format!("SECRETS_CACHE_PREFETCH: {e}"))?,
        };
        Ok(Settings {
            port: vars.positive_as::<u16>("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", 2773)?,
            secret_ttl: ttl("SECRETS_MANAGER_TTL")?,
            parameter_ttl: ttl("SSM_PARAMETER_STORE_TTL")?,
            cache_enabled: vars.flag("PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED", true)?,
            cache_size,
            max_connections: vars.positive_as::<usize>("PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS", 3)?,
            idle_connection: match vars.millis("SECRETS_CACHE_IDLE_CONNECTION_MS", Duration::from_secs(10))? {
                zero if zero.is_zero() => return Err("SECRETS_CACHE_IDLE_CONNECTION_MS is 0; expected above 0".into()),
                idle => idle,
            },
            log_level: log_level(vars.text("PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL"))?,
            secrets_timeout: timeout("SECRETS_MANAGER_TIMEOUT_MILLIS")?,
            parameters_timeout: timeout("SSM_PARAMETER_STORE_TIMEOUT_MILLIS")?,
            prefetch,
            prefetch_deadline: at_most(
                "SECRETS_CACHE_PREFETCH_DEADLINE_MS",
                vars.millis("SECRETS_CACHE_PREFETCH_DEADLINE_MS", Duration::from_millis(1500))?,
                MAX_PREFETCH_DEADLINE,
            )?,
            stale_max: at_most(
                "SECRETS_CACHE_STALE_MAX_SECONDS",
                vars.seconds("SECRETS_CACHE_STALE_MAX_SECONDS", Duration::from_secs(300))?,
                MAX_STALE,
            )?,
        })
    }
}

/// `value`, unless it is above `max` (told in the unit the variable is written in).
fn at_most(name: &str, value: Duration, max: Duration) -> Result<Duration, String> {
    if value <= max {
        return Ok(value);
    }
    if !name.ends_with("_MS") {
        Err(format!("{name} is {}; expected at most {} seconds", value.as_secs(), max.as_secs()))
    } else {
        Err(format!("{name} is {}; expected at most {} ms", value.as_millis(), max.as_millis()))
    }
}

fn log_level(text: Option<String>) -> Result<LogLevel, String> {
    let Some(text) = text else { return Ok(LogLevel::Info) };
    match text.to_ascii_lowercase().as_str() {
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" => Ok(LogLevel::Warn),
        "error" => Ok(LogLevel::Error),
        "none" => Ok(LogLevel::None),
        _ => Err(format!(
            "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL is {text:?}; expected debug, info, warn, error or none"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_defaults_are_aws_s() {
        let s = parse(&[]).expect("defaults");
        assert_eq!((s.port, s.secret_ttl, s.parameter_ttl), (2773, MAX_TTL, MAX_TTL));
        assert_eq!((s.cache_enabled, s.cache_size, s.max_connections), (true, 1000, 3));
        assert_eq!((s.log_level, s.secrets_timeout, s.parameters_timeout), (LogLevel::Info, None, None));
        assert!(s.prefetch.is_empty());
        assert_eq!(s.prefetch_deadline, Duration::from_millis(1500));
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        for (name, value, says) in [
            ("SECRETS_MANAGER_TTL", "301", "at most 300"),
            ("SSM_PARAMETER_STORE_TTL", "soon", "whole number"),
            ("PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE", "1001", "at most 1000"),
            ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "70000", "too large"),
            ("PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS", "0", "above 0"),
            ("PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL", "loud", "expected debug"),
            ("SECRETS_CACHE_PREFETCH", "a,,b", "empty"),
            ("SECRETS_CACHE_STALE_MAX_SECONDS", "3601", "at most 3600 seconds"),
            ("SECRETS_CACHE_PREFETCH_DEADLINE_MS", "8001", "at most 8000 ms"),
            ("SECRETS_CACHE_STALE_MAX_SECONDS", "18446744073709551615", "at most 3600 seconds"),
        ] {
            let err = parse(&[(name, value)]).expect_err(name);
            assert!(err.starts_with(name) && err.contains(says), "{name}: {err}");
        }
    }

    #[test]
    fn a_cache_size_of_zero_is_aws_s_no_caching() {
        let s = parse(&[("PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE", "0")]).expect("0 is allowed");
        assert_eq!(s.cache_size, 0);
    }

    #[test]
    fn zero_timeouts_mean_the_sdk_s_own() {
        let s = parse(&[("SECRETS_MANAGER_TIMEOUT_MILLIS", "0"), ("SSM_PARAMETER_STORE_TIMEOUT_MILLIS", "250")])
            .expect("timeouts");
        assert_eq!((s.secrets_timeout, s.parameters_timeout), (None, Some(Duration::from_millis(250))));
    }
}
