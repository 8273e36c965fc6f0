//! One binary, two ways in: an SQS batch of EventBridge events (the template's way: EventBridge
//! puts every warning on a queue, and a short batching window hands the warnings of a Spot pool
//! reclaim to one invocation, which drains them in one search), or one EventBridge event.
//! Either way each drain's summary goes to the notices topic when one is configured.

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::clients::AwsClients;
use crate::drain::{drain_instance_by, drain_requests};
use crate::error::DrainError;
use crate::event::{parse_drain_request, DrainRequest};
use crate::group_cache::TargetGroupCache;
use crate::notices::publish_summaries;
use crate::settings::Settings;
use crate::summary::DrainSummary;

/// SQS's partial batch response: the records to leave on the queue (and retry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// What one invocation did: per record of a batch, or for the one event.
pub enum Handled {
    Batch { response: BatchResponse, results: Vec<Result<DrainSummary, DrainError>> },
    Single(Result<DrainSummary, DrainError>),
}

/// The records of an SQS event, if `event` is one: each message id with its body.
fn sqs_records(event: &Value) -> Option<Vec<(String, &str)>> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = records.first()?.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    from_sqs.then(|| {
        records
            .iter()
            .map(|r| {
                let id = r.get("messageId").and_then(Value::as_str).unwrap_or_default().to_owned();
                (id, r.get("body").and_then(Value::as_str).unwrap_or_default())
            })
            .collect()
    })
}

pub async fn handle_event(
    aws: &AwsClients,
    sns: Option<(&aws_sdk_sns::Client, &str)>,
    settings: &Settings,
    cache: &TargetGroupCache,
    event: &Value,
    stop_by: Option<Instant>,
) -> Handled {
    let Some(records) = sqs_records(event) else {
        let result = drain_instance_by(aws, settings, cache, event, stop_by).await;
        if let (Some(sns), Some(summary)) = (sns, summary_of(&result)) {
            publish_summaries(sns, std::slice::from_ref(summary)).await;
        }
        return Handled::Single(result);
    };
    // A record whose body is no drain request fails alone: retrying cannot fix it, so it goes to
    // the queue's dead-letter queue after its receives, kept for a person to look at.
    let parsed: Vec<(String, Result<DrainRequest, DrainError>)> = records
        .into_iter()
        .map(|(id, body)| {
            let request = serde_json::from_str::<Value>(body)
                .map_err(|e| DrainError::MalformedEvent(format!("SQS record {id}: body is not JSON: {e}")))
                .and_then(|event| parse_drain_request(&event).map_err(DrainError::from));
            (id, request)
        })
        .collect();
    // The notices are drained together; a lifecycle action (should one come this way) waits on
    // its own instance.
    let notices: Vec<DrainRequest> =
        parsed.iter().filter_map(|(_, r)| r.as_ref().ok().filter(|r| r.lifecycle.is_none()).cloned()).collect();
    let mut drained = drain_requests(aws, settings, cache, &notices, stop_by).await.into_iter();
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for (id, request) in parsed {
        let result = match request {
            Ok(ref request @ DrainRequest { lifecycle: Some(ref action), .. }) => {
                crate::lifecycle::drain_for_lifecycle(aws, settings, cache, request, action, stop_by).await
            }
            Ok(_) => drained.next().unwrap_or_else(|| Err(DrainError::MalformedEvent("no drain result".into()))),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "SQS record is not a drain request");
                Err(error)
            }
        };
        if result.is_err() {
            failures.push(ItemFailure { item_identifier: id });
        }
        results.push(result);
    }
    if let Some(sns) = sns {
        let summaries: Vec<DrainSummary> = results.iter().filter_map(summary_of).cloned().collect();
        publish_summaries(sns, &summaries).await;
    }
    Handled::Batch { response: BatchResponse { batch_item_failures: failures }, results }
}

/// The summary a drain produced, complete or not (an event that was no drain request has none).
pub fn summary_of(result: &Result<DrainSummary, DrainError>) -> Option<&DrainSummary> {
    match result {
        Ok(summary) => Some(summary),
        Err(DrainError::Incomplete(summary)) => Some(summary),
        Err(_) => None,
    }
}
