//! The PreTraffic hook's built binary under the local Runtime API, invoking real builds of the
//! suite's functions (each version ARN served by its binary, through a stand-in for Lambda's
//! Invoke) and reporting to a recording stand-in for CodeDeploy. The functions reach no AWS:
//! their endpoint is a closed port, so a probe that made any call would answer another
//! errorType than the refusal the hook expects.

use std::sync::Arc;
use std::time::Duration;

use harness_runtime::lambda_env::Output;
use harness_runtime::paths::function_binary;
use harness_runtime::process::{free_port, KillOnDrop};
use harness_runtime::runtime_api::RuntimeApi;
use harness_services::deploy_stand_in::DeployStandIn;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(120);

fn version(function: &str, number: u32) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:ops-{function}:{number}")
}

/// AWS credentials and `endpoint` for every service.
fn aws_at(endpoint: &str) -> Vec<(String, String)> {
    let mut env = harness_services::moto::aws_env_at(endpoint);
    env.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
    env
}

/// An endpoint where nothing listens.
fn nowhere() -> Vec<(String, String)> {
    aws_at(&format!("http://127.0.0.1:{}", free_port()))
}

/// `version_arn` served by `binary` (a function of the suite, or a stand-in for a bad build),
/// whose AWS calls go to the stand-in.
async fn serve(stand_in: &DeployStandIn, version_arn: &str, binary: &str, extra: &[(&str, &str)]) -> KillOnDrop {
    let api = Arc::new(RuntimeApi::start().await);
    let mut env = aws_at(&stand_in.endpoint());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let process = api.spawn_function(&function_binary(binary), binary, &env, Output::Inherit);
    stand_in.serve_version(version_arn, api);
    process
}

struct Deploy {
    stand_in: DeployStandIn,
    hook: Arc<RuntimeApi>,
    _processes: Vec<KillOnDrop>,
}

/// The suite's versions, with `secret-rotation`'s served by `rotation_binary`, and the hook.
async fn deploy(rotation_binary: &str) -> Deploy {
    let stand_in = DeployStandIn::start().await;
    let mut env = aws_at(&stand_in.endpoint());
    let mut processes = Vec::new();
    for (function, binary, variable, extra) in [
        ("hello-api", "hello-api", "HELLO_API_VERSION", &[][..]),
        ("spot-drainer", "spot-drainer", "SPOT_DRAINER_VERSION", &[("DISCOVERY", "scan")][..]),
        (
            "spot-drainer-lifecycle",
            "spot-drainer",
            "SPOT_DRAINER_LIFECYCLE_VERSION",
            &[("LIFECYCLE_HOOK_NAMES", "drain")][..],
        ),
        // TABLE_NAME only for when an mq-poller build stands in for secret-rotation.
        ("secret-rotation", rotation_binary, "SECRET_ROTATION_VERSION", &[("TABLE_NAME", "messages")][..]),
        ("mq-poller", "mq-poller", "MQ_POLLER_VERSION", &[("TABLE_NAME", "messages"), ("QUEUE_NAME", "orders")][..]),
    ] {
        processes.push(serve(&stand_in, &version(function, 3), binary, extra).await);
        env.push((variable.to_owned(), version(function, 3)));
    }
    let hook = Arc::new(RuntimeApi::start().await);
    processes.push(hook.spawn_function(&function_binary("pretraffic-hook"), "pretraffic-hook", &env, Output::Inherit));
    Deploy { stand_in, hook, _processes: processes }
}

fn hook_event() -> Value {
    json!({"DeploymentId": "d-TESTDEPLOY", "LifecycleEventHookExecutionId": "exec-pretraffic-1"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suites_own_builds_pass_and_the_verdict_reaches_codedeploy() {
    let deploy = deploy("secret-rotation").await;
    let answer = deploy.hook.invoke(&hook_event(), LIMIT).await.response();
    assert_eq!(answer["status"], "Succeeded", "{answer}");
    assert_eq!(answer["failures"], json!([]), "{answer}");
    assert_eq!(
        deploy.stand_in.verdicts(),
        [
            json!({"deploymentId": "d-TESTDEPLOY", "lifecycleEventHookExecutionId": "exec-pretraffic-1", "status": "Succeeded"})
        ]
    );
    // Every new version was invoked, by its version ARN.
    let invoked = deploy.stand_in.invoked();
    for function in ["hello-api", "spot-drainer", "spot-drainer-lifecycle", "secret-rotation", "mq-poller"] {
        assert!(invoked.contains(&version(function, 3)), "{function} not invoked: {invoked:?}");
    }
    assert_eq!(answer["probesRun"].as_u64(), Some(invoked.len() as u64));
    // No probe caused any other AWS call (the versions' endpoint is the stand-in).
    assert_eq!(deploy.stand_in.other_calls(), Vec::<String>::new());
}

/// The hook's verdict when secret-rotation's new version is `binary`, and the one failure's reason.
async fn verdict_with_rotation_built_as(binary: &str) -> String {
    let deploy = deploy(binary).await;
    let answer = deploy.hook.invoke(&hook_event(), LIMIT).await.response();
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert_eq!(deploy.stand_in.verdicts()[0]["status"], "Failed");
    let failures = answer["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "only the bad version fails: {answer}");
    assert_eq!(failures[0]["versionArn"], version("secret-rotation", 3));
    failures[0]["why"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_answering_another_error_type_fails_the_hook() {
    // A build that goes past the refusal: mq-poller's binary takes the rotation step for a poll
    // and fails reaching for broker credentials.
    let why = verdict_with_rotation_built_as("mq-poller").await;
    assert!(why.contains("\"BrokerCredentialsFailed\", expected \"MalformedEvent\""), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_accepting_what_it_must_refuse_fails_the_hook() {
    // A build that answers every event (the harness's echo function).
    let why = verdict_with_rotation_built_as("panicking-function").await;
    assert!(why.contains("succeeded, expected errorType \"MalformedEvent\""), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_cannot_be_invoked_fails_the_hook_rather_than_passing() {
    let stand_in = DeployStandIn::start().await;
    let hook = RuntimeApi::start().await;
    let mut env = aws_at(&stand_in.endpoint());
    env.push(("MQ_POLLER_VERSION".into(), version("mq-poller", 9)));
    let _hook = hook.spawn_function(&function_binary("pretraffic-hook"), "pretraffic-hook", &env, Output::Inherit);
    let answer = hook.invoke(&hook_event(), LIMIT).await.response();
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert!(answer["failures"][0]["why"].as_str().unwrap_or_default().contains("not invoked"), "{answer}");
    assert_eq!(stand_in.verdicts()[0]["status"], "Failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_version_to_check_the_hook_stops_at_init_naming_the_variables() {
    let hook = RuntimeApi::start().await;
    let log = harness_services::scratch_dir("pretraffic-init").with_extension("log");
    let mut process = hook.spawn_function(
        &function_binary("pretraffic-hook"),
        "pretraffic-hook",
        &nowhere(),
        Output::File(log.clone()),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = process.0.try_wait().expect("status") {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "the hook kept running without a version to check");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "a hook with nothing to check must not pass deploys");
    let output = std::fs::read_to_string(&log).expect("log");
    assert!(output.contains("no version to check") && output.contains("MQ_POLLER_VERSION"), "{output}");
    assert!(hook.first_next_at().is_none(), "it never asked for an event");
}
