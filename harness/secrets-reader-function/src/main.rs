//! A function that reads through the secrets-cache extension as a user's function would: plain
//! HTTP to 127.0.0.1 on `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`, the token header from
//! `AWS_SESSION_TOKEN`. During init it reads `READ_AT_INIT` (a secret id) when set; each event
//! `{"path": "/secretsmanager/get?secretId=...", "token": "..."}` is one more read (`token`
//! overrides the header's value; `"token": null` sends none). It answers the status and the
//! parsed body, and logs nothing of either: the tests look for values in its output.
//! With `READ_AT_INIT_VIA=sdk` the init read goes straight to Secrets Manager through the SDK, as
//! a function without the extension would read (the cold-start bench compares the two), and
//! `INIT_WORK_MS` makes its init wait that long before the read, as a function's other init work
//! (loading, connecting) would.

use std::time::Instant;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let port = std::env::var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").unwrap_or_else(|_| "2773".to_owned());
    let token = std::env::var("AWS_SESSION_TOKEN").ok();
    let via_sdk = std::env::var("READ_AT_INIT_VIA").is_ok_and(|via| via == "sdk");
    if let Some(work) = std::env::var("INIT_WORK_MS").ok().and_then(|ms| ms.parse().ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(work)).await;
    }
    let init = match std::env::var("READ_AT_INIT") {
        Ok(id) if via_sdk => {
            let started = Instant::now();
            let config = shared::aws::load_config().await?;
            let client = aws_sdk_secretsmanager::Client::new(&config);
            let read = client.get_secret_value().secret_id(&id).version_stage("AWSCURRENT").send().await;
            let (status, version) = match read {
                Ok(out) => (200, out.version_id().map(str::to_owned)),
                Err(_) => (502, None),
            };
            json!({"status": status, "versionId": version, "micros": started.elapsed().as_micros() as u64})
        }
        Ok(id) => {
            let started = Instant::now();
            let (status, body) = get(&port, &format!("/secretsmanager/get?secretId={id}"), token.as_deref()).await;
            json!({"status": status, "versionId": body["VersionId"], "micros": started.elapsed().as_micros() as u64})
        }
        Err(_) => Value::Null,
    };
    let (port, token, init) = (&port, &token, &init);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let path = event.payload["path"].as_str().unwrap_or("/ping").to_owned();
        let token = match event.payload.get("token") {
            None => token.clone(),
            Some(Value::String(t)) => Some(t.clone()),
            Some(_) => None,
        };
        let (status, body) = get(port, &path, token.as_deref()).await;
        Ok::<Value, lambda_runtime::Error>(json!({"status": status, "body": body, "init": init}))
    }))
    .await
}

/// One GET over a fresh connection; `(0, null)` when the port cannot be reached.
async fn get(port: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await else {
        return (0, Value::Null);
    };
    let header = token.map(|t| format!("X-Aws-Parameters-Secrets-Token: {t}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{header}Connection: close\r\n\r\n");
    let mut answer = Vec::new();
    if stream.write_all(request.as_bytes()).await.is_err() || stream.read_to_end(&mut answer).await.is_err() {
        return (0, Value::Null);
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
