//! Lambda's process environment, built here and nowhere else: the tests, the demo and the
//! cold-start bench all start function binaries through [`spawn_function`].

use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::KillOnDrop;

/// The variables Lambda gives a function process (those the runtime client, the SDK and our
/// logging read), pointed at the Runtime API at `runtime_api` (`host:port`, or with a path).
pub fn lambda_env(runtime_api: &str, function_name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Where a function process's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Into the caller's (a test shows the function's logs when it fails).
    Inherit,
    /// Nowhere (a bench measures the process, not the terminal).
    Discard,
    /// Both into this file (a test reads what the function logged).
    File(std::path::PathBuf),
    /// Both appended to this file, created if need be: one log shared by several processes
    /// (the demo's).
    Append(std::path::PathBuf),
}

/// Starts `binary` as Lambda starts a function: an environment of Lambda's variables and
/// `extra_env` only (PATH kept), polling the Runtime API at `runtime_api`.
pub fn spawn_function(
    binary: &Path,
    runtime_api: &str,
    function_name: &str,
    extra_env: &[(String, String)],
    output: Output,
) -> KillOnDrop {
    let mut command = Command::new(binary);
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in lambda_env(runtime_api, function_name).iter().chain(extra_env) {
        command.env(key, value);
    }
    command.stdin(Stdio::null());
    match output {
        Output::Inherit => {}
        Output::Discard => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Output::File(path) => {
            let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
            let copy = file.try_clone().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            command.stdout(file).stderr(copy);
        }
        Output::Append(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            let copy = file.try_clone().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            command.stdout(file).stderr(copy);
        }
    }
    let child = command.spawn().unwrap_or_else(|e| panic!("starting {} (is it built?): {e}", binary.display()));
    KillOnDrop(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_runtime_api_and_the_function() {
        let env: std::collections::HashMap<_, _> = lambda_env("127.0.0.1:9001", "spot-drainer").into_iter().collect();
        assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "spot-drainer");
        assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/spot-drainer");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    }
}
