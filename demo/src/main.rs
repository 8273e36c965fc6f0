//! The suite's main job, locally: each function started as Lambda would start it (a process
//! polling cargo-lambda's Runtime API) and sent its sample events with `cargo lambda invoke`,
//! against the local stand-ins. Prints what was sent and what changed, checks each scenario's
//! real outcome, and ends with a table of them; everything else goes to a log file.

mod deploys;
mod report;

use std::path::Path;
use std::process::ExitCode;

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_runtime::cargo_lambda::CargoLambda;
use harness_runtime::paths::{event_file, function_binary, read_event};
use harness_runtime::process::KillOnDrop;
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{create_table, item_body, scan_all};
use harness_services::ec2::{create_group, launch, register, vpc_with_subnet};
use harness_services::moto::Moto;
use harness_services::postgres::Postgres;
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::stomp::StompClient;
use serde_json::{json, Value};

use report::{catch_unwind, Demo, Log, Style};

/// `Err` as the text of a failure.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

fn check(holds: bool, failure: impl FnOnce() -> String) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(failure())
    }
}

/// Sends the event in `file` and prints what was sent and what the function answered.
fn invoke(runtime: &CargoLambda, label: &str, file: &Path) -> Result<String, String> {
    let answer = tokio::task::block_in_place(|| runtime.invoke(file));
    match &answer {
        Ok(text) => println!("{label}\n  -> {text}"),
        Err(text) => println!("{label}\n  -> error: {text}"),
    }
    answer
}

/// An invocation expected to succeed, its answer parsed.
fn invoke_ok(runtime: &CargoLambda, label: &str, file: &Path) -> Result<Value, String> {
    let answer = invoke(runtime, label, file).map_err(|e| format!("the function answered an error: {e}"))?;
    serde_json::from_str(&answer).context("the answer is not JSON")
}

/// `event` written where `cargo lambda invoke --data-file` can read it; removed when dropped.
struct EventFile(std::path::PathBuf);

impl EventFile {
    fn write(name: &str, event: &Value) -> Result<EventFile, String> {
        let path = std::env::temp_dir().join(format!("ops-suite-demo-{}-{name}", std::process::id()));
        std::fs::write(&path, event.to_string()).context("writing the demo event")?;
        Ok(EventFile(path))
    }
}

impl Drop for EventFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn start_function(
    demo: &Demo,
    runtime: &CargoLambda,
    name: &str,
    env: &[(String, String)],
) -> Result<KillOnDrop, String> {
    let binary = function_binary(name);
    std::panic::catch_unwind(|| runtime.start_function(&binary, env))
        .map_err(|payload| format!("starting {name}: {}", report::panic_message(payload)))
        .inspect(|_| demo.log.note(&format!("--- started {name}")))
}

