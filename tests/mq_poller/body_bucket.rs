//! Bodies too large for an item go to the body bucket (BODY_BUCKET) and the item points at
//! them; a retry rewrites the same object; a bucket that fails acknowledges nothing.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_fixtures::mq_poller::{
    credentials, in_a_minute, object, object_keys, scene, schedule_event, scheduled_poll, settings, with_body_bucket,
    BODIES, TABLE,
};
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{item_text, scan_all};
use harness_services::messages::remaining;
use harness_services::stomp::StompClient;
use mq_poller::{handle_payload, Outcome};
use mq_poller::{CredentialSource, CredentialsProvider};
use serde_json::json;

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

    let summary = scheduled_poll(&aws, &settings, &credentials(activemq::USER, activemq::PASSWORD), "poll").await;
    assert_eq!(
        (summary.received, summary.stored, summary.rejected, summary.bodies_in_bucket),
        (3, 3, 0, 1),
        "{summary:?}"
    );
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 3);
    let claim = items.iter().find(|i| i.contains_key("bodyKey")).expect("the large message's item");
    assert!(!claim.contains_key("message"), "the body is not in the item");
    assert_eq!(item_text(claim, "bodyBucket"), BODIES);
    assert_eq!(claim.get("bodyBytes"), Some(&AttributeValue::N(large.len().to_string())));
    let Some(AttributeValue::M(headers)) = claim.get("headers") else { panic!("headers") };
    assert_eq!(headers.get("x-big"), Some(&AttributeValue::S("yes".into())));
    assert_eq!(object(&s3, &item_text(claim, "bodyKey")).await, large, "the object is the body, byte for byte");
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
        let outcome = handle_payload(&aws, &settings, &no_broker, &batch, in_a_minute()).await.expect("stored");
        assert_eq!(
            outcome,
            Outcome::EventSource { received: 2, stored: 2, bodies_in_bucket: 1, parked: 0 },
            "attempt {attempt}"
        );
    }
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 2, "the retry overwrote its items");
    let claim = items.iter().find(|i| item_text(i, "id") == "ID:large").expect("the large item");
    assert_eq!(object_keys(&s3).await, [item_text(claim, "bodyKey")], "one object, rewritten by the retry");
    assert_eq!(object(&s3, &item_text(claim, "bodyKey")).await, large);
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
    let error = handle_payload(
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
