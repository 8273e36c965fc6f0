//! Each function's CloudWatch metrics, read back from what the built binary wrote to stdout in
//! Lambda's JSON log format, after real invocations against the local stand-ins: the Embedded
//! Metric Format lines CloudWatch Logs turns into metrics, with their names, dimensions, units
//! and values.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use harness_runtime::lambda_env::Output;
use harness_runtime::paths::{function_binary, read_event};
use harness_runtime::runtime_api::RuntimeApi;
use harness_services::dynamo::{create_table, scan_all};
use harness_services::ec2::instance_in_groups;
use harness_services::moto::Moto;
use harness_services::rotation::begin_rotation;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);

/// A log file of the test's own for one function.
fn log_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    dir.join(format!("{name}.log"))
}

/// Lambda's production logging: JSON lines at INFO.
fn json_logging(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    env
}

/// The EMF records in a log: the top-level JSON objects carrying `_aws`.
fn emf_records(log: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(log).expect("function log");
    let records: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("_aws").is_some())
        .collect();
    for record in &records {
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "OpsSuite", "{record}");
        assert!(record["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{record}");
        // Every dimension and metric the directive names is a top-level field of the line.
        for name in directive["Dimensions"][0].as_array().expect("dimensions") {
            assert!(record[name.as_str().expect("name")].is_string(), "dimension {name} missing: {record}");
        }
        for metric in directive["Metrics"].as_array().expect("metrics") {
            assert!(record[metric["Name"].as_str().expect("name")].is_number(), "metric {metric} missing: {record}");
        }
    }
    records
}

