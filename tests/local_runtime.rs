//! The built function binaries, run as Lambda runs them: a process polling a Runtime API, fed
//! the sample events from `events/`. Run `cargo build --workspace --bins` first (the README's
//! test command does).

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_runtime::lambda_env::Output;
use harness_runtime::paths::{function_binary, read_event};
use harness_runtime::runtime_api::RuntimeApi;
use harness_services::ec2::{create_group, launch, register, vpc_with_subnet};
use harness_services::moto::Moto;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_api_answers_every_sample_event() {
    let api = RuntimeApi::start().await;
    let _function = api.spawn_function(&function_binary("hello-api"), "hello-api", &[], Output::Inherit);
    let cases = [
        ("hello-rest-api.json", 200, "Hello Paul"),
        ("hello-http-api.json", 200, "Hello Paul"),
        ("hello-base64-body.json", 200, "Hello Zoë"),
        ("hello-empty-body.json", 400, "no name was provided in the HTTP body"),
        ("hello-invalid-utf8.json", 400, "the name in the HTTP body is not valid UTF-8"),
    ];
    for (file, status, body) in cases {
        let response = api.invoke(&read_event(file), LIMIT).await.response();
        assert_eq!(response["statusCode"], status, "{file}: {response}");
        assert_eq!(response["body"], body, "{file}: {response}");
    }
    assert!(api.first_next_at().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_drainer_binary_drains_through_the_runtime_and_refuses_bad_events() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.40").await;
    let instance_id = launch(&ec2, &subnet_id, &[]).await.id;
    let group_arn = create_group(&elb, &vpc_id, "web", TargetTypeEnum::Instance).await;
    register(&elb, &group_arn, &instance_id, 8080).await;

    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("DISCOVERY".into(), "scan".into()));
    let _function = api.spawn_function(&function_binary("spot-drainer"), "spot-drainer", &env, Output::Inherit);

    let mut event = read_event("spot-interruption-warning.json");
    event["detail"]["instance-id"] = json!(instance_id);
    let summary = api.invoke(&event, LIMIT).await.response();
    assert_eq!(summary["instance_id"], json!(instance_id));
    assert_eq!(summary["registrations"][0]["outcome"], "deregistered", "{summary}");
    assert_eq!(summary["registrations"][0]["port"], 8080);
    let health = elb.describe_target_health().target_group_arn(&group_arn).send().await.expect("health");
    assert!(health.target_health_descriptions().is_empty(), "the instance is still registered");

    let refusal = api.invoke(&read_event("hello-rest-api.json"), LIMIT).await.error();
    assert!(refusal["errorMessage"].as_str().unwrap_or_default().contains("malformed event"), "{refusal}");
}
