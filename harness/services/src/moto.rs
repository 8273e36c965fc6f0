//! moto's server (PyPI `moto[server]`), the stand-in for the AWS APIs.

use std::process::{Command, Stdio};
use std::time::Duration;

use harness_runtime::paths::venv_bin;
use harness_runtime::process::{free_port, wait_for_listener, KillOnDrop};

pub const REGION: &str = "us-east-1";

/// One moto server on its own port: every test gets an empty account.
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    _process: KillOnDrop,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with("127.0.0.1", &[])
    }

    /// A server listening on `host`, one of this machine's addresses: the Docker bridge's for
    /// `sam local`'s containers, which cannot reach the machine's loopback.
    pub fn start_on(host: &str) -> Moto {
        Moto::start_with(host, &[])
    }

    /// A server that enforces IAM after its first `actions` requests (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`): those stage users and policies, every later request must
    /// be signed by a user whose policies allow it. moto matches a statement's `Resource` against
    /// `*` only, so a statement naming an ARN allows nothing there.
    pub fn start_enforcing_iam_after(actions: u32) -> Moto {
        Moto::start_with("127.0.0.1", &[("INITIAL_NO_AUTH_ACTION_COUNT", &actions.to_string())])
    }

    fn start_with(host: &str, env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let binary = venv_bin("moto_server");
        let mut child = Command::new(&binary)
            .args(["-H", host, "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} (run the README's setup): {e}", binary.display()));
        wait_for_listener(host, port, Duration::from_secs(60), "moto_server", &mut child);
        Moto { port, endpoint: format!("http://{host}:{port}"), _process: KillOnDrop(child) }
    }

    /// The environment a function process needs to reach this server through the SDK's
    /// standard variables.
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env_at(&self.endpoint)
    }
}

/// The environment that sends a process's AWS calls to `endpoint` (moto, or a stand-in of the
/// harness), with the region and throwaway credentials.
pub fn aws_env_at(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[cfg(feature = "clients")]
impl Moto {
    /// SDK configuration pointed at this server, with throwaway credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }
}
