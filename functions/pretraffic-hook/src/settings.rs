//! The versions to check, read once at init: one variable per function of the suite, each the
//! ARN of the version the deploy just published (`!Ref <Function>.Version` in the template), or
//! empty when that function is not deployed.

use std::time::Duration;

use shared::settings::Lookup;

/// Which function a version belongs to: it decides the probes it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    HelloApi,
    SpotDrainer,
    /// The same binary with lifecycle settings: spot-drainer's probes and a lifecycle action.
    SpotDrainerLifecycle,
    SecretRotation,
    MqPoller,
}

/// The variable naming each function's new version, and the function it is.
pub const VERSION_VARIABLES: [(&str, FunctionKind); 5] = [
    ("HELLO_API_VERSION", FunctionKind::HelloApi),
    ("SPOT_DRAINER_VERSION", FunctionKind::SpotDrainer),
    ("SPOT_DRAINER_LIFECYCLE_VERSION", FunctionKind::SpotDrainerLifecycle),
    ("SECRET_ROTATION_VERSION", FunctionKind::SecretRotation),
    ("MQ_POLLER_VERSION", FunctionKind::MqPoller),
];

/// A published version to invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: FunctionKind,
    /// `arn:<partition>:lambda:<region>:<account>:function:<name>:<version number>`.
    pub version_arn: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Vec<Target>,
    /// How long one probe may wait for its answer (`PROBE_TIMEOUT_SECONDS`, default 30): a
    /// version that hangs on an event it should refuse at once fails.
    pub probe_timeout: Duration,
}

const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

impl Settings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let lookup = Lookup::new(lookup);
        let mut targets = Vec::new();
        for (variable, kind) in VERSION_VARIABLES {
            let Some(arn) = lookup.text(variable) else { continue };
            check_version_arn(variable, &arn)?;
            targets.push(Target { kind, version_arn: arn });
        }
        if targets.is_empty() {
            let names: Vec<&str> = VERSION_VARIABLES.iter().map(|(name, _)| *name).collect();
            return Err(format!("no version to check: set at least one of {}", names.join(", ")));
        }
        let probe_timeout = lookup.seconds("PROBE_TIMEOUT_SECONDS", DEFAULT_PROBE_TIMEOUT)?;
        if probe_timeout.is_zero() {
            return Err("PROBE_TIMEOUT_SECONDS is \"0\"; expected a whole number above 0".into());
        }
        Ok(Settings { targets, probe_timeout })
    }
}

/// A version ARN, not a function name or an alias: invoking `$LATEST` or `live` would check
/// other code than the deploy is about to move traffic to.
fn check_version_arn(variable: &str, arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let is_version = parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && !parts[6].is_empty()
        && !parts[7].is_empty()
        && parts[7].bytes().all(|b| b.is_ascii_digit());
    if is_version {
        Ok(())
    } else {
        Err(format!("{variable} is {arn:?}; expected a published version's ARN (…:function:<name>:<number>)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    const VERSION: &str = "arn:aws:lambda:us-east-1:123456789012:function:ops-hello-api:7";

    #[test]
    fn each_set_variable_is_a_version_to_check_and_empty_ones_are_functions_not_deployed() {
        let read = settings(&[("HELLO_API_VERSION", VERSION), ("MQ_POLLER_VERSION", "")]).expect("valid");
        assert_eq!(read.targets, [Target { kind: FunctionKind::HelloApi, version_arn: VERSION.into() }]);
        assert_eq!(read.probe_timeout, DEFAULT_PROBE_TIMEOUT);
    }

    #[test]
    fn an_alias_latest_or_plain_name_is_refused_with_the_variable_named() {
        for wrong in [
            "arn:aws:lambda:us-east-1:123456789012:function:ops-hello-api:live",
            "arn:aws:lambda:us-east-1:123456789012:function:ops-hello-api:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:ops-hello-api",
            "ops-hello-api",
        ] {
            let error = settings(&[("SPOT_DRAINER_VERSION", wrong)]).expect_err(wrong);
            assert!(error.starts_with("SPOT_DRAINER_VERSION is"), "{error}");
        }
    }

    #[test]
    fn nothing_to_check_is_a_setting_error_not_a_pass() {
        let error = settings(&[]).expect_err("no versions");
        assert!(error.contains("HELLO_API_VERSION") && error.contains("MQ_POLLER_VERSION"), "{error}");
        assert!(settings(&[("HELLO_API_VERSION", VERSION), ("PROBE_TIMEOUT_SECONDS", "0")]).is_err());
    }
}
