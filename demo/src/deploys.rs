//! The PreTraffic hook as a deploy runs it: the suite's builds stand as the new versions (each
//! binary behind a Runtime API of the harness, reached through the deploy stand-in's Lambda
//! Invoke), the hook runs through cargo-lambda's runtime with the sample CodeDeploy event, and
//! the stand-in's CodeDeploy records the verdict. The builds' own AWS endpoint is the stand-in,
//! which records (and fails) any other call: the demo checks that the probes caused none.

use std::sync::Arc;

use harness_runtime::cargo_lambda::CargoLambda;
use harness_runtime::lambda_env::Output;
use harness_runtime::paths::{event_file, function_binary};
use harness_runtime::process::KillOnDrop;
use harness_runtime::runtime_api::RuntimeApi;
use harness_services::deploy_stand_in::DeployStandIn;

use crate::report::Demo;
use crate::{check, invoke_ok, start_function};

pub const DEPLOY: [&str; 2] =
    ["pretraffic-hook: the suite's builds pass", "pretraffic-hook: a build that skips its checks is stopped"];

/// The versions a deploy would publish: (variable naming it for the hook, function, binary).
const VERSIONS: [(&str, &str); 5] = [
    ("HELLO_API_VERSION", "hello-api"),
    ("SPOT_DRAINER_VERSION", "spot-drainer"),
    ("SPOT_DRAINER_LIFECYCLE_VERSION", "spot-drainer-lifecycle"),
    ("SECRET_ROTATION_VERSION", "secret-rotation"),
    ("MQ_POLLER_VERSION", "mq-poller"),
];

pub async fn pretraffic_hook(demo: &mut Demo, runtime: &CargoLambda) -> Result<(), String> {
    demo.heading("pretraffic-hook: each new version probed before it takes traffic (Lambda and CodeDeploy stood in)");
    // The second deploy's secret-rotation is an mq-poller build: it goes past the refusal.
    for (name, rotation_binary, verdict) in
        [(DEPLOY[0], "secret-rotation", "Succeeded"), (DEPLOY[1], "mq-poller", "Failed")]
    {
        let log = demo.log.path().to_owned();
        let (stand_in, hook, _versions) = deploy(demo, runtime, rotation_binary, &log).await?;
        demo.scenario(name, async {
            if rotation_binary != "secret-rotation" {
                println!("secret-rotation's new version is an mq-poller build, which does not refuse a step without a secret.");
            }
            let answer = invoke_ok(runtime, "CodeDeploy's PreTraffic event", &event_file("codedeploy-pretraffic-hook.json"))?;
            let reported = stand_in.verdicts();
            println!("CodeDeploy was told: {}", reported.first().map(|v| v["status"].to_string()).unwrap_or_default());
            let others = stand_in.other_calls();
            check(answer["status"] == verdict && reported.len() == 1 && reported[0]["status"] == verdict, || {
                format!("expected the verdict {verdict}, the answer was {answer} and CodeDeploy got {reported:?}")
            })?;
            check(others.is_empty(), || format!("the probes caused AWS calls: {others:?}"))
        })
        .await;
        drop(hook);
    }
    Ok(())
}

/// The five versions behind the stand-in, and the hook started against cargo-lambda's runtime.
async fn deploy(
    demo: &Demo,
    runtime: &CargoLambda,
    rotation_binary: &str,
    log: &std::path::Path,
) -> Result<(DeployStandIn, KillOnDrop, Vec<KillOnDrop>), String> {
    let stand_in = DeployStandIn::start().await;
    let mut processes = Vec::new();
    let mut hook_env = aws_env(&stand_in.endpoint());
    for (variable, function) in VERSIONS {
        let binary = match function {
            "secret-rotation" => rotation_binary,
            "spot-drainer-lifecycle" => "spot-drainer",
            other => other,
        };
        let mut env = aws_env(&stand_in.endpoint());
        env.extend(
            [("TABLE_NAME", "messages"), ("QUEUE_NAME", "orders"), ("LIFECYCLE_HOOK_NAMES", "drain")]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let api = Arc::new(RuntimeApi::start().await);
        processes.push(api.spawn_function(&function_binary(binary), function, &env, Output::Append(log.to_owned())));
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:demo-{function}:1");
        hook_env.push((variable.to_owned(), arn.clone()));
        stand_in.serve_version(&arn, api);
    }
    let hook = start_function(demo, runtime, "pretraffic-hook", &hook_env)?;
    Ok((stand_in, hook, processes))
}

fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    let mut env = harness_services::moto::aws_env_at(endpoint);
    env.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
    env
}
