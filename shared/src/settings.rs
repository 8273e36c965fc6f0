//! The one way every function reads its settings: a lookup of environment variables (the
//! process environment at init, a closure in tests), with one rule per kind of value, so a
//! boolean or a number means the same in every function. An empty value means the default.
//! Errors name the variable and say what was expected; they never repeat a value that could be
//! a secret, since the variables read through here are settings, not credentials.

use std::str::FromStr;
use std::time::Duration;

/// Settings read through a lookup of variable names.
pub struct Lookup<F>(F);

impl<F: Fn(&str) -> Option<String>> Lookup<F> {
    pub fn new(lookup: F) -> Self {
        Lookup(lookup)
    }

    /// The variable's value exactly as set (for values where spaces count).
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// The variable's value, trimmed; `None` when unset or empty.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A boolean: `true`/`false`, `yes`/`no`, `1`/`0` or `on`/`off`, in any case.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        let Some(text) = self.text(name) else { return Ok(default) };
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(true),
            "false" | "no" | "0" | "off" => Ok(false),
            _ => Err(format!("{name} is {text:?}; expected true or false (also yes/no, 1/0, on/off)")),
        }
    }

    /// A value parsed by its `FromStr`; `expected` says what it should look like.
    pub fn parsed<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, String> {
        match self.text(name) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| format!("{name} is {text:?}; expected {expected}")),
        }
    }

    /// A whole number, 0 included.
    pub fn whole(&self, name: &str) -> Result<Option<u64>, String> {
        self.parsed(name, "a whole number")
    }

    /// A whole number above 0.
    pub fn positive(&self, name: &str) -> Result<Option<u64>, String> {
        match self.parsed::<u64>(name, "a whole number above 0")? {
            Some(0) => Err(format!("{name} is \"0\"; expected a whole number above 0")),
            other => Ok(other),
        }
    }

    /// A whole number above 0 that fits `T` (a count, a rate).
    pub fn positive_as<T: TryFrom<u64>>(&self, name: &str, default: T) -> Result<T, String> {
        match self.positive(name)? {
            None => Ok(default),
            Some(n) => T::try_from(n).map_err(|_| format!("{name} is {n}; that is too large")),
        }
    }

    /// A duration in whole seconds.
    pub fn seconds(&self, name: &str, default: Duration) -> Result<Duration, String> {
        Ok(self.whole(name)?.map_or(default, Duration::from_secs))
    }

    /// A duration in whole milliseconds.
    pub fn millis(&self, name: &str, default: Duration) -> Result<Duration, String> {
        Ok(self.whole(name)?.map_or(default, Duration::from_millis))
    }
}

/// Reads a function's settings from the process environment, with the parser every function
/// also exposes for tests (`Settings::from_lookup`).
pub fn from_env<T>(parse: impl FnOnce(fn(&str) -> Option<String>) -> Result<T, String>) -> Result<T, String> {
    parse(env_var)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &'static str, value: &'static str) -> Lookup<impl Fn(&str) -> Option<String>> {
        Lookup::new(move |n: &str| (n == name).then(|| value.to_owned()))
    }

    #[test]
    fn one_boolean_rule_and_empty_means_the_default() {
        for (text, value) in [("true", true), ("Yes", true), ("1", true), ("ON", true), ("false", false), ("no", false)]
        {
            assert_eq!(one("X", text).flag("X", !value), Ok(value), "{text}");
        }
        assert_eq!(one("X", "0").flag("X", true), Ok(false));
        assert_eq!(one("X", "off").flag("X", true), Ok(false));
        assert_eq!(one("X", "  ").flag("X", true), Ok(true));
        assert_eq!(one("Y", "true").flag("X", false), Ok(false));
        assert!(one("X", "maybe").flag("X", false).unwrap_err().starts_with("X is \"maybe\""));
    }

    #[test]
    fn numbers_name_the_variable_when_wrong() {
        assert_eq!(one("N", " 7 ").whole("N"), Ok(Some(7)));
        assert_eq!(one("N", "").whole("N"), Ok(None));
        assert!(one("N", "lots").whole("N").unwrap_err().contains("N is \"lots\"; expected a whole number"));
        assert!(one("N", "0").positive("N").unwrap_err().contains("above 0"));
        assert_eq!(one("N", "3").positive_as::<u32>("N", 1), Ok(3));
        assert!(one("N", "70000").positive_as::<u16>("N", 1).unwrap_err().contains("too large"));
        assert_eq!(one("N", "2").seconds("N", Duration::ZERO), Ok(Duration::from_secs(2)));
        assert_eq!(one("M", "2").millis("N", Duration::from_millis(5)), Ok(Duration::from_millis(5)));
    }
}
