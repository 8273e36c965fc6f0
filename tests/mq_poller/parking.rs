//! Messages the table refuses (oversized, or an item DynamoDB will never take) do not stop the
//! queue: dead-lettered, or named in a failed event-source batch, or with a body bucket parked
//! there whole under `parked/` and acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use harness_fixtures::mq_poller::{
    credentials, in_a_minute, parked, poison_body, scene, schedule_event, scheduled_poll, send_with_a_poison_item,
    settings, with_body_bucket, TABLE,
};
use harness_services::activemq::{self, ActiveMq};
use harness_services::dynamo::{item_bodies, scan_all};
use harness_services::messages::remaining;
use harness_services::stomp::StompClient;
use mq_poller::{handle_payload, Outcome};
use mq_poller::{CredentialSource, CredentialsProvider};
use serde_json::json;

// --- Without a body bucket: the dead-letter queue, or a failed batch -----------------------------

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

    let outcome = handle_payload(
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
    let stored = item_bodies(&scan_all(&scene.dynamo, TABLE).await);
    assert_eq!(stored, BTreeSet::from([b"small before".to_vec(), b"small after".to_vec()]));
    assert_eq!(remaining(&broker, queue).await, 0);
    let dead = StompClient::connect(broker.stomp_port, activemq::USER, activemq::PASSWORD).await;
    let dead = dead.drain(&format!("DLQ.{queue}"), Duration::from_secs(3)).await;
    assert_eq!(dead.len(), 1, "the oversized message is in the dead-letter queue");
    assert_eq!(dead[0].1.len(), 450 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_dynamodb_refuses_is_parked_and_the_rest_of_its_batch_is_stored() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "poisoned";
    let poison = send_with_a_poison_item(&broker, queue).await;
    let settings = settings(&[broker.stomp_url()], queue, None);
    let summary = scheduled_poll(
        &scene.aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        "the poll goes on past the refused item",
    )
    .await;
    assert_eq!((summary.received, summary.stored, summary.rejected), (25, 24, 1), "{summary:?}");
    let stored = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(stored.len(), 24);
    assert!(!item_bodies(&stored).contains(&poison));
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
        handle_payload(&scene.aws, &settings, &credentials("u", "p"), &batch, in_a_minute()).await.expect_err("fails");
    assert_eq!(error.error_type(), "StoreRejected", "{error}");
    assert!(error.to_string().contains("ID:poison"), "{error}");
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 24, "the other 24 are stored");
}

// --- With a body bucket: parked there, and acknowledged ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_body_bucket_a_refused_item_is_parked_there_whole_and_acknowledged() {
    let scene = scene().await;
    let broker = ActiveMq::start();
    let queue = "poisoned-parked";
    let poison = send_with_a_poison_item(&broker, queue).await;
    let (settings, aws, s3) = with_body_bucket(&scene, settings(&[broker.stomp_url()], queue, None), true).await;
    let summary = scheduled_poll(
        &aws,
        &settings,
        &credentials(activemq::USER, activemq::PASSWORD),
        "the poll goes on past the refused item",
    )
    .await;
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
    let outcome = handle_payload(&aws, &settings, &no_broker, &batch, in_a_minute()).await.expect("the batch succeeds");
    assert_eq!(outcome, Outcome::EventSource { received: 25, stored: 24, bodies_in_bucket: 0, parked: 1 });
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 24);
    let (record, body) = parked(&s3).await;
    assert_eq!((record["id"].as_str(), body), (Some("ID:poison"), poison));
}

// --- Frames that cannot be decoded -----------------------------------------------------------------

/// Three MESSAGE frames from the scripted peer (ActiveMQ re-encodes headers, so it could not send
/// the second): the second has a header value that is not UTF-8.
fn frames_around_a_poison_header() -> Vec<Vec<u8>> {
    use harness_services::stomp_peer::message_frame;
    vec![
        message_frame("a-1", &[], b"first"),
        message_frame("a-2", &[(b"x-name", b"caf\xe9")], b"the poisoned one"),
        message_frame("a-3", &[], b"third"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_a_header_that_is_not_utf8_is_parked_whole_and_the_messages_behind_it_are_stored() {
    use harness_services::stomp_peer::StompPeer;
    let scene = scene().await;
    let frames = frames_around_a_poison_header();
    let peer = StompPeer::start(frames.clone()).await;
    let (settings, aws, s3) = with_body_bucket(&scene, settings(&[peer.url()], "scripted", None), true).await;

    let summary = scheduled_poll(&aws, &settings, &credentials("any", "any"), "the poll goes on").await;
    assert_eq!((summary.received, summary.stored, summary.rejected), (3, 2, 1), "{summary:?}");
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(item_bodies(&items), BTreeSet::from([b"first".to_vec(), b"third".to_vec()]));
    let (record, raw) = parked(&s3).await;
    assert_eq!(raw, frames[1], "the frame, byte for byte");
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("x-name") && !reason.contains("caf"), "{record}");
    let mut settled = peer.settled();
    settled.sort();
    let acked = [("ACK", "ID:a-1"), ("ACK", "ID:a-2"), ("ACK", "ID:a-3")];
    assert_eq!(settled, acked.map(|(c, i)| (c.to_owned(), i.to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_body_bucket_an_undecodable_frame_goes_to_the_dead_letter_handling() {
    use harness_services::stomp_peer::StompPeer;
    let scene = scene().await;
    let peer = StompPeer::start(frames_around_a_poison_header()).await;
    let summary = scheduled_poll(
        &scene.aws,
        &settings(&[peer.url()], "scripted", None),
        &credentials("any", "any"),
        "the poll goes on",
    )
    .await;
    assert_eq!((summary.received, summary.stored, summary.rejected), (3, 2, 1), "{summary:?}");
    let mut settled = peer.settled();
    settled.sort();
    let acked = [("ACK", "ID:a-1"), ("ACK", "ID:a-3"), ("NACK", "ID:a-2")];
    assert_eq!(settled, acked.map(|(c, i)| (c.to_owned(), i.to_owned())));
}
