//! Memory bounded in bytes: seventy 4 MiB messages, more than the function's memory, drained by the
//! built binary as a 256 MB Lambda function runs it, from each broker. Every body reaches the
//! bucket byte for byte, once, and the process never holds more than its memory.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_fixtures::mq_poller::{object, scene, settings, with_body_bucket, Scene, BODIES, TABLE};
use harness_runtime::lambda_env::Output;
use harness_runtime::paths::function_binary;
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{item_text, scan_all};
use harness_services::large_messages::{
    body, drain_with, function_env, left_on_rabbitmq, send_to_activemq, send_to_rabbitmq, Drained, COUNT, INDEX_HEADER,
};
use harness_services::messages::remaining;
use harness_services::rabbitmq::{self, RabbitMq};

const MEMORY_MB: u64 = 256;

/// One scheduled poll of the built binary as a function of `MEMORY_MB` with the body bucket;
/// answers what it did and the bucket's client.
async fn drain_as_a_256_mb_function(
    scene: &Scene,
    broker: (&str, &str, &str),
    queue: &str,
) -> (Drained, aws_sdk_s3::Client) {
    let s3 = with_body_bucket(scene, settings(&[], queue, None), true).await.2;
    let env = function_env(&scene.moto.env(), (TABLE, BODIES), broker, queue, MEMORY_MB);
    (drain_with(&function_binary("mq-poller"), &env, Output::Inherit).await, s3)
}

/// Every message is stored once, its body in the bucket under the key its item names, byte for
/// byte, and the process stayed within the function's memory.
async fn every_body_stored_once_within_the_memory(scene: &Scene, s3: &aws_sdk_s3::Client, drained: &Drained) {
    let summary = &drained.summary;
    assert_eq!((summary["stored"].as_u64(), summary["bodies_in_bucket"].as_u64()), (Some(70), Some(70)), "{summary}");
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), COUNT, "one item per message");
    let mut seen = BTreeSet::new();
    for item in &items {
        let Some(AttributeValue::M(headers)) = item.get("headers") else { panic!("an item without headers") };
        let index: usize = match headers.get(INDEX_HEADER) {
            Some(AttributeValue::S(text)) => text.parse().expect("an index"),
            other => panic!("{INDEX_HEADER}: {other:?}"),
        };
        assert!(seen.insert(index), "message {index} stored twice");
        assert!(object(s3, &item_text(item, "bodyKey")).await == body(index), "message {index}'s body");
    }
    assert!(drained.peak_kib > 0, "the peak was read");
    eprintln!("peak RSS {} MiB", drained.peak_kib / 1024);
    assert!(
        drained.peak_kib < MEMORY_MB * 1024,
        "peak RSS {} MiB in a {MEMORY_MB} MB function ({summary})",
        drained.peak_kib / 1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_large_messages_drain_within_a_256_mb_function() {
    let scene = scene().await;
    let broker = RabbitMq::start();
    let queue = "large-bodies";
    send_to_rabbitmq(&broker, queue).await;
    let (drained, s3) =
        drain_as_a_256_mb_function(&scene, (&broker.broker_url(), rabbitmq::USER, rabbitmq::PASSWORD), queue).await;
    every_body_stored_once_within_the_memory(&scene, &s3, &drained).await;
    assert_eq!(left_on_rabbitmq(&broker, queue).await, 0, "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_large_messages_drain_within_a_256_mb_function() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "large-bodies";
    send_to_activemq(&broker, queue).await;
    let (drained, s3) =
        drain_as_a_256_mb_function(&scene, (&broker.stomp_url(), activemq::USER, activemq::PASSWORD), queue).await;
    every_body_stored_once_within_the_memory(&scene, &s3, &drained).await;
    assert_eq!(remaining(&broker, queue).await, 0, "the queue is empty");
}
