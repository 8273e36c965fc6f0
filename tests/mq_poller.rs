//! mq-poller against a real ActiveMQ (STOMP, TLS) and RabbitMQ (AMQP), with moto's DynamoDB.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{create_table, item_body, scan_all};
use harness_services::moto::Moto;
use harness_services::rabbitmq::{self, RabbitMq};
use harness_services::stomp::StompClient;
use mq_poller::credentials::{BrokerCredentials, CredentialSource, CredentialsProvider};
use mq_poller::poll::StopReason;
use mq_poller::{handle_event, AwsClients, Outcome, Settings};
use serde_json::json;
use tokio::time::Instant;

const TABLE: &str = "mq-messages";

struct Scene {
    moto: Moto,
    dynamo: aws_sdk_dynamodb::Client,
    /// The table, and no body bucket.
    aws: AwsClients,
}

async fn scene() -> Scene {
    let moto = Moto::start();
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamo, TABLE).await;
    Scene { aws: table_only(&dynamo), moto, dynamo }
}

fn table_only(dynamo: &aws_sdk_dynamodb::Client) -> AwsClients {
    AwsClients { dynamo: dynamo.clone(), s3: None }
}

fn settings(urls: &[String], queue: &str, ca: Option<&std::path::Path>) -> Settings {
    let mut settings = Settings::from_lookup(|name| match name {
        "TABLE_NAME" => Some(TABLE.into()),
        "QUEUE_NAME" => Some(queue.into()),
        "BROKER_URL" => Some(urls.join(",")),
        "IDLE_TIMEOUT_MS" => Some("1500".into()),
        _ => None,
    })
    .expect("settings");
    settings.broker_ca_bundle = ca.map(|ca| shared::tls::bundle("BROKER_CA_BUNDLE", ca));
    settings
}

fn credentials(user: &str, password: &str) -> CredentialsProvider {
    CredentialsProvider::new(CredentialSource::Given(BrokerCredentials::new(user, password)), None)
}

fn schedule_event() -> serde_json::Value {
    harness_runtime::paths::read_event("mq-scheduled-poll.json")
}

fn in_a_minute() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// The i-th test message: text, binary (not UTF-8) or text with headers, in turn.
fn test_message(i: usize) -> (Vec<u8>, Vec<(String, String)>) {
    match i % 3 {
        0 => (format!("text message {i} ✓").into_bytes(), vec![]),
        1 => (vec![0xff, 0x00, 0xfe, (i % 256) as u8, 0x00], vec![]),
        _ => (
            format!("{{\"order\": {i}}}").into_bytes(),
            vec![("x-order".to_owned(), i.to_string()), ("content-type".to_owned(), "application/json".to_owned())],
        ),
    }
}

async fn send_messages(broker: &ActiveMq, queue: &str, range: std::ops::Range<usize>) {
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in range {
        let (body, headers) = test_message(i);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        producer.send(queue, &body, &headers).await;
    }
    producer.flush().await;
}

async fn remaining(broker: &ActiveMq, queue: &str) -> usize {
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    consumer.drain(queue, Duration::from_millis(1500)).await.len()
}

