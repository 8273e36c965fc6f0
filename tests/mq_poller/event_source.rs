//! Batches from the Amazon MQ event source (both engines): stored leniently, retries that
//! overwrite rather than duplicate, and the messages that fail a batch by name.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_fixtures::mq_poller::{in_a_minute, scene, settings, TABLE};
use harness_services::dynamo::{item_bodies, item_body, scan_all};
use mq_poller::{handle_payload, Outcome};
use mq_poller::{CredentialSource, CredentialsProvider};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_batches_of_both_engines_are_stored_leniently() {
    let scene = scene().await;
    let settings = settings(&[], "SAMPLE_QUEUE", None);
    let no_broker = CredentialsProvider::new(CredentialSource::Missing, None);
    for file in ["mq-activemq-event-source.json", "mq-rabbitmq-event-source.json"] {
        let event = harness_runtime::paths::read_event(file);
        let outcome = handle_payload(&scene.aws, &settings, &no_broker, &event, in_a_minute()).await.expect(file);
        assert!(matches!(outcome, Outcome::EventSource { stored: 2, .. }), "{file}: {outcome:?}");
    }
    // Fields missing, null or oddly named: nothing rejects the batch.
    let odd = json!({"eventSource": "aws:amq", "messages": [
        {"messageId": "ID:odd-1", "data": "T0s=", "destination": null, "properties": null, "redelivered": null},
        {"data": "bm8gaWQ="}
    ]});
    handle_payload(&scene.aws, &settings, &no_broker, &odd, in_a_minute()).await.expect("odd batch");
    // The same batch again (the event source retries): overwritten, not duplicated, where ids exist.
    let event = harness_runtime::paths::read_event("mq-activemq-event-source.json");
    handle_payload(&scene.aws, &settings, &no_broker, &event, in_a_minute()).await.expect("retry");
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
    assert!(item_bodies(&items).contains(b"no id".as_slice()));
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
        let outcome = handle_payload(&scene.aws, &settings, &no_broker, &batch, in_a_minute()).await.expect("batch");
        assert!(matches!(outcome, Outcome::EventSource { stored: 3, .. }), "{outcome:?}");
    }
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 3, "three messages, stored once each");
    assert_eq!(item_bodies(&items), BTreeSet::from([b"two teas".to_vec(), b"one coffee".to_vec(), b"no id".to_vec()]));
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
    let outcome = handle_payload(&scene.aws, &settings, &no_broker, &odd, in_a_minute()).await.expect("stored");
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
    let error = handle_payload(&scene.aws, &settings, &no_broker, &batch, in_a_minute()).await.expect_err("fails");
    assert_eq!(error.error_type(), "MessageTooLarge");
    assert!(
        error.to_string().contains("ID:huge") && !error.to_string().contains("hhhh"),
        "named, body not quoted: {}",
        &error.to_string()[..200.min(error.to_string().len())]
    );
    assert_eq!(scan_all(&scene.dynamo, TABLE).await.len(), 4, "the message beside it is stored");
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
        handle_payload(&scene.aws, &settings, &no_broker, &batch, in_a_minute()).await.expect_err("the batch fails");
    assert_eq!(error.error_type(), "MessageTooLarge", "{error}");
    assert!(error.to_string().contains("ID:large"), "{error}");
    assert!(error.to_string().contains("BODY_BUCKET"), "the error names the setting: {error}");
    // The rest of the batch is stored; the retry overwrites it.
    let items = scan_all(&scene.dynamo, TABLE).await;
    assert_eq!(items.len(), 1);
    assert_eq!(item_body(&items[0]), b"small");
}
