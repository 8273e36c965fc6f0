//! Writing messages to the table: `BatchWriteItem` in batches of 25, retrying what DynamoDB
//! leaves unprocessed with backoff. Items are keyed by message id, so a retry is idempotent.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::error::StoreError;
use crate::message::BrokerMessage;

/// DynamoDB's limit for one BatchWriteItem.
pub const BATCH_SIZE: usize = 25;
const MAX_ATTEMPTS: u32 = 8;

/// Stores the messages (any number); returns once every one is written, or with an error.
pub async fn store_messages<'m>(
    dynamo: &Client,
    table: &str,
    messages: impl IntoIterator<Item = &'m BrokerMessage>,
    ttl_days: Option<u64>,
) -> Result<(), StoreError> {
    // A batch may not name one key twice (a redelivery next to its original): the later wins.
    let mut by_key: HashMap<&str, &BrokerMessage> = HashMap::new();
    let mut order = Vec::new();
    for message in messages {
        if by_key.insert(&message.id, message).is_none() {
            order.push(message.id.as_str());
        }
    }
    let requests: Vec<WriteRequest> = order
        .iter()
        .filter_map(|key| by_key.get(key))
        .map(|message| {
            let put = PutRequest::builder().set_item(Some(message.to_item(ttl_days))).build();
            put.map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(|e| StoreError::Rejected(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    for chunk in requests.chunks(BATCH_SIZE) {
        write_batch(dynamo, table, chunk.to_vec()).await?;
    }
    Ok(())
}

async fn write_batch(dynamo: &Client, table: &str, mut pending: Vec<WriteRequest>) -> Result<(), StoreError> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=MAX_ATTEMPTS {
        let output = dynamo
            .batch_write_item()
            .request_items(table, pending.clone())
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        pending = output.unprocessed_items().and_then(|items| items.get(table)).cloned().unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        tracing::warn!(attempt, unprocessed = pending.len(), "DynamoDB left items unprocessed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Err(StoreError::Unavailable(format!("{} items still unprocessed after {MAX_ATTEMPTS} attempts", pending.len())))
}
