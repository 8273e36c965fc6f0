//! The demo's stand-ins for scripts/sam-local: moto, a throwaway PostgreSQL cluster and an
//! ActiveMQ broker, staged as the demo stages them, and reachable from `sam local`'s containers
//! through the Docker bridge (moto listens on the bridge's address; PostgreSQL and ActiveMQ stay
//! on loopback behind a forwarder there, their TLS end to end, verified against the name
//! host.docker.internal, which the script maps to the bridge's address in the containers).
//!
//!     sam-local-stand-ins <bridge address> <folder>
//!
//! Writes into the folder `env.json` (each function's variables for tools/sam_local_template.py),
//! `events/` (the samples from events/ that need an id of what was staged) and the CAs
//! (`db-ca.pem`, `broker-ca.pem`, for the script to put beside the functions' code), prints
//! `ready`, and stops everything when its standard input closes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use harness_runtime::paths::read_event;
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::create_table;
use harness_services::ec2::instance_in_groups;
use harness_services::forward::Forward;
use harness_services::moto::Moto;
use harness_services::postgres::Postgres;
use harness_services::rotation::begin_rotation;
use harness_services::stomp::StompClient;
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;

/// The name the containers know this machine by (the script's `--add-host`).
const HOST_NAME: &str = "host.docker.internal";
/// Where the script puts the CAs: beside each function's bootstrap, in /var/task.
const TASK_ROOT: &str = "/var/task";

fn moto_env(moto: &Moto) -> Map<String, Value> {
    moto.env().into_iter().map(|(name, value)| (name, Value::String(value))).collect()
}

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap_or_default())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, bridge, folder] = &args[..] else {
        eprintln!("usage: sam-local-stand-ins <bridge address> <folder>");
        return ExitCode::from(2);
    };
    let folder = PathBuf::from(folder);
    let events = folder.join("events");
    if let Err(e) = std::fs::create_dir_all(&events) {
        eprintln!("creating {}: {e}", events.display());
        return ExitCode::FAILURE;
    }
    let moto = Moto::start_on(bridge);
    let config = moto.sdk_config().await;
    let mut env = Map::new();

    // spot-drainer: an instance registered in two target groups, found by scanning.
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (instance, _) = instance_in_groups(&ec2, &elb, "10.0", &["web", "api"], 8080).await;
    let mut spot = moto_env(&moto);
    spot.insert("DISCOVERY".into(), json!("scan"));
    // The template's value is the topic's logical id locally: no topic, no notices.
    spot.insert("NOTICES_TOPIC_ARN".into(), json!(""));
    env.insert("SpotDrainerFunction".into(), Value::Object(spot.clone()));
    env.insert("SpotDrainerLifecycleFunction".into(), Value::Object(spot));
    let mut warning = read_event("spot-interruption-warning.json");
    warning["detail"]["instance-id"] = json!(instance);
    write(&events.join("spot-interruption-warning.json"), &warning);
    let mut batch = read_event("spot-warnings-sqs-batch.json");
    if let Some(records) = batch["Records"].as_array_mut() {
        for record in records.iter_mut().take(1) {
            record["body"] = json!(warning.to_string());
        }
    }
    write(&events.join("spot-warnings-sqs-batch.json"), &batch);
    // The lifecycle-action twin: another instance, which Auto Scaling is terminating.
    let (terminating, _) = instance_in_groups(&ec2, &elb, "10.1", &["web-2", "api-2"], 8080).await;
    let mut lifecycle = read_event("spot-lifecycle-terminate.json");
    lifecycle["detail"]["EC2InstanceId"] = json!(terminating);
    write(&events.join("spot-lifecycle-terminate.json"), &lifecycle);

    // secret-rotation: a PostgreSQL user whose password the four steps rotate.
    let pg = Postgres::start();
    let _pg_forward = Forward::start(bridge, pg.port).await;
    let superuser = pg.superuser().await;
    if let Err(e) = superuser.batch_execute("CREATE ROLE app LOGIN PASSWORD 'sam-local-Old-Passw0rd'").await {
        eprintln!("creating the user: {e}");
        return ExitCode::FAILURE;
    }
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let secret = json!({
        "engine": "postgres", "host": HOST_NAME, "port": pg.port, "username": "app",
        "password": "sam-local-Old-Passw0rd", "dbname": "postgres", "ssl": true
    });
    let created = sm.create_secret().name("sam-local/app/postgres").secret_string(secret.to_string()).send().await;
    let secret_id = match created {
        Ok(created) => created.arn().unwrap_or_default().to_owned(),
        Err(e) => {
            eprintln!("creating the secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = read_event("rotation-create-secret.json")["ClientRequestToken"].as_str().unwrap_or_default().to_owned();
    begin_rotation(&sm, &secret_id, &token).await;
    for step in ["create", "set", "test", "finish"] {
        let name = format!("rotation-{step}-secret.json");
        let mut event = read_event(&name);
        event["SecretId"] = json!(secret_id);
        write(&events.join(&name), &event);
    }
    copy(&pg.ca, &folder.join("db-ca.pem"));
    let mut rotation = moto_env(&moto);
    rotation.insert("DB_CA_BUNDLE".into(), json!(format!("{TASK_ROOT}/db-ca.pem")));
    env.insert("SecretRotationFunction".into(), Value::Object(rotation));

    // mq-poller: messages on an ActiveMQ queue, drained into a table (and a bucket) of moto's.
    let broker = ActiveMq::start();
    let _broker_forward = Forward::start(bridge, broker.stomp_ssl_port).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, "mq-messages").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    if let Err(e) = s3.create_bucket().bucket("mq-bodies").send().await {
        eprintln!("creating the bucket: {e}");
        return ExitCode::FAILURE;
    }
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 1..=3 {
        producer.send("SAMPLE_QUEUE", format!("order {i} for the kitchen").as_bytes(), &[]).await;
    }
    producer.flush().await;
    copy(&broker.ca, &folder.join("broker-ca.pem"));
    let mut mq = moto_env(&moto);
    for (name, value) in [
        ("TABLE_NAME", "mq-messages".to_owned()),
        ("BODY_BUCKET", "mq-bodies".to_owned()),
        ("QUEUE_NAME", "SAMPLE_QUEUE".to_owned()),
        ("BROKER_URL", format!("stomp+ssl://{HOST_NAME}:{}", broker.stomp_ssl_port)),
        ("BROKER_CA_BUNDLE", format!("{TASK_ROOT}/broker-ca.pem")),
        ("BROKER_SECRET_ID", String::new()),
        ("BROKER_USERNAME", activemq::USER.to_owned()),
        ("BROKER_PASSWORD", activemq::PASSWORD.to_owned()),
    ] {
        mq.insert(name.into(), json!(value));
    }
    env.insert("MqPollerFunction".into(), Value::Object(mq));

    write(&folder.join("env.json"), &Value::Object(env));
    println!("ready");
    // Until the script is done (its end of the pipe closes).
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    ExitCode::SUCCESS
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
