use std::process::Command;
use std::time::Duration;

use harness_runtime::paths::venv_bin;

use crate::{Scene, TOKEN};

/// How AWS's documentation reads a secret from its extension in Python: the standard library.
const CLIENT: &str = r#"
import json, os, urllib.request
port = os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"]
headers = {"X-Aws-Parameters-Secrets-Token": os.environ["AWS_SESSION_TOKEN"]}
url = f"http://localhost:{port}/secretsmanager/get?secretId=app%2Fpy"
secret = json.loads(urllib.request.urlopen(urllib.request.Request(url, headers=headers)).read())
url = f"http://localhost:{port}/systemsmanager/parameters/get?name=%2Fapp%2Fpy&withDecryption=true"
parameter = json.loads(urllib.request.urlopen(urllib.request.Request(url, headers=headers)).read())
print(json.dumps({"secret": secret["SecretString"], "parameter": parameter["Parameter"]["Value"]}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_library_python_client_reads_as_from_aws_s_extension() {
    let scene = Scene::start(Duration::ZERO).await;
    scene.secret("app/py", "from-python").await;
    scene.parameter("/app/py", "param-from-python", aws_sdk_ssm::types::ParameterType::String).await;
    let sandbox = scene.sandbox(&[("SECRETS_CACHE_PREFETCH", "app/py")]).await;
    let port = scene.port.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(venv_bin("python"))
            .args(["-c", CLIENT])
            .env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .output()
            .expect("running python")
    })
    .await
    .expect("python ran");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(printed, serde_json::json!({"secret": "from-python", "parameter": "param-from-python"}));
    sandbox.shutdown().await;
}
