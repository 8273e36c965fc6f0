//! cargo-lambda's local Runtime API (`cargo lambda watch --only-lambda-apis`), with the function
//! binaries started by us, and `cargo lambda invoke` to send events: the local runtime a user runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::lambda_env::{spawn_function, Output};
use crate::paths::venv_bin;
use crate::process::{free_port, wait_for_port, KillOnDrop};

pub struct CargoLambda {
    port: u16,
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
        CargoLambda { port, _watch: KillOnDrop(child) }
    }

    /// Starts a function binary against the runtime API, with `extra_env` on top of Lambda's.
    /// cargo-lambda routes `cargo lambda invoke ... _` to the function named `_`.
    pub fn start_function(&self, binary: &Path, extra_env: &[(String, String)]) -> KillOnDrop {
        let runtime_api = format!("http://127.0.0.1:{}/.rt", self.port);
        spawn_function(binary, &runtime_api, "_", extra_env, Output::Inherit)
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
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{stderr}"))
        }
    }
}
