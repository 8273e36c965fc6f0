//! `sam local invoke` through a real Docker engine (the running one, or Debian's dockerd started
//! here and stopped at the end), on the local stand-in for Lambda's provided.al2023 x86_64 image
//! (scripts/lib.sh's `ensure_lambda_base_image`, built once and reused). The template is the
//! project's, with `Architecture=x86_64`; the code is the workspace's own debug binaries laid out
//! as `sam build` lays them out (the real `sam build` path is scripts/sam-local's). The answers
//! are checked, not SAM's exit code: SAM exits 0 when a function never answered.
//!
//! The containers reach moto on the Docker bridge's address (they cannot reach the machine's
//! loopback): every packet stays on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use harness_runtime::paths::{event_file, function_binary, read_event, venv_bin, workspace_root};
use harness_services::docker::DockerEngine;
use harness_services::ec2::{instance_in_groups, targets_in};
use harness_services::moto::Moto;
use serde_json::{json, Value};

/// The functions this test packages: logical id in the template, binary.
const FUNCTIONS: [(&str, &str); 2] = [("HelloApiFunction", "hello-api"), ("SpotDrainerFunction", "spot-drainer")];

/// A folder laid out as `sam build` leaves `.aws-sam/build`: the template, and one folder per
/// function holding its `bootstrap`. Removed when dropped.
struct Package {
    dir: PathBuf,
}

impl Package {
    /// `env`: the stand-ins' variables added to functions' environments ({LogicalId: {..}}).
    fn lay_out(env: &Value) -> Package {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
        let dir = target.join("sam-local").join(format!("test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let mut code_uris = Vec::new();
        for (logical_id, binary) in FUNCTIONS {
            let folder = dir.join(logical_id);
            std::fs::create_dir_all(&folder).expect("function folder");
            let built = function_binary(binary);
            std::fs::copy(&built, folder.join("bootstrap"))
                .unwrap_or_else(|e| panic!("copying {} (is the workspace built?): {e}", built.display()));
            code_uris.push(format!("{logical_id}={logical_id}"));
        }
        let env_file = dir.join("env.json");
        std::fs::write(&env_file, env.to_string()).expect("writing env.json");
        let mut command = Command::new(venv_bin("python"));
        command.arg(workspace_root().join("tools/sam_local_template.py"));
        command.arg(workspace_root().join("template.yaml")).arg(dir.join("template.yaml"));
        command.arg("--env").arg(&env_file);
        for pair in &code_uris {
            command.args(["--code-uri", pair]);
        }
        let output = command.output().expect("running tools/sam_local_template.py (run the README's setup)");
        assert!(output.status.success(), "sam_local_template.py: {}", String::from_utf8_lossy(&output.stderr));
        Package { dir }
    }

    /// `sam local invoke` of one function with the event in `event`: its answer (the last line
    /// SAM prints on stdout) parsed, and what SAM and the function logged.
    fn invoke(&self, logical_id: &str, event: &Path) -> (Value, String) {
        let start = Instant::now();
        let output = Command::new(venv_bin("sam"))
            .args(["local", "invoke", logical_id, "--skip-pull-image", "--parameter-overrides", "Architecture=x86_64"])
            .arg("--template")
            .arg(self.dir.join("template.yaml"))
            .arg("--event")
            .arg(event)
            .current_dir(&self.dir)
            .env("SAM_CLI_TELEMETRY", "0")
            .output()
            .unwrap_or_else(|e| panic!("running sam (run the README's setup): {e}"));
        let logs = String::from_utf8_lossy(&output.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default();
        let answer = serde_json::from_str(last).unwrap_or_else(|e| {
            panic!("{logical_id} gave no JSON answer ({e}); stdout: {stdout}\nstderr: {logs}");
        });
        eprintln!("sam local invoke {logical_id} {}: {:.1?}", event.display(), start.elapsed());
        (answer, logs)
    }
}

impl Drop for Package {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The event in `name` from events/, changed by `edit`, written into the package's folder.
fn event_in(package: &Package, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut event = read_event(name);
    edit(&mut event);
    let path = package.dir.join(name);
    std::fs::write(&path, event.to_string()).expect("writing the event");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn sam_local_invoke_runs_hello_api_and_spot_drainer_in_docker() {
    let engine = DockerEngine::up();
    engine.ensure_lambda_base_image();
    let before = engine.sam_containers();

    let moto = Moto::start_on(&engine.bridge_gateway());
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (doomed, groups) = instance_in_groups(&ec2, &elb, "10.7", &["sam-web", "sam-api"], 8080).await;
    let mut spot_env: serde_json::Map<String, Value> =
        moto.env().into_iter().map(|(name, value)| (name, Value::String(value))).collect();
    spot_env.insert("DISCOVERY".into(), json!("scan"));
    // The template's value would be the topic's logical id: no topic here, no notices.
    spot_env.insert("NOTICES_TOPIC_ARN".into(), json!(""));
    let package = Package::lay_out(&json!({ "SpotDrainerFunction": spot_env }));

    tokio::task::block_in_place(|| {
        let (answer, logs) = package.invoke("HelloApiFunction", &event_file("hello-rest-api.json"));
        assert_eq!((&answer["statusCode"], &answer["body"]), (&json!(200), &json!("Hello Paul")), "{answer}\n{logs}");
        let (answer, logs) = package.invoke("HelloApiFunction", &event_file("hello-empty-body.json"));
        assert_eq!(answer["statusCode"], 400, "{answer}\n{logs}");
    });

    let warning = event_in(&package, "spot-interruption-warning.json", |event| {
        event["detail"]["instance-id"] = json!(doomed);
    });
    let (summary, logs) = tokio::task::block_in_place(|| package.invoke("SpotDrainerFunction", &warning));
    let registrations = summary["registrations"].as_array().cloned().unwrap_or_default();
    assert!(
        registrations.len() == 2 && registrations.iter().all(|r| r["outcome"] == "deregistered"),
        "expected both registrations deregistered: {summary}\n{logs}"
    );
    for group in &groups {
        assert!(!targets_in(&elb, group).await.contains(&doomed), "{doomed} is still in {group}");
    }
    // A refusal comes back as the function's typed error, through the emulator.
    let (refusal, logs) =
        tokio::task::block_in_place(|| package.invoke("SpotDrainerFunction", &event_file("hello-rest-api.json")));
    assert_eq!(refusal["errorType"], "MalformedEvent", "{refusal}\n{logs}");

    let left: Vec<String> = engine.sam_containers().into_iter().filter(|id| !before.contains(id)).collect();
    assert!(left.is_empty(), "sam local left containers behind: {left:?}");
}
