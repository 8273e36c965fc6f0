//! The suite's main job, locally: each function started as Lambda would start it (a process
//! polling cargo-lambda's Runtime API) and sent its sample events with `cargo lambda invoke`,
//! against the local stand-ins. Prints what each function did.

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_runtime::cargo_lambda::CargoLambda;
use harness_runtime::paths::{event_file, function_binary, read_event};
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{create_table, item_body, scan_all};
use harness_services::ec2::{create_group, launch, register, vpc_with_subnet};
use harness_services::moto::Moto;
use harness_services::postgres::Postgres;
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::stomp::StompClient;

fn heading(text: &str) {
    println!("\n=== {text} {}", "=".repeat(70usize.saturating_sub(text.len())));
}

fn show(label: &str, answer: Result<String, String>) {
    match answer {
        Ok(text) => println!("{label}\n  -> {text}"),
        Err(text) => println!("{label}\n  -> error: {text}"),
    }
}

#[tokio::main]
async fn main() {
    let runtime = CargoLambda::start();
    hello_api(&runtime);
    spot_drainer(&runtime).await;
    secret_rotation(&runtime).await;
    mq_poller(&runtime).await;
    println!("\nDone: every local stand-in this demo started has been stopped.");
}

fn hello_api(runtime: &CargoLambda) {
    heading("hello-api: API Gateway events through the local Lambda runtime");
    let _function = runtime.start_function(&function_binary("hello-api"), &[]);
    for file in ["hello-rest-api.json", "hello-http-api.json", "hello-base64-body.json", "hello-empty-body.json"] {
        show(&format!("POST /hello  ({file})"), runtime.invoke(&event_file(file)));
    }
}

async fn spot_drainer(runtime: &CargoLambda) {
    heading("spot-drainer: a Spot interruption warning against moto's EC2 and ELBv2");
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.0").await;
    let mut instances = Vec::new();
    for _ in 0..2 {
        let instance = launch(&ec2, &subnet_id, &[]).await;
        instances.push((instance.id, instance.ip));
    }
    let mut groups = Vec::new();
    for (name, kind, port) in [("web", TargetTypeEnum::Instance, 8080), ("api-by-ip", TargetTypeEnum::Ip, 443)] {
        let arn = create_group(&elb, &vpc_id, name, kind.clone()).await;
        for (id, ip) in &instances {
            register(&elb, &arn, if kind == TargetTypeEnum::Ip { ip } else { id }, port).await;
        }
        groups.push((name, arn));
    }
    let print_groups = |title: &'static str| {
        let (elb, groups) = (elb.clone(), groups.clone());
        async move {
            println!("{title}");
            for (name, arn) in &groups {
                let health = elb.describe_target_health().target_group_arn(arn).send().await.expect("health");
                let targets: Vec<String> = health
                    .target_health_descriptions()
                    .iter()
                    .filter_map(|d| d.target())
                    .map(|t| format!("{}:{}", t.id().unwrap_or_default(), t.port().unwrap_or_default()))
                    .collect();
                println!("  {name:<10} {}", targets.join("  "));
            }
        }
    };
    let (doomed, _) = &instances[0];
    println!("Instance {doomed} gets the two-minute warning.");
    print_groups("Target groups before:").await;

    let mut env = moto.env();
    env.push(("DISCOVERY".into(), "scan".into()));
    let _function = runtime.start_function(&function_binary("spot-drainer"), &env);
    let mut event = read_event("spot-interruption-warning.json");
    event["detail"]["instance-id"] = serde_json::json!(doomed);
    let event_path = std::env::temp_dir().join(format!("spot-demo-{}.json", std::process::id()));
    std::fs::write(&event_path, event.to_string()).expect("writing the demo event");
    show("EC2 Spot Instance Interruption Warning", runtime.invoke(&event_path));
    let _ = std::fs::remove_file(&event_path);
    print_groups("Target groups after:").await;
    show("A malformed event", runtime.invoke(&event_file("hello-rest-api.json")));

    // The template's way in: warnings gathered by the SQS queue into one batch, one search.
    let (second, _) = &instances[1];
    let mut batch = read_event("spot-warnings-sqs-batch.json");
    if let Some(records) = batch["Records"].as_array_mut() {
        let mut warning = read_event("spot-interruption-warning.json");
        warning["detail"]["instance-id"] = serde_json::json!(second);
        records[0]["body"] = serde_json::json!(warning.to_string());
        records[1]["body"] = serde_json::json!("not an EventBridge event");
    }
    println!("Instance {second} gets its warning in an SQS batch, beside a record that is no warning.");
    std::fs::write(&event_path, batch.to_string()).expect("writing the demo event");
    show("An SQS batch of warnings (the failed record is retried, the rest done)", runtime.invoke(&event_path));
    let _ = std::fs::remove_file(&event_path);
    print_groups("Target groups after the batch:").await;
}

