//! Writing messages to the table: `BatchWriteItem` in batches of 25, retrying what DynamoDB
//! leaves unprocessed with backoff. Items are keyed by message id, so a retry is idempotent.
//! An item DynamoDB refuses (a ValidationException, which no retry fixes) is found by splitting
//! its batch, so the rest of the batch is stored and only that message is left to park.
//! A body too large for an item goes to the body bucket first (claim check), and its item, which
//! points at it, is written only once the object is.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::{StreamExt, TryStreamExt};
use tokio::time::Instant;

use crate::error::StoreError;
use crate::message::BrokerMessage;

/// DynamoDB's limit for one BatchWriteItem.
pub const BATCH_SIZE: usize = 25;
/// BatchWriteItem calls one store may have in flight.
pub const WRITES_IN_FLIGHT: usize = 4;
const MAX_ATTEMPTS: u32 = 8;

/// Where messages go, and by when every write (and retry) must be done.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    pub dynamo: &'a Client,
    pub name: &'a str,
    pub ttl_days: Option<u64>,
    /// No request is sent, and no retry waited for, past this: the invocation must still answer
    /// (and, in a poll, acknowledge what was stored) before Lambda's deadline.
    pub write_by: Instant,
    /// Where bodies too large for an item go (`BODY_BUCKET`); without it such messages cannot be
    /// stored here, and the caller hands them back.
    pub bodies: Option<BodyBucket<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub struct BodyBucket<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub name: &'a str,
}

/// Bodies written to the bucket at once: each may be megabytes, so a few, not a batch's worth.
const BODY_WRITES_IN_FLIGHT: usize = 4;

impl Table<'_> {
    /// Whether the message can be stored: in its item, or with its body in the bucket.
    pub fn can_store(&self, message: &BrokerMessage) -> bool {
        message.fits_in_an_item() || self.bodies.is_some()
    }
}