/// The unit the record declares for `metric`.
fn unit(record: &Value, metric: &str) -> String {
    let metrics = record["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().cloned().unwrap_or_default();
    metrics
        .iter()
        .find(|m| m["Name"] == metric)
        .map(|m| m["Unit"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn dimensions(record: &Value) -> Value {
    record["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_api_counts_greetings_and_bad_requests() {
    let log = log_file("hello-api");
    let api = RuntimeApi::start().await;
    let function = api.spawn_function(
        &function_binary("hello-api"),
        "hello-api-fn",
        &json_logging(Vec::new()),
        Output::File(log.clone()),
    );
    assert_eq!(api.invoke(&read_event("hello-rest-api.json"), LIMIT).await.response()["statusCode"], 200);
    assert_eq!(api.invoke(&read_event("hello-empty-body.json"), LIMIT).await.response()["statusCode"], 400);
    drop(function);
    let records = emf_records(&log);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(dimensions(&records[0]), json!([["FunctionName"]]));
    assert_eq!(records[0]["FunctionName"], "hello-api-fn");
    assert_eq!((records[0]["Greetings"].as_f64(), records[0]["BadRequests"].as_f64()), (Some(1.0), Some(0.0)));
    assert_eq!((records[1]["Greetings"].as_f64(), records[1]["BadRequests"].as_f64()), (Some(0.0), Some(1.0)));
    assert_eq!(unit(&records[1], "BadRequests"), "Count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_drainer_reports_registrations_removed_and_drain_seconds() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (instance_id, _) = instance_in_groups(&ec2, &elb, "10.41", &["web", "api"], 8080).await;
    let log = log_file("spot-drainer");
    let mut env = json_logging(moto.env());
    env.push(("DISCOVERY".into(), "scan".into()));
    let api = RuntimeApi::start().await;
    let function =
        api.spawn_function(&function_binary("spot-drainer"), "spot-drainer-fn", &env, Output::File(log.clone()));
    let mut event = read_event("spot-interruption-warning.json");
    event["detail"]["instance-id"] = json!(instance_id);
    api.invoke(&event, LIMIT).await.response();
    drop(function);
    let records = emf_records(&log);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["FunctionName"], "spot-drainer-fn");
    assert_eq!((record["RegistrationsRemoved"].as_f64(), record["DrainFailures"].as_f64()), (Some(2.0), Some(0.0)));
    assert!(record["DrainSeconds"].as_f64().is_some_and(|s| s > 0.0 && s < 60.0), "{record}");
    assert_eq!(unit(record, "DrainSeconds"), "Seconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_poller_counts_messages_received_stored_and_rejected() {
    let moto = Moto::start();
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamo, "messages").await;
    let log = log_file("mq-poller");
    let mut env = json_logging(moto.env());
    env.push(("TABLE_NAME".into(), "messages".into()));
    let api = RuntimeApi::start().await;
    let function = api.spawn_function(&function_binary("mq-poller"), "mq-poller-fn", &env, Output::File(log.clone()));
    let encode = |text: &[u8]| base64::engine::general_purpose::STANDARD.encode(text);
    let batch = json!({"eventSource": "aws:mq", "messages": [
        {"messageID": "ID:m-1", "data": encode(b"first")},
        {"messageID": "ID:m-2", "data": encode(b"second")},
    ]});
    api.invoke(&batch, LIMIT).await.response();
    // Too large for an item: the batch fails, and the message counts as rejected.
    let large = json!({"eventSource": "aws:mq", "messages": [{"messageID": "ID:m-3", "data": encode(&vec![b'x'; 450 * 1024])}]});
    assert_eq!(api.invoke(&large, LIMIT).await.error()["errorType"], "MessageTooLarge");
    drop(function);
    assert_eq!(scan_all(&dynamo, "messages").await.len(), 2);
    let records = emf_records(&log);
    assert_eq!(records.len(), 2, "{records:?}");
    let counts =
        |r: &Value| (r["MessagesReceived"].as_f64(), r["MessagesStored"].as_f64(), r["MessagesRejected"].as_f64());
    assert_eq!(counts(&records[0]), (Some(2.0), Some(2.0), Some(0.0)));
    assert_eq!(counts(&records[1]).2, Some(1.0));
    assert_eq!(records[0]["FunctionName"], "mq-poller-fn");
    assert_eq!(unit(&records[0], "PollDuration"), "Milliseconds");

    // With a body bucket, the same message is stored and its body counted as sent to S3 (the
    // binary's own S3 client, path-style against the stand-in's endpoint).
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config().await).force_path_style(true).build(),
    );
    s3.create_bucket().bucket("bodies").send().await.expect("create_bucket");
    env.push(("BODY_BUCKET".into(), "bodies".into()));
    let log = log_file("mq-poller-bodies");
    let function = api.spawn_function(&function_binary("mq-poller"), "mq-poller-fn", &env, Output::File(log.clone()));
    assert_eq!(api.invoke(&large, LIMIT).await.response()["stored"], 1);
    drop(function);
    let records = emf_records(&log);
    assert_eq!(
        (counts(&records[0]), records[0]["BodiesToS3"].as_f64()),
        ((Some(1.0), Some(1.0), Some(0.0)), Some(1.0))
    );
    let listed = s3.list_objects_v2().bucket("bodies").send().await.expect("list_objects_v2");
    assert_eq!(listed.contents().len(), 1, "the body is in the bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_counts_steps_by_engine() {
    let moto = Moto::start();
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let arn = sm
        .create_secret()
        .name("api-key")
        .secret_string(r#"{"engine":"generic","api_key":"k"}"#)
        .send()
        .await
        .expect("secret");
    let id = arn.arn().expect("arn").to_owned();
    let token = "e1111111-1111-4111-8111-111111111111";
    begin_rotation(&sm, &id, token).await;
    let log = log_file("secret-rotation");
    let api = RuntimeApi::start().await;
    // The key is the field rotated (the built binary reads GENERIC_FIELD).
    let mut env = moto.env();
    env.push(("GENERIC_FIELD".into(), "api_key".into()));
    let function = api.spawn_function(
        &function_binary("secret-rotation"),
        "rotation-fn",
        &json_logging(env),
        Output::File(log.clone()),
    );
    let step = |name: &str, token: &str| json!({"Step": name, "SecretId": id, "ClientRequestToken": token});
    api.invoke(&step("createSecret", token), LIMIT).await.response();
    // A token that is no version of the secret: the step fails.
    api.invoke(&step("setSecret", "e2222222-2222-4222-8222-222222222222"), LIMIT).await.error();
    drop(function);
    let records = emf_records(&log);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(dimensions(&records[0]), json!([["FunctionName", "Engine"]]));
    assert_eq!((records[0]["Engine"].as_str(), records[0]["Step"].as_str()), (Some("generic"), Some("createSecret")));
    assert_eq!((records[0]["StepsSucceeded"].as_f64(), records[0]["StepsFailed"].as_f64()), (Some(1.0), Some(0.0)));
    // It failed before reading the secret, so its engine is not known.
    assert_eq!((records[1]["Engine"].as_str(), records[1]["StepsFailed"].as_f64()), (Some("unknown"), Some(1.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_reports_a_single_users_password_downtime() {
    let moto = Moto::start();
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let pg = harness_services::postgres::Postgres::start();
    let id =
        harness_services::secrets::pg_user_secret(&sm, &pg, "downtime", "app", "old-Passw0rd", json!({"ssl": true}))
            .await;
    let token = "e3333333-3333-4333-8333-333333333333";
    begin_rotation(&sm, &id, token).await;
    let log = log_file("secret-rotation-downtime");
    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("DB_CA_BUNDLE".into(), pg.ca.display().to_string()));
    let function = api.spawn_function(
        &function_binary("secret-rotation"),
        "rotation-downtime-fn",
        &json_logging(env),
        Output::File(log.clone()),
    );
    for name in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        api.invoke(&json!({"Step": name, "SecretId": id, "ClientRequestToken": token}), LIMIT).await.response();
    }
    drop(function);
    let records = emf_records(&log);
    let downtime = records
        .iter()
        .find(|r| r.get("PasswordDowntimeMs").is_some())
        .unwrap_or_else(|| panic!("no PasswordDowntimeMs: {records:?}"));
    assert_eq!(unit(downtime, "PasswordDowntimeMs"), "Milliseconds");
    assert_eq!(dimensions(downtime), json!([["FunctionName", "Source"]]));
    assert_eq!(downtime["Source"], "PendingVersionCreated");
    assert!(downtime["PasswordDowntimeMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{downtime}");
    let hosts = records.iter().find(|r| r.get("HostsRotated").is_some()).expect("HostsRotated");
    assert_eq!((hosts["HostsRotated"].as_f64(), unit(hosts, "HostsRotated")), (Some(1.0), "Count".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_measures_a_mariadb_users_downtime_from_when_the_password_changed() {
    let moto = Moto::start();
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let db = harness_services::mariadb::MariaDb::start();
    let id =
        harness_services::secrets::mariadb_user_secret(&sm, &db, "downtime-maria", "shop", "old-Passw0rd", json!({}))
            .await;
    // The user may read its own account row, where MariaDB keeps password_last_changed.
    let mut admin = db.admin().await;
    mysql_async::prelude::Queryable::query_drop(&mut admin, "GRANT SELECT ON mysql.global_priv TO 'shop'@'%'")
        .await
        .expect("grant");
    let token = "e5555555-5555-4555-8555-555555555555";
    begin_rotation(&sm, &id, token).await;
    // The pending version is made well before setSecret: a downtime measured from its creation
    // would be at least this long.
    let log = log_file("secret-rotation-downtime-maria");
    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("DB_CA_BUNDLE".into(), db.ca.display().to_string()));
    let function = api.spawn_function(
        &function_binary("secret-rotation"),
        "rotation-downtime-maria-fn",
        &json_logging(env),
        Output::File(log.clone()),
    );
    let step = |name: &str| json!({"Step": name, "SecretId": id, "ClientRequestToken": token});
    api.invoke(&step("createSecret"), LIMIT).await.response();
    tokio::time::sleep(Duration::from_secs(6)).await;
    for name in ["setSecret", "testSecret", "finishSecret"] {
        api.invoke(&step(name), LIMIT).await.response();
    }
    drop(function);
    let records = emf_records(&log);
    let downtime = records
        .iter()
        .find(|r| r.get("PasswordDowntimeMs").is_some())
        .unwrap_or_else(|| panic!("no PasswordDowntimeMs: {records:?}"));
    assert_eq!(downtime["Source"], "PasswordLastChanged", "{downtime}");
    let ms = downtime["PasswordDowntimeMs"].as_f64().expect("a number");
    // From setSecret (to the second MariaDB keeps), not from createSecret 6 s earlier.
    assert!((0.0..5000.0).contains(&ms), "{downtime}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_reports_a_failed_step_that_changed_no_server_as_none_rolled_back() {
    let moto = Moto::start();
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let pg = harness_services::postgres::Postgres::start();
    harness_services::secrets::pg_user(&pg, "fleet", "old-Passw0rd").await;
    // The second server is a port nothing listens on: setSecret's check of every server fails
    // there before the first is changed, so nothing needs putting back.
    let closed = harness_runtime::process::free_port();
    let secret = json!({
        "engine": "postgres", "username": "fleet", "password": "old-Passw0rd", "dbname": "postgres", "ssl": true,
        "hosts": [{"host": "127.0.0.1", "port": pg.port}, {"host": "127.0.0.1", "port": closed}]
    });
    let id = harness_services::secrets::create_secret(&sm, "fleet-rollback", &secret).await;
    let token = "e4444444-4444-4444-8444-444444444444";
    begin_rotation(&sm, &id, token).await;
    let log = log_file("secret-rotation-rollback");
    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("DB_CA_BUNDLE".into(), pg.ca.display().to_string()));
    let function = api.spawn_function(
        &function_binary("secret-rotation"),
        "rotation-rollback-fn",
        &json_logging(env),
        Output::File(log.clone()),
    );
    let step = |name: &str| json!({"Step": name, "SecretId": id, "ClientRequestToken": token});
    api.invoke(&step("createSecret"), LIMIT).await.response();
    api.invoke(&step("setSecret"), LIMIT).await.error();
    drop(function);
    assert!(pg.can_log_in("fleet", "old-Passw0rd").await, "the first server keeps the current password");
    let records = emf_records(&log);
    let rolled_back = records.iter().find(|r| r.get("ServersRolledBack").is_some()).expect("ServersRolledBack");
    assert_eq!(rolled_back["ServersRolledBack"].as_f64(), Some(0.0), "{rolled_back}");
    assert_eq!(unit(rolled_back, "ServersRolledBack"), "Count");
    assert!(records.iter().all(|r| r.get("HostsRotated").is_none()), "a failed setSecret rotated no servers");
}