async fn secret_rotation(runtime: &CargoLambda) {
    heading("secret-rotation: a full rotation of a PostgreSQL password (moto + a local cluster)");
    let moto = Moto::start();
    let pg = Postgres::start();
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let old_password = "demo-Old-Passw0rd";
    let superuser = pg.superuser().await;
    superuser
        .batch_execute(&format!("CREATE ROLE app LOGIN PASSWORD '{old_password}'"))
        .await
        .expect("creating the demo user");
    let secret = serde_json::json!({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": "app",
        "password": old_password, "dbname": "postgres", "ssl": true
    });
    let created = sm.create_secret().name("demo/app/postgres").secret_string(secret.to_string()).send().await;
    let secret_id = created.expect("creating the demo secret").arn().unwrap_or_default().to_owned();
    let token = read_event("rotation-create-secret.json")["ClientRequestToken"].as_str().unwrap_or_default().to_owned();
    println!("Secret {secret_id}: user app, TLS required and verified against the cluster's test CA.");
    begin_rotation(&sm, &secret_id, &token).await;

    let mut env = moto.env();
    env.push(("DB_CA_BUNDLE".into(), pg.ca.display().to_string()));
    let _function = runtime.start_function(&function_binary("secret-rotation"), &env);
    for file in [
        "rotation-create-secret.json",
        "rotation-set-secret.json",
        "rotation-test-secret.json",
        "rotation-finish-secret.json",
    ] {
        let mut event = read_event(file);
        event["SecretId"] = serde_json::json!(secret_id);
        let path = std::env::temp_dir().join(format!("rotation-demo-{}-{file}", std::process::id()));
        std::fs::write(&path, event.to_string()).expect("writing the demo event");
        show(&format!("{}  ({file})", event["Step"].as_str().unwrap_or_default()), runtime.invoke(&path));
        let _ = std::fs::remove_file(&path);
    }
    end_rotation(&sm, &secret_id, &token).await;

    let current = sm.get_secret_value().secret_id(&secret_id).version_stage("AWSCURRENT").send().await;
    let current = current.expect("reading the rotated secret");
    let value: serde_json::Value = serde_json::from_str(current.secret_string().unwrap_or("{}")).unwrap_or_default();
    let new_password = value["password"].as_str().unwrap_or_default();
    println!("AWSCURRENT is now version {}", current.version_id().unwrap_or_default());
    println!("  the new password logs in:  {}", pg.can_log_in("app", new_password).await);
    println!("  the old password logs in:  {}", pg.can_log_in("app", old_password).await);
}

async fn mq_poller(runtime: &CargoLambda) {
    heading("mq-poller: an ActiveMQ queue (STOMP over TLS) drained into a DynamoDB table (moto)");
    let moto = Moto::start();
    let broker = ActiveMq::start();
    let config = moto.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, "mq-messages").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    s3.create_bucket().bucket("mq-bodies").send().await.expect("creating the body bucket");
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 1..=5 {
        producer
            .send("SAMPLE_QUEUE", format!("order {i} for the kitchen").as_bytes(), &[("x-order", &i.to_string())])
            .await;
    }
    producer.send("SAMPLE_QUEUE", &[0xde, 0xad, 0xbe, 0xef], &[]).await;
    producer.send("SAMPLE_QUEUE", &vec![b'L'; 600 * 1024], &[("x-kind", "report")]).await;
    producer.flush().await;
    println!(
        "7 messages (5 text with a header, 1 binary, 1 of 600 KB, too large for an item) sent to SAMPLE_QUEUE on {}",
        broker.stomp_ssl_url()
    );

    let mut env = moto.env();
    for (k, v) in [
        ("TABLE_NAME", "mq-messages".to_owned()),
        ("BODY_BUCKET", "mq-bodies".to_owned()),
        ("BROKER_URL", broker.stomp_ssl_url()),
        ("BROKER_CA_BUNDLE", broker.ca.display().to_string()),
        ("BROKER_USERNAME", activemq::USER.to_owned()),
        ("BROKER_PASSWORD", activemq::PASSWORD.to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let _function = runtime.start_function(&function_binary("mq-poller"), &env);
    show("EventBridge scheduled event", runtime.invoke(&event_file("mq-scheduled-poll.json")));
    let mut items = scan_all(&dynamo, "mq-messages").await;
    items.sort_by_key(|item| format!("{:?}", item.get("id")));
    println!("Table mq-messages now holds {} items:", items.len());
    for item in &items {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let shown = if item.contains_key("bodyKey") {
            format!("body in s3://{}/{}", text("bodyBucket"), text("bodyKey"))
        } else {
            let body = item_body(item);
            match std::str::from_utf8(&body) {
                Ok(text) => format!("{text:?}"),
                Err(_) => format!("{} bytes of binary", body.len()),
            }
        };
        let id = item.get("id").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        println!("  {id:<60} {shown}");
    }
    let left = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    println!(
        "Messages left on the queue: {}",
        left.drain("SAMPLE_QUEUE", std::time::Duration::from_millis(500)).await.len()
    );
    show("An ActiveMQ event-source batch", runtime.invoke(&event_file("mq-activemq-event-source.json")));
}