fn bodies(items: &[HashMap<String, AttributeValue>]) -> BTreeSet<Vec<u8>> {
    items.iter().map(item_body).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_over_tls_drains_a_thousand_messages_byte_for_byte() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "orders";
    send_messages(&broker, queue, 0..1000).await;

    let settings = settings(&[broker.stomp_ssl_url()], queue, Some(&broker.ca));
    let outcome = handle_event(
        &scene.aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    let Outcome::Poll(summary) = outcome else { panic!("expected a poll: {outcome:?}") };
    assert_eq!((summary.received, summary.stored, summary.rejected), (1000, 1000, 0), "{summary:?}");
    assert_eq!(summary.stop_reason, StopReason::Idle);

    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 1000);
    let expected: BTreeSet<Vec<u8>> = (0..1000).map(|i| test_message(i).0).collect();
    assert_eq!(bodies(&items), expected, "bodies byte for byte");
    let binary = items.iter().filter(|i| matches!(i.get("message"), Some(AttributeValue::B(_)))).count();
    assert_eq!(binary, 333, "bodies that are not UTF-8 are stored as binary");
    let with_header = items
        .iter()
        .find(|i| matches!(i.get("message"), Some(AttributeValue::S(s)) if s == "{\"order\": 2}"))
        .expect("item 2");
    let Some(AttributeValue::M(headers)) = with_header.get("headers") else { panic!("headers") };
    assert_eq!(headers.get("x-order"), Some(&AttributeValue::S("2".into())));
    assert!(
        matches!(with_header.get("id"), Some(AttributeValue::S(id)) if id.starts_with("ID:")),
        "keyed by the STOMP message-id"
    );
    assert_eq!(with_header.get("queue"), Some(&AttributeValue::S(queue.into())));
    assert_eq!(with_header.get("redelivered"), Some(&AttributeValue::Bool(false)));
    assert_eq!(remaining(&broker, queue).await, 0, "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_table_acknowledges_nothing_and_bad_endpoints_fail_clearly() {
    let broker = ActiveMq::start();
    let queue = "kept";
    send_messages(&broker, queue, 0..60).await;

    // DynamoDB unreachable: an error, nothing acknowledged, every message still queued.
    let nowhere = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("k", "s", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let dynamo = aws_sdk_dynamodb::Client::new(&nowhere);
    let good = settings(&[broker.stomp_url()], queue, None);
    let error = handle_event(
        &table_only(&dynamo),
        &good,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("writing to DynamoDB failed") && error.contains("not acknowledged"), "{error}");
    assert_eq!(remaining(&broker, queue).await, 60, "every message is still on the queue");

    let scene = scene().await;
    // Wrong password: refused by the broker, named as such, and the password is not echoed.
    let error = handle_event(
        &scene.aws,
        &good,
        &credentials(activemq::USER, "not-the-Passw0rd"),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("refused the login of user \"mq-user\""), "{error}");
    assert!(!error.contains("not-the-Passw0rd"), "{error}");

    // Unreachable broker.
    let closed = format!("stomp://127.0.0.1:{}", harness_runtime::process::free_port());
    let error = handle_event(
        &scene.aws,
        &settings(&[closed.clone()], queue, None),
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("cannot reach"), "{error}");

    // Active/standby: the first endpoint is down, the second answers.
    send_messages(&broker, queue, 100..110).await;
    let pair = settings(&[closed, broker.stomp_url()], queue, None);
    let outcome = handle_event(
        &scene.aws,
        &pair,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("the standby answers");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!(summary.endpoint, broker.stomp_url());
    assert_eq!(summary.stored, 10);
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_goes_to_the_dead_letter_queue_and_the_rest_are_stored() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "mixed";
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    producer.send(queue, b"small before", &[]).await;
    producer.send(queue, &vec![b'x'; 450 * 1024], &[("x-big", "yes")]).await;
    producer.send(queue, b"small after", &[]).await;
    producer.flush().await;

    let outcome = handle_event(
        &scene.aws,
        &settings(&[broker.stomp_url()], queue, None),
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!((summary.received, summary.stored, summary.rejected), (3, 2, 1));
    let stored = bodies(&scan_all(&scene.dynamo, TABLE).await);
    assert_eq!(stored, BTreeSet::from([b"small before".to_vec(), b"small after".to_vec()]));
    assert_eq!(remaining(&broker, queue).await, 0);
    let dead = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    let dead = dead.drain(&format!("DLQ.{queue}"), Duration::from_secs(3)).await;
    assert_eq!(dead.len(), 1, "the oversized message is in the dead-letter queue");
    assert_eq!(dead[0].1.len(), 450 * 1024);
}

const BODIES: &str = "mq-bodies";

/// `settings` with the body bucket, and clients that write to it; `create` makes the bucket.
async fn with_body_bucket(
    scene: &Scene,
    mut settings: Settings,
    create: bool,
) -> (Settings, AwsClients, aws_sdk_s3::Client) {
    let config = scene.moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    if create {
        s3.create_bucket().bucket(BODIES).send().await.expect("create_bucket");
    }
    settings.body_bucket = Some(BODIES.into());
    let aws = AwsClients::new(&config, &settings);
    (settings, aws, s3)
}

async fn object(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let object = s3.get_object().bucket(BODIES).key(key).send().await.expect("get_object");
    object.body.collect().await.expect("object body").into_bytes().to_vec()
}

async fn object_keys(s3: &aws_sdk_s3::Client) -> Vec<String> {
    let listed = s3.list_objects_v2().bucket(BODIES).send().await.expect("list_objects_v2");
    listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_large_for_an_item_goes_to_the_bucket_and_its_item_points_at_it() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "claims";
    let large: Vec<u8> = (0..450 * 1024).map(|i| (i % 251) as u8).collect();
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    producer.send(queue, b"small before", &[]).await;
    producer.send(queue, &large, &[("x-big", "yes")]).await;
    producer.send(queue, b"small after", &[]).await;
    producer.flush().await;
    let (settings, aws, s3) = with_body_bucket(&scene, settings(&[broker.stomp_url()], queue, None), true).await;

    let outcome = handle_event(
        &aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!(
        (summary.received, summary.stored, summary.rejected, summary.bodies_in_bucket),
        (3, 3, 0, 1),
        "{summary:?}"
    );
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 3);
    let claim = items.iter().find(|i| i.contains_key("bodyKey")).expect("the large message's item");
    assert!(!claim.contains_key("message"), "the body is not in the item");
    assert_eq!(text(claim, "bodyBucket"), BODIES);
    assert_eq!(claim.get("bodyBytes"), Some(&AttributeValue::N(large.len().to_string())));
    let Some(AttributeValue::M(headers)) = claim.get("headers") else { panic!("headers") };
    assert_eq!(headers.get("x-big"), Some(&AttributeValue::S("yes".into())));
    assert_eq!(object(&s3, &text(claim, "bodyKey")).await, large, "the object is the body, byte for byte");
    assert_eq!(object_keys(&s3).await.len(), 1);
    assert_eq!(remaining(&broker, queue).await, 0);
    let dead = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    assert!(dead.drain(&format!("DLQ.{queue}"), Duration::from_secs(2)).await.is_empty(), "nothing was dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_source_batch_with_a_large_body_is_stored_and_its_retry_rewrites_the_same_object() {
    use base64::Engine;
    let scene = scene().await;
    let (settings, aws, s3) = with_body_bucket(&scene, settings(&[], "SAMPLE_QUEUE", None), true).await;
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    let large = vec![b'L'; 700 * 1024];
    let batch = json!({"eventSource": "aws:mq", "messages": [
        {"messageID": "ID:small", "data": "c21hbGw="},
        {"messageID": "ID:large", "data": base64::engine::general_purpose::STANDARD.encode(&large)}
    ]});
    for attempt in 0..2 {
        let outcome = handle_event(&aws, &settings, &no_broker, &batch, in_a_minute()).await.expect("stored");
        assert_eq!(
            outcome,
            Outcome::EventSource { received: 2, stored: 2, bodies_in_bucket: 1, parked: 0 },
            "attempt {attempt}"
        );
    }
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 2, "the retry overwrote its items");
    let claim = items.iter().find(|i| text(i, "id") == "ID:large").expect("the large item");
    assert_eq!(object_keys(&s3).await, [text(claim, "bodyKey")], "one object, rewritten by the retry");
    assert_eq!(object(&s3, &text(claim, "bodyKey")).await, large);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_body_bucket_acknowledges_nothing_and_says_so() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "no-bucket";
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    producer.send(queue, b"small", &[]).await;
    producer.send(queue, &vec![b'x'; 450 * 1024], &[]).await;
    producer.flush().await;
    // The bucket is named but was never created (or the role may not write to it).
    let (settings, aws, _s3) = with_body_bucket(&scene, settings(&[broker.stomp_url()], queue, None), false).await;
    let error = handle_event(
        &aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect_err("the bucket fails");
    assert_eq!(error.error_type(), "BodyStoreUnavailable", "{error}");
    assert!(error.to_string().contains("BODY_BUCKET"), "{error}");
    // The small message may have been stored in a batch of its own before; the large one is not.
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert!(items.iter().all(|i| !i.contains_key("bodyKey")), "no item points at a body that is not there");
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    let left = consumer.drain(queue, Duration::from_millis(1500)).await;
    assert!(left.iter().any(|(_, body)| body.len() == 450 * 1024), "the large message stays on the queue");
    assert_eq!(left.len() + items.len(), 2, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_stops_before_the_deadline_when_the_queue_never_goes_idle() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "busy";
    let port = broker.stomp_port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = stop.clone();
    let producer = tokio::spawn(async move {
        let mut client = StompClient::connect(port, activemq::USER, activemq::PASSWORD).await;
        let mut i = 0u64;
        // Bounded: at most 20,000 messages or until told to stop.
        while !producing.load(std::sync::atomic::Ordering::Relaxed) && i < 20_000 {
            client.send(queue, format!("busy {i}").as_bytes(), &[]).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client.flush().await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut settings = settings(&[broker.stomp_url()], queue, None);
    settings.deadline_margin = Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = handle_event(
        &scene.aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        deadline,
    )
    .await
    .expect("poll");
    let returned_at = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = producer.await;
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!(summary.stop_reason, StopReason::Deadline, "{summary:?}");
    assert!(returned_at < deadline, "returned before the invocation's deadline");
    assert!(summary.stored > 0 && summary.stored == summary.received);
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len() as u64, summary.stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_drains_with_manual_acks_and_ids_from_the_message_id_property() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "mq-poller-test";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for i in 0..300usize {
        let (body, _) = test_message(i);
        // Every tenth message has no message_id: it is keyed by its content.
        let properties = if i % 10 == 0 {
            BasicProperties::default()
        } else {
            BasicProperties::default().with_message_id(format!("m-{i}").into())
        };
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), &body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    let settings = settings(&[broker.broker_url()], queue, None);
    let outcome = handle_event(
        &scene.aws,
        &settings,
        &credentials(rabbitmq::USER, rabbitmq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!((summary.received, summary.stored), (300, 300));
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 300);
    assert_eq!(bodies(&items), (0..300).map(|i| test_message(i).0).collect::<BTreeSet<_>>());
    let by_content = items
        .iter()
        .filter(|i| matches!(i.get("id"), Some(AttributeValue::S(id)) if id.starts_with("content:")))
        .count();
    assert_eq!(by_content, 30, "messages without message_id are keyed by their content");
    let left = channel
        .queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("passive declare");
    assert_eq!(left.message_count(), 0, "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_batches_of_both_engines_are_stored_leniently() {
    let scene = scene().await;
    let settings = settings(&[], "SAMPLE_QUEUE", None);
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    for file in ["mq-activemq-event-source.json", "mq-rabbitmq-event-source.json"] {
        let event = harness_runtime::paths::read_event(file);
        let outcome = handle_event(&scene.aws, &settings, &no_broker, &event, in_a_minute()).await.expect(file);
        assert!(matches!(outcome, Outcome::EventSource { stored: 2, .. }), "{file}: {outcome:?}");
    }
    // Fields missing, null or oddly named: nothing rejects the batch.
    let odd = json!({"eventSource": "aws:amq", "messages": [
        {"messageId": "ID:odd-1", "data": "T0s=", "destination": null, "properties": null, "redelivered": null},
        {"data": "bm8gaWQ="}
    ]});
    handle_event(&scene.aws, &settings, &no_broker, &odd, in_a_minute()).await.expect("odd batch");
    // The same batch again (the event source retries): overwritten, not duplicated, where ids exist.
    let event = harness_runtime::paths::read_event("mq-activemq-event-source.json");
    handle_event(&scene.aws, &settings, &no_broker, &event, in_a_minute()).await.expect("retry");
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 2 + 2 + 2);
    let ids: BTreeSet<String> = items
        .iter()
        .filter_map(|i| match i.get("id") {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(ids.contains("ID:odd-1"));
    assert!(bodies(&items).contains(b"no id".as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_drain_then_run_again_loses_nothing_and_stores_nothing_twice() {
    use harness_runtime::lambda_env::Output;
    use harness_runtime::paths::function_binary;
    use harness_runtime::runtime_api::RuntimeApi;

    let moto = Moto::start();
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamo, TABLE).await;
    let broker = ActiveMq::start();
    let queue = "crashy";
    // Enough that the drain takes a while even on a loaded machine, so the kill lands mid-way.
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;

    let mut env = moto.env();
    for (k, v) in [
        ("TABLE_NAME", TABLE.to_owned()),
        ("QUEUE_NAME", queue.to_owned()),
        ("BROKER_URL", broker.stomp_ssl_url()),
        ("BROKER_CA_BUNDLE", broker.ca.display().to_string()),
        ("BROKER_USERNAME", activemq::USER.to_owned()),
        ("BROKER_PASSWORD", activemq::PASSWORD.to_owned()),
        ("PREFETCH", "50".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let api = std::sync::Arc::new(RuntimeApi::start().await);
    let mut first = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let invoking = api.clone();
    let first_invoke = tokio::spawn(async move {
        invoking.invoke(&schedule_event(), Duration::from_secs(120)).await;
    });
    // Let it store some, then SIGKILL it mid-drain.
    let started = Instant::now();
    loop {
        let described = dynamo.describe_table().table_name(TABLE).send().await.expect("describe_table");
        let stored = described.table().and_then(|t| t.item_count()).unwrap_or_default();
        if stored >= 100 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the first run stored nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().expect("SIGKILL");
    let _ = first.0.wait();
    first_invoke.abort();
    let partial = scan_all(&dynamo, TABLE).await.len();
    assert!(partial < COUNT, "killed too late to test anything ({partial} stored)");

    let api = RuntimeApi::start().await;
    let _second = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let summary = api.invoke(&schedule_event(), Duration::from_secs(120)).await.response();
    assert_eq!(summary["mode"], "poll", "{summary}");

    let items = scan_all(&dynamo, TABLE).await;
    assert_eq!(items.len(), COUNT, "every message is in the table, none twice (killed after {partial})");
    assert_eq!(bodies(&items), (0..COUNT).map(|i| test_message(i).0).collect::<BTreeSet<_>>());
    let redelivered = items.iter().filter(|i| i.get("redelivered") == Some(&AttributeValue::Bool(true))).count();
    assert!(redelivered > 0, "the unacknowledged ones came back marked redelivered");
    assert_eq!(remaining(&broker, queue).await, 0);
}

/// Waits until the table holds at least `count` items (moto's item count is exact).
async fn until_stored(dynamo: &aws_sdk_dynamodb::Client, count: i64) {
    let started = Instant::now();
    loop {
        let described = dynamo.describe_table().table_name(TABLE).send().await.expect("describe_table");
        if described.table().and_then(|t| t.item_count()).unwrap_or_default() >= count {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the poll stored fewer than {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_gone_mid_drain_fails_the_poll_and_loses_nothing() {
    use harness_services::aws_front::AwsFront;
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "table-gone";
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;
    // The function reaches DynamoDB through a front that the test cuts mid-drain, answers lost
    // on the way included; moto itself keeps what was written.
    let front = AwsFront::start(scene.moto.port, Duration::ZERO, Vec::new()).await;
    let config = scene.moto.sdk_config().await;
    let through_front = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(front.endpoint()).build(),
    );
    let settings = settings(&[broker.stomp_url()], queue, None);
    let credentials = credentials(activemq::USER, activemq::PASSWORD);
    let (aws, event) = (table_only(&through_front), schedule_event());
    let polling = handle_event(&aws, &settings, &credentials, &event, in_a_minute());
    let cutting = async {
        until_stored(&scene.dynamo, 200).await;
        front.cut();
    };
    let (result, ()) = tokio::join!(polling, cutting);
    let error = result.expect_err("the table went away");
    assert_eq!(error.error_type(), "StoreUnavailable", "{error}");
    assert!(error.to_string().contains("not acknowledged"), "{error}");

    // Nothing is lost: what is not in the table is still on the queue (a message stored but not
    // acknowledged is in both, and its redelivery overwrites its own item).
    let stored = bodies(&scan_all(&scene.dynamo, TABLE).await);
    assert!(stored.len() < COUNT, "cut too late to test anything");
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    let left: BTreeSet<Vec<u8>> =
        consumer.drain(queue, Duration::from_millis(1500)).await.into_iter().map(|(_, body)| body).collect();
    let all: BTreeSet<Vec<u8>> = (0..COUNT).map(|i| test_message(i).0).collect();
    assert_eq!(stored.union(&left).cloned().collect::<BTreeSet<_>>(), all, "every message is stored or still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_drain_fails_the_poll_and_the_next_poll_completes_the_table() {
    let scene = scene().await;
    let mut broker = ActiveMq::start();
    let queue = "broker-restart";
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;
    let settings = settings(&[broker.stomp_ssl_url()], queue, Some(&broker.ca));
    let credentials = credentials(activemq::USER, activemq::PASSWORD);
    let event = schedule_event();
    let polling = handle_event(&scene.aws, &settings, &credentials, &event, in_a_minute());
    let restarting = async {
        until_stored(&scene.dynamo, 200).await;
        // The broker dies with acknowledgements in flight, and comes back with its store.
        tokio::task::block_in_place(|| broker.restart());
    };
    let (result, ()) = tokio::join!(polling, restarting);
    let error = result.expect_err("the broker went away mid-drain");
    assert!(
        ["BrokerProtocolError", "BrokerUnreachable", "AllEndpointsFailed"].contains(&error.error_type()),
        "{}: {error}",
        error.error_type()
    );
    let partial = scan_all(&scene.dynamo, TABLE).await.len();
    assert!(partial < COUNT, "restarted too late to test anything");

    let outcome = handle_event(&scene.aws, &settings, &credentials, &schedule_event(), in_a_minute())
        .await
        .expect("the next poll");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(
        items.len(),
        COUNT,
        "every message once (the first poll stored {partial}, the second {})",
        summary.stored
    );
    assert_eq!(bodies(&items), (0..COUNT).map(|i| test_message(i).0).collect::<BTreeSet<_>>());
    assert_eq!(remaining(&broker, queue).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_frozen_mid_drain_stops_beating_and_the_broker_hands_its_messages_on() {
    use harness_runtime::lambda_env::Output;
    use harness_runtime::paths::function_binary;
    use harness_runtime::runtime_api::RuntimeApi;

    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "frozen";
    const COUNT: usize = 3000;
    send_messages(&broker, queue, 0..COUNT).await;
    let mut env = scene.moto.env();
    for (k, v) in [
        ("TABLE_NAME", TABLE.to_owned()),
        ("QUEUE_NAME", queue.to_owned()),
        ("BROKER_URL", broker.stomp_url()),
        ("BROKER_USERNAME", activemq::USER.to_owned()),
        ("BROKER_PASSWORD", activemq::PASSWORD.to_owned()),
        // A short beat, so the test is quick.
        ("PREFETCH", "100".to_owned()),
        // (With 0, no beats, the frozen poll keeps what it was sent and this test fails.)
        ("BROKER_HEARTBEAT_MS", "1000".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let api = std::sync::Arc::new(RuntimeApi::start().await);
    let mut function = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let invoking = api.clone();
    let invocation = tokio::spawn(async move { invoking.invoke(&schedule_event(), Duration::from_secs(120)).await });
    until_stored(&scene.dynamo, 200).await;
    // Lambda freezes an environment that times out (or whose invocation is abandoned) with its
    // sockets open: SIGSTOP does the same to the process.
    let pid = function.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().expect("kill -STOP").success());
    let stored = bodies(&scan_all(&scene.dynamo, TABLE).await);

    // Another consumer gets everything not stored, the frozen poll's prefetched messages too,
    // once the broker has given up on the silent connection.
    let consumer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    // (The broker checks for beats at 1.5 times the interval, so a few seconds of quiet.)
    let taken: BTreeSet<Vec<u8>> =
        consumer.drain(queue, Duration::from_secs(10)).await.into_iter().map(|(_, body)| body).collect();
    let _ = function.0.kill();
    let _ = function.0.wait();
    invocation.abort();
    assert!(stored.len() < COUNT, "froze too late to test anything");
    let all: BTreeSet<Vec<u8>> = (0..COUNT).map(|i| test_message(i).0).collect();
    let missing = all.len() - stored.union(&taken).count();
    assert_eq!(
        missing,
        0,
        "messages held by the frozen poll: {missing} (stored {}, taken {})",
        stored.len(),
        taken.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_messages_sharing_a_publisher_id_are_all_stored_and_a_redelivery_is_not_doubled() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "orders";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for body in [&b"two teas"[..], b"one coffee"] {
        let properties = BasicProperties::default().with_message_id("order".into());
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    let settings = settings(&[broker.broker_url()], queue, None);
    let outcome = handle_event(
        &scene.aws,
        &settings,
        &credentials(rabbitmq::USER, rabbitmq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!((summary.received, summary.stored), (2, 2));
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(
        bodies(&items),
        BTreeSet::from([b"two teas".to_vec(), b"one coffee".to_vec()]),
        "both bodies are in the table"
    );

    // The same two again, as a redelivery would bring them: nothing new.
    for body in [&b"two teas"[..], b"one coffee"] {
        let properties = BasicProperties::default().with_message_id("order".into());
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    handle_event(
        &scene.aws,
        &settings,
        &credentials(rabbitmq::USER, rabbitmq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("poll");
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_messages_sharing_an_id_are_all_stored_and_a_retried_batch_adds_nothing() {
    let scene = scene().await;
    let settings = settings(&[], "SAMPLE_QUEUE", None);
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    // base64 of "two teas" and "one coffee", both published with messageId "order".
    let batch = json!({"eventSource": "aws:rmq", "rmqMessagesByQueue": {"orders::/": [
        {"basicProperties": {"messageId": "order"}, "redelivered": false, "data": "dHdvIHRlYXM="},
        {"basicProperties": {"messageId": "order"}, "redelivered": false, "data": "b25lIGNvZmZlZQ=="},
        {"basicProperties": {}, "redelivered": false, "data": "bm8gaWQ="}
    ]}});
    for _ in 0..2 {
        let outcome = handle_event(&scene.aws, &settings, &no_broker, &batch, in_a_minute()).await.expect("batch");
        assert!(matches!(outcome, Outcome::EventSource { stored: 3, .. }), "{outcome:?}");
    }
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 3, "three messages, stored once each");
    assert_eq!(bodies(&items), BTreeSet::from([b"two teas".to_vec(), b"one coffee".to_vec(), b"no id".to_vec()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_an_item_fails_the_event_source_batch_instead_of_vanishing() {
    use base64::Engine;
    let scene = scene().await;
    let settings = settings(&[], "SAMPLE_QUEUE", None);
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    let large = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 450 * 1024]);
    let batch = json!({"eventSource": "aws:mq", "messages": [
        {"messageID": "ID:small", "data": "c21hbGw="},
        {"messageID": "ID:large", "data": large}
    ]});
    let error =
        handle_event(&scene.aws, &settings, &no_broker, &batch, in_a_minute()).await.expect_err("the batch fails");
    assert_eq!(error.error_type(), "MessageTooLarge", "{error}");
    assert!(error.to_string().contains("ID:large"), "{error}");
    assert!(error.to_string().contains("BODY_BUCKET"), "the error names the setting: {error}");
    // The rest of the batch is stored; the retry overwrites it.
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 1);
    assert_eq!(item_body(&items[0]), b"small");
}

/// A body that passes the function's own size check (items of up to 400 KiB, 409,600 bytes) but
/// that moto refuses (its limit is 405,000 bytes) with a ValidationException for the whole
/// BatchWriteItem: a stand-in for any item DynamoDB refuses that no retry can fix.
fn poison_body() -> Vec<u8> {
    vec![b'p'; 406_000]
}

/// 24 ordinary messages around one that DynamoDB refuses.
async fn send_with_a_poison_item(broker: &ActiveMq, queue: &str) -> Vec<u8> {
    let poison = poison_body();
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 0..25 {
        if i == 12 {
            producer.send(queue, &poison, &[("x-poison", "yes")]).await;
        } else {
            producer.send(queue, format!("ordinary {i}").as_bytes(), &[]).await;
        }
    }
    producer.flush().await;
    poison
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_dynamodb_refuses_is_parked_and_the_rest_of_its_batch_is_stored() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "poisoned";
    let poison = send_with_a_poison_item(&broker, queue).await;
    let settings = settings(&[broker.stomp_url()], queue, None);
    let outcome = handle_event(
        &scene.aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("the poll goes on past the refused item");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!((summary.received, summary.stored, summary.rejected), (25, 24, 1), "{summary:?}");
    let stored = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(stored.len(), 24);
    assert!(!bodies(&stored).contains(&poison));
    // The queue keeps moving: nothing is left, and the refused message is in the dead-letter queue.
    assert_eq!(remaining(&broker, queue).await, 0);
    let dead = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    let dead = dead.drain(&format!("DLQ.{queue}"), Duration::from_secs(3)).await;
    assert_eq!(dead.len(), 1, "the refused message is parked in the dead-letter queue");
    assert_eq!(dead[0].1, poison);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_source_batch_with_a_refused_item_stores_the_rest_and_fails_naming_it() {
    use base64::Engine as _;
    let scene = scene().await;
    let settings = settings(&["stomp://127.0.0.1:1".into()], "SAMPLE_QUEUE", None);
    let poison = poison_body();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut messages: Vec<serde_json::Value> = (0..24)
        .map(|i| json!({"messageID": format!("ID:ok-{i}"), "data": encode(format!("ordinary {i}").as_bytes())}))
        .collect();
    messages.insert(12, json!({"messageID": "ID:poison", "data": encode(&poison)}));
    let batch = json!({"eventSource": "aws:mq", "messages": messages});
    let error =
        handle_event(&scene.aws, &settings, &credentials("u", "p"), &batch, in_a_minute()).await.expect_err("fails");
    assert_eq!(error.error_type(), "StoreRejected", "{error}");
    assert!(error.to_string().contains("ID:poison"), "{error}");
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 24, "the other 24 are stored");
}

/// The parked record under `parked/`: its JSON, with the body decoded.
async fn parked(s3: &aws_sdk_s3::Client) -> (serde_json::Value, Vec<u8>) {
    use base64::Engine as _;
    let keys = object_keys(s3).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("parked/"), "{keys:?}");
    let record: serde_json::Value = serde_json::from_slice(&object(s3, &keys[0]).await).expect("parked JSON");
    let body = base64::engine::general_purpose::STANDARD
        .decode(record["bodyBase64"].as_str().expect("bodyBase64"))
        .expect("base64");
    (record, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_body_bucket_a_refused_item_is_parked_there_whole_and_acknowledged() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "poisoned-parked";
    let poison = send_with_a_poison_item(&broker, queue).await;
    let (settings, aws, s3) = with_body_bucket(&scene, settings(&[broker.stomp_url()], queue, None), true).await;
    let outcome = handle_event(
        &aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        &schedule_event(),
        in_a_minute(),
    )
    .await
    .expect("the poll goes on past the refused item");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!((summary.received, summary.stored, summary.rejected), (25, 24, 1), "{summary:?}");
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 24);
    let (record, body) = parked(&s3).await;
    assert_eq!(body, poison, "the whole body is parked");
    assert!(record["reason"].as_str().is_some_and(|r| r.contains("ValidationException")), "{}", record["reason"]);
    assert_eq!(record["headers"]["x-poison"], "yes");
    assert_eq!(record["queue"], queue);
    assert_eq!(remaining(&broker, queue).await, 0);
    let dead = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    assert!(
        dead.drain(&format!("DLQ.{queue}"), Duration::from_secs(2)).await.is_empty(),
        "acknowledged, not dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_body_bucket_an_event_source_batch_with_a_refused_item_succeeds_and_parks_it() {
    use base64::Engine as _;
    let scene = scene().await;
    let (settings, aws, s3) = with_body_bucket(&scene, settings(&[], "SAMPLE_QUEUE", None), true).await;
    let poison = poison_body();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut messages: Vec<serde_json::Value> = (0..24)
        .map(|i| json!({"messageID": format!("ID:ok-{i}"), "data": encode(format!("ordinary {i}").as_bytes())}))
        .collect();
    messages.insert(5, json!({"messageID": "ID:poison", "data": encode(&poison)}));
    let batch = json!({"eventSource": "aws:mq", "messages": messages});
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    let outcome = handle_event(&aws, &settings, &no_broker, &batch, in_a_minute()).await.expect("the batch succeeds");
    assert_eq!(outcome, Outcome::EventSource { received: 25, stored: 24, bodies_in_bucket: 0, parked: 1 });
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 24);
    let (record, body) = parked(&s3).await;
    assert_eq!((record["id"].as_str(), body), (Some("ID:poison"), poison));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_environment_follows_a_broker_password_rotated_between_two_polls() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, TABLE).await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let secret = |password: &str| json!({"username": rabbitmq::USER, "password": password}).to_string();
    sm.create_secret().name("broker").secret_string(secret(rabbitmq::PASSWORD)).send().await.expect("secret");
    // One provider for both polls: one warm execution environment.
    let provider = CredentialsProvider::new(CredentialSource::Secret("broker".into()), Some(sm.clone()));

    let broker = RabbitMq::start();
    let queue = "rotating";
    let publish = |range: std::ops::Range<usize>, password: &'static str| {
        let url = format!("amqp://{}:{password}@127.0.0.1:{}/%2f", rabbitmq::USER, broker.port);
        async move {
            let connection =
                Connection::connect(&url, ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
            let channel = connection.create_channel().await.expect("channel");
            channel
                .queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default())
                .await
                .expect("declare");
            for i in range {
                let properties = BasicProperties::default().with_message_id(format!("r-{i}").into());
                let body = format!("rotation message {i}");
                channel
                    .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body.as_bytes(), properties)
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
            }
            let _ = connection.close(200, "done".into()).await;
        }
    };
    let settings = settings(&[broker.broker_url()], queue, None);
    publish(0..5, rabbitmq::PASSWORD).await;
    handle_event(&table_only(&dynamo), &settings, &provider, &schedule_event(), in_a_minute())
        .await
        .expect("first poll");

    // The operator rotates the broker's password, and the secret with it.
    broker.change_password(rabbitmq::USER, "rotated-Passw0rd");
    sm.put_secret_value()
        .secret_id("broker")
        .secret_string(secret("rotated-Passw0rd"))
        .send()
        .await
        .expect("new secret version");
    publish(5..10, "rotated-Passw0rd").await;

    let outcome = handle_event(&table_only(&dynamo), &settings, &provider, &schedule_event(), in_a_minute())
        .await
        .expect("the refused login re-reads the secret and the poll goes on");
    let Outcome::Poll(summary) = outcome else { panic!("poll") };
    assert_eq!(summary.stored, 5);
    assert_eq!(scan_all(&dynamo, TABLE).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_capped_by_max_messages_is_sent_no_more_than_it_takes() {
    use futures::StreamExt;
    use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "capped";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for i in 0..50usize {
        let properties = BasicProperties::default().with_message_id(format!("c-{i}").into());
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("capped {i}").as_bytes(),
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    // A cap beyond the prefetch window (the acknowledgements that would open the window past
    // the cap wait until deliveries stop), then one within it.
    for (prefetch, max) in [(10, 30), (100, 5)] {
        let mut settings = settings(&[broker.broker_url()], queue, None);
        settings.prefetch = prefetch;
        settings.max_messages = Some(max);
        let outcome = handle_event(
            &scene.aws,
            &settings,
            &credentials(rabbitmq::USER, rabbitmq::PASSWORD),
            &schedule_event(),
            in_a_minute(),
        )
        .await
        .expect("poll");
        let Outcome::Poll(summary) = outcome else { panic!("poll") };
        assert_eq!(
            (summary.received, summary.stored, summary.stop_reason),
            (max, max, StopReason::MaxMessages),
            "PREFETCH {prefetch}"
        );
    }
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 35);
    // The other 15 were never handed to the poller, so none counts a redelivery.
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "check".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut redelivered = 0;
    for _ in 0..15 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a message")
            .expect("delivery")
            .expect("ok");
        redelivered += usize::from(delivery.redelivered);
    }
    assert_eq!(redelivered, 0, "messages the poll never took came back marked redelivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stomp_close_waits_for_the_brokers_receipt_and_heart_beats_are_negotiated() {
    use mq_poller::broker::stomp::StompConsumer;
    use mq_poller::broker::{Endpoint, QueueConsumer};
    let broker = ActiveMq::start();
    let mut settings = settings(&[broker.stomp_url()], "receipts", None);
    settings.broker_heartbeat_ms = 700;
    let endpoint = Endpoint::parse(&broker.stomp_url()).expect("endpoint");
    let consumer =
        StompConsumer::connect(&endpoint, &settings, &BrokerCredentials::new(activemq::USER, activemq::PASSWORD))
            .await
            .expect("connect");
    assert_eq!(consumer.heartbeat, Some(Duration::from_millis(700)), "ActiveMQ takes the beats we offer");
    // Idle for several intervals: the beats keep the connection, and the close is confirmed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(consumer.close().await, "ActiveMQ answered DISCONNECT with its receipt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_event_source_payloads_lose_nothing_and_a_huge_one_fails_the_batch_by_name() {
    use base64::Engine;
    let scene = scene().await;
    let settings = settings(&[], "SAMPLE_QUEUE", None);
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    // Not base64: kept as the text it is. No `data`: an empty body, still stored. Neither rejects the batch.
    let odd = json!({"eventSource": "aws:mq", "messages": [
        {"messageID": "ID:not-base64", "data": "this is not base64!"},
        {"messageID": "ID:no-data"},
        {"messageID": "ID:null-data", "data": null},
    ]});
    let outcome = handle_event(&scene.aws, &settings, &no_broker, &odd, in_a_minute()).await.expect("stored");
    assert_eq!(outcome, Outcome::EventSource { received: 3, stored: 3, bodies_in_bucket: 0, parked: 0 });
    let items = scan_all(&scene.dynamo, TABLE).await;
    let by_id = |id: &str| items.iter().find(|i| i.get("id") == Some(&AttributeValue::S(id.into()))).map(item_body);
    assert_eq!(by_id("ID:not-base64").as_deref(), Some(&b"this is not base64!"[..]));
    assert_eq!(by_id("ID:no-data").as_deref(), Some(&b""[..]));
    // A 10 MB `data` field (Lambda's payloads stop at 6 MB, but nothing here relies on it).
    let huge = base64::engine::general_purpose::STANDARD.encode(vec![b'h'; 10 * 1024 * 1024]);
    let batch = json!({"eventSource": "aws:mq", "messages": [
        {"messageID": "ID:before", "data": "YmVmb3Jl"},
        {"messageID": "ID:huge", "data": huge},
    ]});
    let error = handle_event(&scene.aws, &settings, &no_broker, &batch, in_a_minute()).await.expect_err("fails");
    assert_eq!(error.error_type(), "MessageTooLarge");
    assert!(
        error.to_string().contains("ID:huge") && !error.to_string().contains("hhhh"),
        "named, body not quoted: {}",
        &error.to_string()[..200.min(error.to_string().len())]
    );
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 4, "the message beside it is stored");
}
