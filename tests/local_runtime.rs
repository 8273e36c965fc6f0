//! The built function binaries, run as Lambda runs them: a process polling a Runtime API, fed
//! the sample events from `events/`. Run `cargo build --workspace --bins` first (the README's
//! test command does).

use std::time::Duration;

use harness_runtime::lambda_env::Output;
use harness_runtime::paths::{function_binary, read_event};
use harness_runtime::runtime_api::{request_id, trace_id, RuntimeApi};
use harness_services::ec2::instance_in_groups;
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
    let (instance_id, groups) = instance_in_groups(&ec2, &elb, "10.40", &["web"], 8080).await;
    let group_arn = groups[0].clone();

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_an_error_and_serves_the_next_event() {
    let api = RuntimeApi::start().await;
    let mut function =
        api.spawn_function(&function_binary("panicking-function"), "panicking-function", &[], Output::Inherit);
    let error = api.invoke(&json!({"panic": "the handler gave up"}), LIMIT).await.error();
    assert!(error["errorMessage"].as_str().unwrap_or_default().contains("the handler gave up"), "{error}");
    assert!(!error["errorType"].as_str().unwrap_or_default().is_empty(), "{error}");
    // The same process takes the next event.
    let echoed = api.invoke(&json!({"after": "the panic"}), LIMIT).await.response();
    assert_eq!(echoed, json!({"after": "the panic"}));
    assert!(function.0.try_wait().expect("status").is_none(), "the process is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_reach_lambda_with_a_type_naming_the_mistake() {
    let moto = Moto::start();
    let api = RuntimeApi::start().await;
    let _drainer = api.spawn_function(&function_binary("spot-drainer"), "spot-drainer", &moto.env(), Output::Inherit);
    let refusal = api.invoke(&read_event("hello-rest-api.json"), LIMIT).await.error();
    assert_eq!(refusal["errorType"], "MalformedEvent", "{refusal}");
    assert!(refusal["errorMessage"].as_str().unwrap_or_default().contains("detail-type"), "{refusal}");
    let state_change = json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
        "detail": {"instance-id": "i-0123456789abcdef0", "state": "stopping"}});
    let refusal = api.invoke(&state_change, LIMIT).await.error();
    assert_eq!(refusal["errorType"], "UnsupportedEvent", "{refusal}");

    let api = RuntimeApi::start().await;
    let _rotation =
        api.spawn_function(&function_binary("secret-rotation"), "secret-rotation", &moto.env(), Output::Inherit);
    let refusal = api.invoke(&json!({"Step": "createSecret"}), LIMIT).await.error();
    assert_eq!(refusal["errorType"], "MalformedEvent", "{refusal}");
    let refusal = api
        .invoke(&json!({"Step": "rotateEverything", "SecretId": "s", "ClientRequestToken": "t"}), LIMIT)
        .await
        .error();
    assert_eq!(refusal["errorType"], "UnknownStep", "{refusal}");

    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("TABLE_NAME".into(), "messages".into()));
    let _poller = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let refusal = api.invoke(&json!({"eventSource": "aws:mq"}), LIMIT).await.error();
    assert_eq!(refusal["errorType"], "MalformedEvent", "{refusal}");
    // A poll with no broker credentials configured says so.
    let refusal = api.invoke(&read_event("mq-scheduled-poll.json"), LIMIT).await.error();
    assert_eq!(refusal["errorType"], "BrokerCredentialsFailed", "{refusal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_level_no_raw_event_reaches_the_logs() {
    let moto = Moto::start();
    let dir = std::env::temp_dir().join(format!("trace-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let trace = |env: &mut Vec<(String, String)>| {
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
        env.push((
            "RUST_LOG".into(),
            "trace,lambda_runtime=trace,tokio_postgres=trace,mysql_async=trace,lapin=trace".into(),
        ));
    };

    // A rotation event: its RotationToken must not be logged.
    let log = dir.join("rotation.log");
    let mut env = moto.env();
    trace(&mut env);
    let api = RuntimeApi::start().await;
    let function =
        api.spawn_function(&function_binary("secret-rotation"), "secret-rotation", &env, Output::File(log.clone()));
    let event = json!({"Step": "createSecret", "SecretId": "absent", "ClientRequestToken": "c1111111-1111-4111-8111-111111111111",
        "RotationToken": "rotation-token-that-must-stay-private"});
    api.invoke(&event, LIMIT).await.error();
    drop(function);

    // An MQ batch: its message bodies must not be logged.
    let batch_log = dir.join("mq.log");
    let mut env = moto.env();
    env.push(("TABLE_NAME".into(), "absent-table".into()));
    trace(&mut env);
    let api = RuntimeApi::start().await;
    let function =
        api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::File(batch_log.clone()));
    // base64 of "private message body"
    let batch =
        json!({"eventSource": "aws:mq", "messages": [{"messageID": "ID:1", "data": "cHJpdmF0ZSBtZXNzYWdlIGJvZHk="}]});
    api.invoke(&batch, LIMIT).await.error();
    drop(function);

    // A real secret rotated: its value crosses the SDK (GetSecretValue, PutSecretValue), whose
    // HTTP layer logs requests and responses, bodies included, at TRACE.
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let canary = "canary-secret-value-never-logged";
    let created = sm
        .create_secret()
        .name("trace-canary")
        .secret_string(json!({"engine": "generic", "password": canary}).to_string())
        .send()
        .await
        .expect("secret");
    let id = created.arn().expect("arn").to_owned();
    let token = "c2222222-2222-4222-8222-222222222222";
    harness_services::rotation::begin_rotation(&sm, &id, token).await;
    let sdk_log = dir.join("sdk.log");
    let mut env = moto.env();
    trace(&mut env);
    let api = RuntimeApi::start().await;
    let function =
        api.spawn_function(&function_binary("secret-rotation"), "secret-rotation", &env, Output::File(sdk_log.clone()));
    api.invoke(&json!({"Step": "createSecret", "SecretId": id, "ClientRequestToken": token}), LIMIT).await.response();
    drop(function);
    let pending = sm
        .get_secret_value()
        .secret_id(&id)
        .version_id(token)
        .version_stage("AWSPENDING")
        .send()
        .await
        .expect("pending");
    let new_password: serde_json::Value =
        serde_json::from_str(pending.secret_string().expect("pending value")).expect("JSON");
    let new_password = new_password["password"].as_str().expect("new password").to_owned();
    let sdk = std::fs::read_to_string(&sdk_log).expect("sdk log");
    assert!(!sdk.contains(canary), "the current secret value was logged:\n{sdk}");
    assert!(!sdk.contains(&new_password), "the new password was logged");

    let rotation = std::fs::read_to_string(&log).expect("rotation log");
    let mq = std::fs::read_to_string(&batch_log).expect("mq log");
    assert!(rotation.contains("TRACE") || rotation.contains("DEBUG"), "tracing was on: {rotation}");
    assert!(!rotation.contains("rotation-token-that-must-stay-private"), "the RotationToken was logged:\n{rotation}");
    assert!(
        !mq.contains("cHJpdmF0ZSBtZXNzYWdlIGJvZHk=") && !mq.contains("private message body"),
        "a message body was logged:\n{mq}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_an_invocation_carries_its_trace_id() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (instance_id, _groups) = instance_in_groups(&ec2, &elb, "10.41", &["api"], 8080).await;
    let log = harness_services::scratch_dir("trace-ids").with_extension("log");
    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("DISCOVERY".into(), "scan".into()));
    env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
    let _function =
        api.spawn_function(&function_binary("spot-drainer"), "spot-drainer", &env, Output::File(log.clone()));
    let deadline = tokio::time::Instant::now() + LIMIT;
    while api.first_next_at().is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let init_lines = std::fs::read_to_string(&log).unwrap_or_default().lines().count();

    let mut event = read_event("spot-interruption-warning.json");
    event["detail"]["instance-id"] = json!(instance_id);
    api.invoke(&event, LIMIT).await.response();
    let trace = trace_id(&request_id(1));
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().skip(init_lines).collect();
    // The drain's own lines and its metrics line at least.
    assert!(lines.len() >= 2, "{text}");
    assert!(lines.iter().any(|l| l.contains("\"_aws\"")), "the metrics line: {text}");
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.to_string().contains(&trace), "a line without the trace id {trace}: {line}");
    }
}