#[tokio::main]
async fn main() -> ExitCode {
    let style = Style::detect();
    let log = match Log::create() {
        Ok(log) => log,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    report::panics_to(log.path());
    let mut demo = Demo::new(style, log);

    demo.heading("Local Lambda runtime");
    let log_path = demo.log.path().to_owned();
    match demo.start("cargo-lambda's Runtime API", "cargo lambda watch", || CargoLambda::start_logging_to(&log_path)) {
        Ok(runtime) => {
            // A setup failure (an `Err` or a panic outside a scenario) fails the function's next
            // scenario and leaves the rest not run.
            macro_rules! group {
                ($names:expr, $scenarios:expr) => {
                    let outcome = catch_unwind($scenarios).await.and_then(|outcome| outcome);
                    if let Err(why) = outcome {
                        demo.stopped(&$names, &why);
                    }
                };
            }
            group!(HELLO, hello_api(&mut demo, &runtime));
            group!(SPOT, spot_drainer(&mut demo, &runtime));
            group!(ROTATION, secret_rotation(&mut demo, &runtime));
            group!(MQ, mq_poller(&mut demo, &runtime));
            group!(deploys::DEPLOY, deploys::pretraffic_hook(&mut demo, &runtime));
        }
        Err(why) => {
            let names: Vec<&str> = [&HELLO[..], &SPOT, &ROTATION, &MQ, &deploys::DEPLOY].concat();
            demo.stopped(&names, &why);
        }
    }
    let leftovers = report::stop_leftover_children(&demo.log);
    demo.finish(&leftovers)
}

const HELLO: [&str; 4] = [
    "hello-api: a REST API event",
    "hello-api: an HTTP API event",
    "hello-api: a base64 body",
    "hello-api: an empty body is refused",
];

async fn hello_api(demo: &mut Demo, runtime: &CargoLambda) -> Result<(), String> {
    demo.heading("hello-api: API Gateway events through the local Lambda runtime");
    let _function = start_function(demo, runtime, "hello-api", &[])?;
    let cases = [
        ("hello-rest-api.json", 200, "Hello Paul"),
        ("hello-http-api.json", 200, "Hello Paul"),
        ("hello-base64-body.json", 200, "Hello Zoë"),
        ("hello-empty-body.json", 400, "no name was provided in the HTTP body"),
    ];
    for (name, (file, status, body)) in HELLO.iter().zip(cases) {
        demo.scenario(name, async {
            let answer = invoke_ok(runtime, &format!("POST /hello  ({file})"), &event_file(file))?;
            check(answer["statusCode"] == status && answer["body"] == body, || {
                format!("expected {status} {body:?}, the answer was {} {}", answer["statusCode"], answer["body"])
            })
        })
        .await;
    }
    Ok(())
}

const SPOT: [&str; 3] = [
    "spot-drainer: a warning drains its instance",
    "spot-drainer: a malformed event is refused",
    "spot-drainer: an SQS batch (bad record retried)",
];

/// Each group's name and the targets registered in it (`id:port`).
async fn target_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    groups: &[(&str, String)],
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut found = Vec::new();
    for (name, arn) in groups {
        let health = elb.describe_target_health().target_group_arn(arn).send().await.context("DescribeTargetHealth")?;
        let targets = health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target())
            .map(|t| format!("{}:{}", t.id().unwrap_or_default(), t.port().unwrap_or_default()))
            .collect();
        found.push(((*name).to_owned(), targets));
    }
    Ok(found)
}

/// Prints the groups under `title`; fails if an instance of `gone` is still registered in one
/// (by id or by address), or one of `kept` is missing from one.
async fn print_and_check_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    groups: &[(&str, String)],
    title: &str,
    gone: &[&(String, String)],
    kept: &[&(String, String)],
) -> Result<(), String> {
    println!("{title}");
    let found = target_groups(elb, groups).await?;
    for (name, targets) in &found {
        let shown = if targets.is_empty() { "(none)".to_owned() } else { targets.join("  ") };
        println!("  {name:<10} {shown}");
    }
    for (name, targets) in &found {
        let has = |(id, ip): &&(String, String)| {
            targets.iter().any(|t| t.split(':').next().is_some_and(|target| target == id || target == ip))
        };
        if let Some((id, _)) = gone.iter().find(|instance| has(instance)) {
            return Err(format!("{id} is still registered in {name}"));
        }
        if let Some((id, _)) = kept.iter().find(|instance| !has(instance)) {
            return Err(format!("{id} is no longer registered in {name}, though it had no warning"));
        }
    }
    Ok(())
}

async fn spot_drainer(demo: &mut Demo, runtime: &CargoLambda) -> Result<(), String> {
    demo.heading("spot-drainer: a Spot interruption warning against moto's EC2 and ELBv2");
    let moto = demo.start("moto", "EC2, ELBv2", Moto::start)?;
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
    let (doomed, second) = (&instances[0], &instances[1]);

    let mut env = moto.env();
    env.push(("DISCOVERY".into(), "scan".into()));
    let _function = start_function(demo, runtime, "spot-drainer", &env)?;

    demo.scenario(SPOT[0], async {
        println!("Instance {} gets the two-minute warning.", doomed.0);
        print_and_check_groups(&elb, &groups, "Target groups before:", &[], &[doomed, second]).await?;
        let mut event = read_event("spot-interruption-warning.json");
        event["detail"]["instance-id"] = json!(doomed.0);
        let file = EventFile::write("spot-warning.json", &event)?;
        let summary = invoke_ok(runtime, "EC2 Spot Instance Interruption Warning", &file.0)?;
        let registrations = summary["registrations"].as_array().cloned().unwrap_or_default();
        check(registrations.len() == 2 && registrations.iter().all(|r| r["outcome"] == "deregistered"), || {
            format!("expected 2 registrations deregistered, the summary says {}", summary["registrations"])
        })?;
        print_and_check_groups(&elb, &groups, "Target groups after:", &[doomed], &[second]).await
    })
    .await;

    demo.scenario(SPOT[1], async {
        match invoke(runtime, "A malformed event", &event_file("hello-rest-api.json")) {
            Ok(answer) => Err(format!("the function accepted it: {answer}")),
            Err(error) => {
                check(error.contains("MalformedEvent"), || format!("refused, but not as MalformedEvent: {error}"))
            }
        }
    })
    .await;

    // The template's way in: warnings gathered by the SQS queue into one batch, one search.
    demo.scenario(SPOT[2], async {
        let mut batch = read_event("spot-warnings-sqs-batch.json");
        let records = batch["Records"].as_array_mut().ok_or("the sample batch has no Records")?;
        let mut warning = read_event("spot-interruption-warning.json");
        warning["detail"]["instance-id"] = json!(second.0);
        records[0]["body"] = json!(warning.to_string());
        records[1]["body"] = json!("not an EventBridge event");
        let bad_record = records[1]["messageId"].clone();
        println!("Instance {} gets its warning in an SQS batch, beside a record that is no warning.", second.0);
        let file = EventFile::write("spot-batch.json", &batch)?;
        let label = "An SQS batch of warnings (the failed record is retried, the rest done)";
        let answer = invoke_ok(runtime, label, &file.0)?;
        let failures = &answer["batchItemFailures"];
        check(*failures == json!([{ "itemIdentifier": bad_record }]), || {
            format!("expected only the record {bad_record} to be retried, the answer was {answer}")
        })?;
        print_and_check_groups(&elb, &groups, "Target groups after the batch:", &[doomed, second], &[]).await
    })
    .await;
    Ok(())
}

