//! Memory bounded in bytes: seventy 4 MiB messages, more than the function's memory, drained by the
//! built binary as a 256 MB Lambda function runs it, from each broker. Every body reaches the
//! bucket byte for byte, once, and the process never holds more than its memory.

use std::collections::BTreeSet;
use std::time::Duration;

use harness_fixtures::mq_poller::{object, scene, schedule_event, settings, with_body_bucket, Scene, BODIES, TABLE};
use harness_runtime::lambda_env::Output;
use harness_runtime::paths::function_binary;
use harness_runtime::process::peak_rss_kib;
use harness_runtime::runtime_api::RuntimeApi;
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{item_text, scan_all};
use harness_services::messages::remaining;
use harness_services::rabbitmq::{self, RabbitMq};
use harness_services::stomp::StompClient;

const COUNT: usize = 70;
const BODY_BYTES: usize = 4 * 1024 * 1024;
const MEMORY_MB: u64 = 256;

/// Message `i`'s body: 4 MiB that neither compress nor repeat across messages.
fn large_body(i: usize) -> Vec<u8> {
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut body = Vec::with_capacity(BODY_BYTES);
    while body.len() < BODY_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.extend_from_slice(&state.to_le_bytes());
    }
    body
}

/// Runs one scheduled poll of the built binary, as a function of `MEMORY_MB` with the body
/// bucket; answers its summary, the process's peak resident memory in KiB, and the bucket's client.
async fn drain_as_a_256_mb_function(
    scene: &Scene,
    broker: (&str, &str, &str),
    queue: &str,
) -> (serde_json::Value, u64, aws_sdk_s3::Client) {
    let (url, user, password) = broker;
    let s3 = with_body_bucket(scene, settings(&[], queue, None), true).await.2;
    let mut env = scene.moto.env();
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string()),
        ("TABLE_NAME", TABLE.to_owned()),
        ("BODY_BUCKET", BODIES.to_owned()),
        ("QUEUE_NAME", queue.to_owned()),
        ("BROKER_URL", url.to_owned()),
        ("BROKER_USERNAME", user.to_owned()),
        ("BROKER_PASSWORD", password.to_owned()),
        ("IDLE_TIMEOUT_MS", "3000".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let api = RuntimeApi::start().await;
    let function = api.spawn_function(&function_binary("mq-poller"), "mq-poller", &env, Output::Inherit);
    let summary = api.invoke(&schedule_event(), Duration::from_secs(600)).await.response();
    (summary, peak_rss_kib(function.0.id()), s3)
}

/// Every message's body is in the bucket under the key its item names, byte for byte, and each
/// message has exactly one item.
async fn every_body_stored_once(scene: &Scene, s3: &aws_sdk_s3::Client) {
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), COUNT, "one item per message");
    let mut seen = BTreeSet::new();
    for item in &items {
        let Some(aws_sdk_dynamodb::types::AttributeValue::M(headers)) = item.get("headers") else {
            panic!("an item without headers")
        };
        let index: usize = match headers.get("x-index") {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(text)) => text.parse().expect("an index"),
            other => panic!("x-index: {other:?}"),
        };
        assert!(seen.insert(index), "message {index} stored twice");
        assert!(object(s3, &item_text(item, "bodyKey")).await == large_body(index), "message {index}'s body");
    }
}

fn within_the_function_s_memory(peak_kib: u64, summary: &serde_json::Value) {
    assert!(peak_kib > 0, "the peak was read");
    eprintln!("peak RSS {} MiB", peak_kib / 1024);
    assert!(peak_kib < MEMORY_MB * 1024, "peak RSS {} MiB in a {MEMORY_MB} MB function ({summary})", peak_kib / 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_large_messages_drain_within_a_256_mb_function() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "large-bodies";
    let connection =
        Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    for i in 0..COUNT {
        let mut headers = FieldTable::default();
        headers.insert("x-index".into(), AMQPValue::LongString(i.to_string().into()));
        let properties = BasicProperties::default().with_message_id(format!("large-{i}").into()).with_headers(headers);
        channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), &large_body(i), properties)
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    let (summary, peak_kib, s3) =
        drain_as_a_256_mb_function(&scene, (&broker.broker_url(), rabbitmq::USER, rabbitmq::PASSWORD), queue).await;
    assert_eq!((summary["stored"].as_u64(), summary["bodies_in_bucket"].as_u64()), (Some(70), Some(70)), "{summary}");
    every_body_stored_once(&scene, &s3).await;
    within_the_function_s_memory(peak_kib, &summary);
    let left = channel
        .queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("passive declare");
    assert_eq!(left.message_count(), 0, "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_large_messages_drain_within_a_256_mb_function() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "large-bodies";
    let mut producer = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    for i in 0..COUNT {
        producer.send(queue, &large_body(i), &[("x-index", &i.to_string())]).await;
    }
    producer.flush().await;

    let (summary, peak_kib, s3) =
        drain_as_a_256_mb_function(&scene, (&broker.stomp_url(), activemq::USER, activemq::PASSWORD), queue).await;
    assert_eq!((summary["stored"].as_u64(), summary["bodies_in_bucket"].as_u64()), (Some(70), Some(70)), "{summary}");
    every_body_stored_once(&scene, &s3).await;
    within_the_function_s_memory(peak_kib, &summary);
    assert_eq!(remaining(&broker, queue).await, 0, "the queue is empty");
}
