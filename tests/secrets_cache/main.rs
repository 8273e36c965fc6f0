//! The secrets-cache extension, built, beside a built function (`secrets-reader-function`), in
//! one execution environment run by the harness's Runtime API with its Extensions API
//! (`harness_runtime::sandbox`), against moto's Secrets Manager and Parameter Store through the
//! AWS front (latency, outages, counts per operation).
//!
//! - `prefetch`: the function's read during its own init is served from the prefetch.
//! - `refresh`: a rotation is picked up after the TTL with one `DescribeSecret` and one fetch;
//!   an outage is served stale up to the bound, then answered with an error.
//! - `safety`: the token, the loopback address, the connection cap, no value in any output,
//!   `SHUTDOWN` met in time, a bad setting reported through `init/error`.
//! - `revoked`: a secret scheduled for deletion, and entries read by version, stop being
//!   served once they are no longer readable.
//! - `python`: a standard-library Python client reads as it would from AWS's extension.
//! - `iam`: a refresh under exactly the actions the template grants mq-poller's role.
//! - `mq_poller`: mq-poller's broker secret through the extension, and straight from Secrets
//!   Manager after a refused login.

mod iam;
mod mq_poller;
mod prefetch;
mod python;
mod refresh;
mod revoked;
mod safety;

use std::path::PathBuf;
use std::time::Duration;

use harness_runtime::lambda_env::Output;
use harness_runtime::paths::function_binary;
use harness_runtime::process::free_port;
use harness_runtime::sandbox::Sandbox;
use harness_services::aws_front::AwsFront;
use harness_services::moto::Moto;
use serde_json::{json, Value};

/// The session token the environment gets, and so the one requests must carry.
pub const TOKEN: &str = "session-token-for-the-tests";

/// moto behind the front, and clients to stage what the extension will read.
pub struct Scene {
    pub front: AwsFront,
    pub sm: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub port: u16,
    pub log: PathBuf,
    moto: Moto,
}

impl Scene {
    pub async fn start(latency: Duration) -> Scene {
        Scene::on(Moto::start(), latency).await
    }

    pub async fn on(moto: Moto, latency: Duration) -> Scene {
        let front = AwsFront::start(moto.port, latency, Vec::new()).await;
        let config = moto.sdk_config().await;
        let log = std::env::temp_dir().join(format!("secrets-cache-{}-{}.log", std::process::id(), free_port()));
        Scene {
            sm: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            front,
            port: free_port(),
            log,
            moto,
        }
    }

    /// Lambda's environment for both processes: moto through the front, the token, the port.
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let overridden = |k: &String| k == "AWS_ENDPOINT_URL" || extra.iter().any(|(name, _)| name == k);
        let mut env: Vec<(String, String)> = self.moto.env().into_iter().filter(|(k, _)| !overridden(k)).collect();
        env.push(("AWS_ENDPOINT_URL".into(), self.front.endpoint()));
        if !extra.iter().any(|(name, _)| *name == "AWS_SESSION_TOKEN") {
            env.push(("AWS_SESSION_TOKEN".into(), TOKEN.into()));
        }
        env.push(("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT".into(), self.port.to_string()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// The extension and the function, through init.
    pub async fn sandbox(&self, extra: &[(&str, &str)]) -> Sandbox {
        let extension = function_binary("secrets-cache");
        Sandbox::start(
            &[("secrets-cache", extension.as_path())],
            &function_binary("secrets-reader-function"),
            "reader",
            &self.env(extra),
            Output::Append(self.log.clone()),
        )
        .await
        .expect("the sandbox starts")
    }

    /// A parameter of `kind` in Parameter Store (straight to moto).
    pub async fn parameter(&self, name: &str, value: &str, kind: aws_sdk_ssm::types::ParameterType) {
        self.ssm.put_parameter().name(name).value(value).r#type(kind).send().await.expect("put_parameter");
    }

    pub async fn secret(&self, name: &str, value: &str) -> String {
        let out = self.sm.create_secret().name(name).secret_string(value).send().await.expect("create_secret");
        out.version_id().expect("version").to_owned()
    }

    /// A Secrets Manager client that goes through the front (counted), as a function's would.
    pub async fn front_client(&self) -> aws_sdk_secretsmanager::Client {
        let config = self.moto.sdk_config().await;
        let config = aws_sdk_secretsmanager::config::Builder::from(&config).endpoint_url(self.front.endpoint()).build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    /// What the extension's process and the function's wrote.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn calls(&self, operation: &str) -> usize {
        self.front.counts().forwarded.get(operation).copied().unwrap_or(0)
    }
}

/// One read by the function: `(status, body)`.
pub async fn read(sandbox: &Sandbox, path: &str) -> (u64, Value) {
    read_with(sandbox, json!({ "path": path })).await
}

/// Reads `path` every 20 ms until `done` holds for the answer, `tries` reads at most (room for a
/// refresh against moto on a loaded machine); returns the last answer.
pub async fn read_until(
    sandbox: &Sandbox,
    path: &str,
    tries: usize,
    done: impl Fn(&(u64, Value)) -> bool,
) -> (u64, Value) {
    let mut answer = read(sandbox, path).await;
    for _ in 0..tries {
        if done(&answer) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer = read(sandbox, path).await;
    }
    answer
}

pub async fn read_with(sandbox: &Sandbox, event: Value) -> (u64, Value) {
    let answer = sandbox.invoke(&event, Duration::from_secs(30)).await.response();
    (answer["status"].as_u64().unwrap_or(0), answer["body"].clone())
}

pub fn secret_path(id: &str) -> String {
    format!("/secretsmanager/get?secretId={id}")
}