const ROTATION: [&str; 1] = ["secret-rotation: four steps, the new password logs in"];

async fn secret_rotation(demo: &mut Demo, runtime: &CargoLambda) -> Result<(), String> {
    demo.heading("secret-rotation: a full rotation of a PostgreSQL password (moto + a local cluster)");
    let moto = demo.start("moto", "Secrets Manager", Moto::start)?;
    let pg = demo.start("PostgreSQL", "a throwaway cluster, TLS", Postgres::start)?;
    let failures = demo.failures();
    let outcome = rotation(demo, runtime, &moto, &pg).await;
    if outcome.is_err() || demo.failures() > failures {
        demo.log.note(&format!("--- PostgreSQL's log\n{}", pg.log()));
    }
    outcome
}

async fn rotation(demo: &mut Demo, runtime: &CargoLambda, moto: &Moto, pg: &Postgres) -> Result<(), String> {
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let old_password = "demo-Old-Passw0rd";
    let superuser = pg.superuser().await;
    superuser
        .batch_execute(&format!("CREATE ROLE app LOGIN PASSWORD '{old_password}'"))
        .await
        .context("creating the demo user")?;
    let secret = json!({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": "app",
        "password": old_password, "dbname": "postgres", "ssl": true
    });
    let created = sm.create_secret().name("demo/app/postgres").secret_string(secret.to_string()).send().await;
    let secret_id = created.context("creating the demo secret")?.arn().unwrap_or_default().to_owned();
    let token = read_event("rotation-create-secret.json")["ClientRequestToken"].as_str().unwrap_or_default().to_owned();
    println!("Secret {secret_id}: user app, TLS required and verified against the cluster's test CA.");
    begin_rotation(&sm, &secret_id, &token).await;

    let mut env = moto.env();
    env.push(("DB_CA_BUNDLE".into(), pg.ca.display().to_string()));
    let _function = start_function(demo, runtime, "secret-rotation", &env)?;
    demo.scenario(ROTATION[0], async {
        for file in [
            "rotation-create-secret.json",
            "rotation-set-secret.json",
            "rotation-test-secret.json",
            "rotation-finish-secret.json",
        ] {
            let mut event = read_event(file);
            event["SecretId"] = json!(secret_id);
            let step = event["Step"].as_str().unwrap_or_default().to_owned();
            let path = EventFile::write(file, &event)?;
            invoke(runtime, &format!("{step}  ({file})"), &path.0).map_err(|e| format!("{step} failed: {e}"))?;
        }
        end_rotation(&sm, &secret_id, &token).await;

        let current = sm.get_secret_value().secret_id(&secret_id).version_stage("AWSCURRENT").send().await;
        let current = current.context("reading the rotated secret")?;
        let value: Value = serde_json::from_str(current.secret_string().unwrap_or("{}")).unwrap_or_default();
        let new_password = value["password"].as_str().unwrap_or_default();
        let version = current.version_id().unwrap_or_default();
        let (new_logs_in, old_logs_in) =
            (pg.can_log_in("app", new_password).await, pg.can_log_in("app", old_password).await);
        println!("AWSCURRENT is now version {version}");
        println!("  the new password logs in:  {new_logs_in}");
        println!("  the old password logs in:  {old_logs_in}");
        check(version == token, || format!("AWSCURRENT is version {version}, not the rotation's {token}"))?;
        check(new_password != old_password, || "the password did not change".to_owned())?;
        check(new_logs_in, || "the new password does not log in".to_owned())?;
        check(!old_logs_in, || "the old password still logs in".to_owned())
    })
    .await;
    Ok(())
}

