//! What moto cannot stage: DynamoDB that keeps leaving items unprocessed (throttled) until the
//! invocation's deadline. The SDK client is real; only its responses are mocked.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use mq_poller::{store_messages, BrokerMessage, MessageId, StoreError, Table};
use tokio::time::Instant;

fn message(i: usize) -> BrokerMessage {
    BrokerMessage {
        id: String::new(),
        body: format!("m{i}").into_bytes().into(),
        headers: BTreeMap::new(),
        redelivered: false,
        queue: "q".into(),
        received_at_ms: 1,
    }
    .keyed(MessageId::broker(Some(format!("ID:{i}")), BTreeMap::new()))
}

#[tokio::test]
async fn writes_that_never_finish_give_up_at_the_deadline_not_after_every_retry() {
    // Every call leaves every item unprocessed, as a throttled table does.
    let throttled = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_output(|| {
        let item = HashMap::from([("id".to_owned(), AttributeValue::S("ID:0".into()))]);
        let unprocessed = WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(item)).build().expect("put"))
            .build();
        BatchWriteItemOutput::builder().unprocessed_items("t", vec![unprocessed]).build()
    });
    let dynamo = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled]);
    let messages: Vec<BrokerMessage> = (0..3).map(message).collect();
    let table = Table {
        dynamo: &dynamo,
        name: "t",
        ttl_days: None,
        write_by: Instant::now() + Duration::from_millis(400),
        bodies: None,
    };
    let error = store_messages(&table, &messages).await.expect_err("never stored");
    let StoreError::Unavailable(text) = &error else { panic!("{error}") };
    // The deadline ended it, not the retries running out (8 attempts, up to 2 s apart).
    assert!(text.contains("before the invocation's deadline"), "{text}");
    assert!(throttled.num_calls() < 8, "{} calls", throttled.num_calls());
}