/// Stores the messages (any number); returns once every one is written, or with an error.
pub async fn store_messages<'m>(
    table: &Table<'_>,
    messages: impl IntoIterator<Item = &'m BrokerMessage>,
) -> Result<(), StoreError> {
    // A batch may not name one key twice (a redelivery next to its original): the later wins.
    let mut by_key: HashMap<&str, &BrokerMessage> = HashMap::new();
    let mut order = Vec::new();
    for message in messages {
        if by_key.insert(&message.id, message).is_none() {
            order.push(message.id.as_str());
        }
    }
    let unique: Vec<&BrokerMessage> = order.iter().filter_map(|key| by_key.get(key).copied()).collect();
    let large: Vec<&BrokerMessage> = unique.iter().copied().filter(|m| !m.fits_in_an_item()).collect();
    let bucket = match (large.is_empty(), table.bodies) {
        (true, bodies) => bodies.map(|b| b.name),
        (false, Some(bodies)) => {
            store_bodies(table, bodies, &large).await?;
            Some(bodies.name)
        }
        (false, None) => return Err(StoreError::NoBodyBucket),
    };
    let requests: Vec<WriteRequest> = unique
        .iter()
        .map(|message| {
            let item = match bucket {
                Some(bucket) if !message.fits_in_an_item() => message.to_claim_item(table.ttl_days, bucket),
                _ => message.to_item(table.ttl_days),
            };
            let put = PutRequest::builder().set_item(Some(item)).build();
            put.map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(|e| StoreError::Rejected(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    // Several BatchWriteItem calls at once: DynamoDB's latency, not its throughput, bounds one
    // call after another. Acknowledgements wait for all of them, so order is kept.
    futures::stream::iter(requests.chunks(BATCH_SIZE))
        .map(|chunk| write_batch(table, chunk.to_vec()))
        .buffer_unordered(WRITES_IN_FLIGHT)
        .try_collect::<()>()
        .await
}

/// Writes the bodies of `large` to the bucket, each under the key its item will point at; a
/// rewrite of the same message writes the same object. Every failure fails the call, so nothing
/// is acknowledged: a missing permission or bucket is the deployment's to fix, not the message's.
async fn store_bodies(table: &Table<'_>, bucket: BodyBucket<'_>, large: &[&BrokerMessage]) -> Result<(), StoreError> {
    futures::stream::iter(large.iter().copied())
        .map(|message| async move {
            // A clone of `Bytes` shares the body: the request reads the same memory.
            put_object(table, bucket, message.body_object_key(), "application/octet-stream", message.body.clone())
                .await
                .map(|_| ())
        })
        .buffer_unordered(BODY_WRITES_IN_FLIGHT)
        .try_collect::<()>()
        .await
}

/// Parks a message no retry can store (DynamoDB refuses it, or its frame cannot be decoded) in the bucket, whole and with the
/// reason, under a key derived from its item key, so it can be acknowledged and the queue moves
/// on with nothing lost; logged by id (never the body).
pub async fn park(
    table: &Table<'_>,
    bucket: BodyBucket<'_>,
    message: &BrokerMessage,
    reason: &str,
) -> Result<(), StoreError> {
    let key = put_object(
        table,
        bucket,
        message.parked_object_key(),
        "application/json",
        message.parked_record(reason).into(),
    )
    .await?;
    tracing::error!(message_id = %message.id, %reason, parked = %key, "the message cannot be stored in the table; parked in the body bucket");
    Ok(())
}

/// One object written to the bucket by the table's deadline; returns its key.
async fn put_object(
    table: &Table<'_>,
    bucket: BodyBucket<'_>,
    key: String,
    content_type: &str,
    bytes: bytes::Bytes,
) -> Result<String, StoreError> {
    let put = bucket
        .s3
        .put_object()
        .bucket(bucket.name)
        .key(&key)
        .content_type(content_type)
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
        .send();
    match tokio::time::timeout_at(table.write_by, put).await {
        Err(_) => Err(StoreError::BodyBucket(format!("no answer for {key} before the invocation's deadline"))),
        Ok(Err(e)) => Err(StoreError::BodyBucket(format!("writing {key}: {}", DisplayErrorContext(&e)))),
        Ok(Ok(_)) => Ok(key),
    }
}

/// A message DynamoDB refused: its index among the messages given, and DynamoDB's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub reason: String,
}

/// Stores `messages`, setting aside those DynamoDB refuses: a refused batch is split in halves
/// until each refusal is down to one message. Returns the refused ones; a failure retrying
/// cannot fix only for them, any other failure (throttling, 5xx, network) for the whole call.
pub async fn store_setting_aside_refused(
    table: &Table<'_>,
    messages: &[&BrokerMessage],
) -> Result<Vec<Refused>, StoreError> {
    let mut refused = Vec::new();
    let mut ranges = vec![(0, messages.len())];
    while let Some((start, end)) = ranges.pop() {
        if start == end {
            continue;
        }
        match store_messages(table, messages[start..end].iter().copied()).await {
            Ok(()) => {}
            Err(StoreError::Rejected(reason)) if end - start == 1 => refused.push(Refused { index: start, reason }),
            Err(StoreError::Rejected(_)) => {
                let middle = start + (end - start) / 2;
                ranges.push((middle, end));
                ranges.push((start, middle));
            }
            Err(other) => return Err(other),
        }
    }
    refused.sort_by_key(|r| r.index);
    Ok(refused)
}

/// A ValidationException is the request's fault, and no retry fixes it; anything else may pass.
fn write_error<E: std::error::Error + ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> StoreError {
    match err.as_service_error() {
        Some(service) if service.code() == Some("ValidationException") => {
            StoreError::Rejected(format!("ValidationException: {}", service.message().unwrap_or_default()))
        }
        Some(service) => StoreError::Unavailable(format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        )),
        None => StoreError::Unavailable(DisplayErrorContext(err).to_string()),
    }
}

async fn write_batch(table: &Table<'_>, mut pending: Vec<WriteRequest>) -> Result<(), StoreError> {
    let mut delay = Duration::from_millis(50);
    let late = |what: String| StoreError::Unavailable(format!("{what} before the invocation's deadline"));
    for attempt in 1..=MAX_ATTEMPTS {
        let request = table.dynamo.batch_write_item().request_items(table.name, pending.clone()).send();
        let output = tokio::time::timeout_at(table.write_by, request)
            .await
            .map_err(|_| late("no answer from DynamoDB".into()))?
            .map_err(|e| write_error(&e))?;
        pending = output.unprocessed_items().and_then(|items| items.get(table.name)).cloned().unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() + delay >= table.write_by {
            return Err(late(format!("{} items still unprocessed", pending.len())));
        }
        tracing::warn!(attempt, unprocessed = pending.len(), "DynamoDB left items unprocessed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Err(StoreError::Unavailable(format!("{} items still unprocessed after {MAX_ATTEMPTS} attempts", pending.len())))
}