const MQ: [&str; 2] =
    ["mq-poller: a poll drains the queue into the table", "mq-poller: an ActiveMQ event-source batch"];

async fn mq_poller(demo: &mut Demo, runtime: &CargoLambda) -> Result<(), String> {
    demo.heading("mq-poller: an ActiveMQ queue (STOMP over TLS) drained into a DynamoDB table (moto)");
    let moto = demo.start("moto", "DynamoDB, S3", Moto::start)?;
    let broker = demo.start("ActiveMQ", "a throwaway broker, STOMP over TLS; can take up to 2 min", ActiveMq::start)?;
    let failures = demo.failures();
    let outcome = mq_scenarios(demo, runtime, &moto, &broker).await;
    if outcome.is_err() || demo.failures() > failures {
        demo.log.note(&format!("--- ActiveMQ's log\n{}", broker.log()));
    }
    outcome
}

async fn mq_scenarios(demo: &mut Demo, runtime: &CargoLambda, moto: &Moto, broker: &ActiveMq) -> Result<(), String> {
    let config = moto.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, "mq-messages").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    s3.create_bucket().bucket("mq-bodies").send().await.context("creating the body bucket")?;
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
    let _function = start_function(demo, runtime, "mq-poller", &env)?;

    demo.scenario(MQ[0], async {
        let summary = invoke_ok(runtime, "EventBridge scheduled event", &event_file("mq-scheduled-poll.json"))?;
        let mut items = scan_all(&dynamo, "mq-messages").await;
        items.sort_by_key(|item| format!("{:?}", item.get("id")));
        println!("Table mq-messages now holds {} items:", items.len());
        let mut in_bucket = Vec::new();
        for item in &items {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let shown = if item.contains_key("bodyKey") {
                in_bucket.push((text("bodyBucket"), text("bodyKey")));
                format!("body in s3://{}/{}", text("bodyBucket"), text("bodyKey"))
            } else {
                let body = item_body(item);
                match std::str::from_utf8(&body) {
                    Ok(text) => format!("{text:?}"),
                    Err(_) => format!("{} bytes of binary", body.len()),
                }
            };
            println!("  {:<60} {shown}", text("id"));
        }
        let left = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
        let left = left.drain("SAMPLE_QUEUE", std::time::Duration::from_millis(500)).await.len();
        println!("Messages left on the queue: {left}");
        check(summary["received"] == 7 && summary["stored"] == 7, || {
            format!("expected 7 received and stored: {summary}")
        })?;
        check(items.len() == 7, || format!("expected 7 items in the table, found {}", items.len()))?;
        check(left == 0, || format!("{left} messages are still on the queue"))?;
        let [(bucket, key)] = &in_bucket[..] else {
            return Err(format!("expected 1 body in the bucket, the table names {}", in_bucket.len()));
        };
        let object = s3.head_object().bucket(bucket).key(key).send().await.context("the body in the bucket")?;
        let size = object.content_length().unwrap_or_default();
        check(size == 600 * 1024, || format!("the body in s3://{bucket}/{key} is {size} bytes, not 600 KB"))
    })
    .await;

    demo.scenario(MQ[1], async {
        let before = scan_all(&dynamo, "mq-messages").await.len();
        let label = "An ActiveMQ event-source batch";
        let answer = invoke_ok(runtime, label, &event_file("mq-activemq-event-source.json"))?;
        let after = scan_all(&dynamo, "mq-messages").await.len();
        println!("Table mq-messages now holds {after} items.");
        check(answer["received"] == 2 && answer["stored"] == 2, || {
            format!("expected 2 received and stored: {answer}")
        })?;
        check(after == before + 2, || format!("the table went from {before} to {after} items, not 2 more"))
    })
    .await;
    Ok(())
}
