//! cargo-lambda's local Runtime API (`cargo lambda watch --only-lambda-apis`), with the function
//! binaries started by us, and `cargo lambda invoke` to send events: the local runtime a user runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::lambda_env::{spawn_function, Output};
use crate::paths::venv_bin;
use crate::process::{free_port, wait_for_port, KillOnDrop};

pub struct CargoLambda {
    port: u16,
    /// Where `watch`, the functions and `invoke` write ([`CargoLambda::start_logging_to`]).
    log: Option<PathBuf>,
    _watch: KillOnDrop,
}

impl CargoLambda {
    pub fn start() -> CargoLambda {
        let port = free_port();
        let mut child = Command::new(venv_bin("cargo-lambda"))
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "-P", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cargo lambda watch (run the README's setup)");
        wait_for_port(port, Duration::from_secs(60), "cargo lambda watch", &mut child);
        CargoLambda { port, log: None, _watch: KillOnDrop(child) }
    }

    /// As [`CargoLambda::start`], with everything but the answers appended to `log` (created if
    /// need be): `cargo lambda watch`'s output, the output of the functions [`start_function`]
    /// starts, and what `cargo lambda invoke` prints besides the answer (its error report and
    /// banner), so that a terminal shows only the answers. [`invoke`]'s `Err` is then the
    /// function's error alone (`errorType: errorMessage`).
    ///
    /// [`start_function`]: CargoLambda::start_function
    /// [`invoke`]: CargoLambda::invoke
    pub fn start_logging_to(log: &Path) -> CargoLambda {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()))
        };
        let port = free_port();
        let child = Command::new(venv_bin("cargo-lambda"))
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "-P", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(open())
            .stderr(open())
            .spawn()
            .expect("starting cargo lambda watch (run the README's setup)");
        // Guarded before the wait: a watch that never listens is stopped, not left behind.
        let mut watch = KillOnDrop(child);
        wait_for_port(port, Duration::from_secs(60), "cargo lambda watch", &mut watch.0);
        CargoLambda { port, log: Some(log.to_owned()), _watch: watch }
    }

    /// Starts a function binary against the runtime API, with `extra_env` on top of Lambda's.
    /// cargo-lambda routes `cargo lambda invoke ... _` to the function named `_`.
    pub fn start_function(&self, binary: &Path, extra_env: &[(String, String)]) -> KillOnDrop {
        let runtime_api = format!("http://127.0.0.1:{}/.rt", self.port);
        let output = match &self.log {
            Some(log) => Output::Append(log.clone()),
            None => Output::Inherit,
        };
        spawn_function(binary, &runtime_api, "_", extra_env, output)
    }

    /// `cargo lambda invoke --data-file`, bounded by `timeout` since it hangs on a dead function.
    /// Returns what the function answered (or the runtime's error report).
    pub fn invoke(&self, data_file: &Path) -> Result<String, String> {
        let output = Command::new("timeout")
            .arg("60")
            .arg(venv_bin("cargo-lambda"))
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P", &self.port.to_string(), "--data-file"])
            .arg(data_file)
            .arg("_")
            .output()
            .map_err(|e| format!("running cargo lambda invoke: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if let Some(log) = &self.log {
            let note = format!("--- cargo lambda invoke {}: {}\n", data_file.display(), output.status);
            let written = std::fs::OpenOptions::new().create(true).append(true).open(log).and_then(|mut file| {
                file.write_all(note.as_bytes())?;
                if !stderr.is_empty() {
                    writeln!(file, "{stderr}")?;
                }
                Ok(())
            });
            if let Err(e) = written {
                return Err(format!("writing {}: {e}", log.display()));
            }
            return if output.status.success() {
                Ok(stdout)
            } else {
                Err(function_error(&stdout, &stderr, output.status))
            };
        }
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{stderr}"))
        }
    }
}

/// The function's error out of `cargo lambda invoke`'s report, which reads
/// `Error: <errorType>`, a blank line, `× <errorMessage>` (wrapped on `│` lines), then its
/// banner: `errorType: errorMessage`.
fn function_error(stdout: &str, stderr: &str, status: std::process::ExitStatus) -> String {
    if status.code() == Some(124) {
        return "no answer within 60 s (cargo lambda invoke timed out)".to_owned();
    }
    let mut kind = None;
    let mut message: Vec<&str> = Vec::new();
    for line in stderr.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Error:").filter(|_| kind.is_none() && message.is_empty()) {
            kind = Some(rest.trim());
        } else if let Some(rest) = line.strip_prefix('×').filter(|_| message.is_empty()) {
            message.push(rest.trim());
        } else if !message.is_empty() {
            match line.trim_start_matches(['│', ' ']) {
                "" => break,
                more => message.push(more),
            }
        }
    }
    // The report wraps at 80 columns, at a space (dropped) or after a slash or hyphen (kept).
    let message = message.iter().fold(String::new(), |mut joined, part| {
        if !joined.is_empty() && !joined.ends_with(['/', '-']) {
            joined.push(' ');
        }
        joined.push_str(part);
        joined
    });
    match (kind.filter(|kind| !kind.is_empty()), message) {
        (Some(kind), message) if !message.is_empty() => format!("{kind}: {message}"),
        (Some(kind), _) => kind.to_owned(),
        (None, message) if !message.is_empty() => message,
        _ => {
            let first = stdout.lines().chain(stderr.lines()).map(str::trim).find(|line| !line.is_empty());
            first.map(str::to_owned).unwrap_or_else(|| format!("cargo lambda invoke failed: {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::function_error;

    fn failed(code: i32) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn the_function_error_without_the_report_around_it() {
        let stderr = "Error: DatabaseTlsFailed\n\n  \u{d7} setSecret for arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/\n  \u{2502} app/postgres-ROClsZ: TLS with 127.0.0.1:18865 failed: error performing TLS\n  \u{2502} handshake; invalid peer certificate: UnknownIssuer\n\n  Was this behavior unexpected?\n  Start a thread in https://github.com/cargo-lambda/cargo-lambda/discussions";
        assert_eq!(
            function_error("", stderr, failed(1)),
            "DatabaseTlsFailed: setSecret for arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/app/postgres-ROClsZ: TLS with 127.0.0.1:18865 failed: error performing TLS handshake; invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn a_timeout_or_a_bare_failure_is_named() {
        assert!(function_error("", "", failed(124)).contains("no answer within 60 s"));
        assert_eq!(function_error("", "Error: MalformedEvent\n", failed(1)), "MalformedEvent");
        assert_eq!(function_error("", "", failed(2)), "cargo lambda invoke failed: exit status: 2");
    }
}
