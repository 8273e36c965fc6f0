//! A stand-in for what the PreTraffic hook calls and moto cannot serve: Lambda's `Invoke` of a
//! published version (moto's Lambda needs Docker to run code) and CodeDeploy's
//! `PutLifecycleEventHookExecutionStatus` (moto has no CodeDeploy). Each version ARN is served by
//! a real function binary under its own local Runtime API, so a probe gets what the build would
//! answer; each verdict reported is recorded. Pointed at as the versions' own AWS endpoint too,
//! it records any other AWS call (a probe must cause none) and answers it with a 500.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_runtime::runtime_api::{Answer, RuntimeApi};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::aws_front::{read_message, Request};

/// How long one invocation may take before the stand-in gives up on it.
const INVOKE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Recorded {
    versions: BTreeMap<String, Arc<RuntimeApi>>,
    invoked: Vec<String>,
    verdicts: Vec<Value>,
    others: Vec<String>,
}

pub struct DeployStandIn {
    pub port: u16,
    recorded: Arc<Mutex<Recorded>>,
    task: tokio::task::JoinHandle<()>,
}

impl DeployStandIn {
    /// A stand-in serving no version yet (the versions' processes need its endpoint first).
    pub async fn start() -> DeployStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the deploy stand-in");
        let port = listener.local_addr().expect("address").port();
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let shared = recorded.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let recorded = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &recorded).await;
                });
            }
        });
        DeployStandIn { port, recorded, task }
    }

    /// Serves `version_arn` from `api` (a function process polling it).
    pub fn serve_version(&self, version_arn: &str, api: Arc<RuntimeApi>) {
        if let Ok(mut recorded) = self.recorded.lock() {
            recorded.versions.insert(version_arn.to_owned(), api);
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The version ARNs invoked, in order.
    pub fn invoked(&self) -> Vec<String> {
        self.recorded.lock().map(|r| r.invoked.clone()).unwrap_or_default()
    }

    /// Every other AWS call received (its `X-Amz-Target`, or its request line and `Action`).
    pub fn other_calls(&self) -> Vec<String> {
        self.recorded.lock().map(|r| r.others.clone()).unwrap_or_default()
    }

    /// Each `PutLifecycleEventHookExecutionStatus` request body, in order.
    pub fn verdicts(&self) -> Vec<Value> {
        self.recorded.lock().map(|r| r.verdicts.clone()).unwrap_or_default()
    }
}

impl Drop for DeployStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, recorded: &Mutex<Recorded>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    while let Some(request) = read_message(&mut client, &mut buffer).await? {
        let answer = match request.header("x-amz-target") {
            Some(target) if target.ends_with(".PutLifecycleEventHookExecutionStatus") => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let id = body["lifecycleEventHookExecutionId"].clone();
                if let Ok(mut recorded) = recorded.lock() {
                    recorded.verdicts.push(body);
                }
                http(200, &[], &json!({"lifecycleEventHookExecutionId": id}).to_string())
            }
            Some(target) => other_call(recorded, target),
            None if request_line(&request).contains(" /2015-03-31/functions/") => invoke(&request, recorded).await,
            None => {
                let action = String::from_utf8_lossy(&request.body)
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("Action=").map(str::to_owned))
                    .unwrap_or_default();
                other_call(recorded, format!("{} {action}", request_line(&request)))
            }
        };
        client.write_all(&answer).await?;
    }
    Ok(())
}

fn request_line(request: &Request) -> String {
    String::from_utf8_lossy(&request.head).lines().next().unwrap_or_default().to_owned()
}

fn other_call(recorded: &Mutex<Recorded>, what: String) -> Vec<u8> {
    if let Ok(mut recorded) = recorded.lock() {
        recorded.others.push(what);
    }
    http(500, &[("x-amzn-ErrorType", "InternalFailure")], r#"{"message":"not a call the stand-in serves"}"#)
}

/// `POST /2015-03-31/functions/{FunctionName}/invocations`, the name percent-encoded.
async fn invoke(request: &Request, recorded: &Mutex<Recorded>) -> Vec<u8> {
    let line = request_line(request);
    let path = line.split(' ').nth(1).unwrap_or_default();
    let Some(encoded) = path.strip_prefix("/2015-03-31/functions/").and_then(|p| p.split('/').next()) else {
        return http(404, &[("x-amzn-ErrorType", "UnknownOperationException")], r#"{"message":"no such route"}"#);
    };
    let name = percent_decoded(encoded);
    let api = recorded.lock().ok().and_then(|mut recorded| {
        recorded.invoked.push(name.clone());
        recorded.versions.get(&name).cloned()
    });
    let Some(api) = api else {
        let body = json!({"Type": "User", "message": format!("Function not found: {name}")}).to_string();
        return http(404, &[("x-amzn-ErrorType", "ResourceNotFoundException")], &body);
    };
    let event: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let version = name.rsplit(':').next().unwrap_or_default().to_owned();
    match api.invoke(&event, INVOKE_LIMIT).await {
        Answer::Response(value) => http(200, &[("X-Amz-Executed-Version", &version)], &value.to_string()),
        Answer::Error(error) => http(
            200,
            &[("X-Amz-Function-Error", "Unhandled"), ("X-Amz-Executed-Version", &version)],
            &error.to_string(),
        ),
    }
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn http(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head =
        format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut answer = head.into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}
