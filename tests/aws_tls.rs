//! The AWS half of the TLS rule, through a function binary: AWS endpoints are verified against
//! Mozilla's roots compiled into the function (not the system store), plus `AWS_CA_BUNDLE`.
//! moto is put behind a TLS front whose certificate only a test CA vouches for.

use std::time::Duration;

use harness_runtime::lambda_env::Output;
use harness_runtime::paths::{function_binary, read_event};
use harness_runtime::runtime_api::RuntimeApi;
use harness_services::ec2::instance_in_groups;
use harness_services::moto::Moto;
use harness_services::tls_proxy::TlsProxy;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

/// moto's variables, with its endpoint moved behind the TLS front, plus `extra`.
fn https_env(moto: &Moto, proxy: &TlsProxy, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = moto.env().into_iter().filter(|(k, _)| k != "AWS_ENDPOINT_URL").collect();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
    env.push(("DISCOVERY".into(), "scan".into()));
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoints_trust_the_compiled_in_roots_plus_aws_ca_bundle_and_nothing_else() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (instance_id, groups) = instance_in_groups(&ec2, &elb, "10.60", &["web"], 8080).await;
    let group_arn = groups[0].clone();
    let proxy = TlsProxy::start(moto.port).await;
    let mut event = read_event("spot-interruption-warning.json");
    event["detail"]["instance-id"] = json!(instance_id);
    let registered = || async {
        let health = elb.describe_target_health().target_group_arn(&group_arn).send().await.expect("health");
        health.target_health_descriptions().len()
    };

    // The test CA in the system store (SSL_CERT_FILE) is not enough: AWS trust is compiled in.
    let api = RuntimeApi::start().await;
    let env = https_env(&moto, &proxy, &[("SSL_CERT_FILE", proxy.ca.display().to_string())]);
    let _refusing = api.spawn_function(&function_binary("spot-drainer"), "spot-drainer", &env, Output::Inherit);
    let refusal = api.invoke(&event, LIMIT).await.error();
    assert_eq!(refusal["errorType"], "DescribeInstanceFailed", "{refusal}");
    assert_eq!(registered().await, 1, "nothing was drained through an unverified endpoint");

    // With the CA in AWS_CA_BUNDLE, the same endpoint is trusted.
    let api = RuntimeApi::start().await;
    let env = https_env(&moto, &proxy, &[("AWS_CA_BUNDLE", proxy.ca.display().to_string())]);
    let _trusting = api.spawn_function(&function_binary("spot-drainer"), "spot-drainer", &env, Output::Inherit);
    let summary = api.invoke(&event, LIMIT).await.response();
    assert_eq!(summary["registrations"][0]["outcome"], "deregistered", "{summary}");
    assert_eq!(registered().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_aws_ca_bundle_stops_init_with_a_message_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("aws-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").expect("write");
    let api = RuntimeApi::start().await;
    let env = vec![
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_CA_BUNDLE".to_owned(), bad.display().to_string()),
    ];
    let binary = function_binary("spot-drainer");
    let output = tokio::process::Command::new(&binary)
        .env_clear()
        .envs(harness_runtime::lambda_env::lambda_env(&api.addr.to_string(), "spot-drainer"))
        .envs(env)
        .output();
    let output = tokio::time::timeout(LIMIT, output).await.expect("init ended").expect("ran");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_CA_BUNDLE") && !stderr.contains("panicked"), "{stderr}");
    assert!(api.first_next_at().is_none(), "it never took an event");
    let _ = std::fs::remove_dir_all(dir);
}
