//! One binary, two ways in: an SQS batch of EventBridge events (the template's way: EventBridge
//! puts every warning on a queue, and a short batching window hands the warnings of a Spot pool
//! reclaim to one invocation, which drains them in one search), or one EventBridge event.
//! Either way each drain's summary goes to the notices topic when one is configured, and the
//! invocation's metrics are written before it answers.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::drain::drain_requests;
use crate::drainer::{Drainer, Notices};
use crate::error::DrainError;
use crate::event::{parse_drain_request, DrainRequest, LifecycleAction};
use crate::lifecycle::drain_for_lifecycle;
use crate::metrics::drain_metrics;
use crate::notices::publish_summaries;
use crate::summary::DrainSummary;

/// Kept of the invocation to finish the deregistrations under way and answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// Of that margin, what publishing the summaries may use; the rest is for the answer.
const PUBLISH_PAST_STOP: Duration = Duration::from_millis(1500);
/// Publishing's bound outside Lambda, where there is no deadline.
const PUBLISH_WITHOUT_DEADLINE: Duration = Duration::from_secs(10);

/// What one invocation did: per record of a batch, or for the one event.
pub enum Handled {
    Batch { response: SqsBatchResponse, results: Vec<Result<DrainSummary, DrainError>> },
    Single(Result<DrainSummary, DrainError>),
}

/// The function's entry point: drains what the event names, writes the metrics, and answers
/// (the summary, or for a batch the records to retry).
pub async fn handle_event(drainer: &Drainer<'_>, event: LambdaEvent<Value>) -> Result<Value, DrainError> {
    let started = std::time::Instant::now();
    // Stop searching in time to answer: what is left is reported, and the event retried.
    let stop_by = shared::deadline::invocation_deadline(event.context.deadline).checked_sub(DEADLINE_MARGIN);
    let (results, answer) = match drain_event(drainer, &event.payload, stop_by).await {
        Handled::Single(Ok(summary)) => match to_answer(&summary) {
            Ok(value) => (vec![Ok(summary)], Ok(value)),
            Err(error) => (vec![Ok(summary), Err(error.clone())], Err(error)),
        },
        Handled::Single(Err(error)) => (vec![Err(error.clone())], Err(error)),
        // Failed records are named in the answer, and only they are retried.
        Handled::Batch { response, mut results } => {
            let answer = to_answer(&response);
            if let Err(error) = &answer {
                results.push(Err(error.clone()));
            }
            (results, answer)
        }
    };
    if let Some(metrics) = drain_metrics(&results, started.elapsed()) {
        metrics.emit();
    }
    answer
}

fn to_answer(answer: &impl serde::Serialize) -> Result<Value, DrainError> {
    serde_json::to_value(answer).map_err(|e| DrainError::Internal(format!("writing the answer: {e}")))
}

/// Drains what one event names: an SQS batch of EventBridge events, or one EventBridge event.
/// `stop_by` is when the search must stop to leave time to answer.
pub async fn drain_event(drainer: &Drainer<'_>, event: &Value, stop_by: Option<Instant>) -> Handled {
    if !is_sqs_event(event) {
        let result = drain_one(drainer, event, stop_by).await;
        if let (Some(notices), Some(summary)) = (drainer.notices, to_publish(&result)) {
            publish_within(notices, std::slice::from_ref(summary), stop_by).await;
        }
        return Handled::Single(result);
    }
    // Each record read on its own, so one a strict type refuses fails alone. A record whose body
    // is no drain request fails alone too: retrying cannot fix it, so it goes to the queue's
    // dead-letter queue after its receives, kept for a person to look at.
    let records = event.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let parsed: Vec<(String, Result<DrainRequest, DrainError>)> = records
        .iter()
        .map(|record| {
            let raw_id = record.get("messageId").and_then(Value::as_str).unwrap_or_default().to_owned();
            let request = SqsMessage::deserialize(record)
                .map_err(|e| DrainError::MalformedEvent(format!("SQS record {raw_id}: {e}")))
                .and_then(|message| {
                    serde_json::from_str::<Value>(message.body.as_deref().unwrap_or_default())
                        .map_err(|e| DrainError::MalformedEvent(format!("SQS record {raw_id}: body is not JSON: {e}")))
                })
                .and_then(|event| parse_drain_request(&event).map_err(DrainError::from));
            (raw_id, request)
        })
        .collect();
    // The notices are drained together; a lifecycle action (should one come this way) waits on
    // its own instance.
    let notices: Vec<DrainRequest> =
        parsed.iter().filter_map(|(_, r)| r.as_ref().ok().filter(|r| r.lifecycle.is_none()).cloned()).collect();
    let mut drained = drain_requests(drainer, &notices, stop_by).await.into_iter();
    let mut response = SqsBatchResponse::default();
    let mut results = Vec::new();
    for (id, request) in parsed {
        let result = match request {
            Ok(ref request @ DrainRequest { lifecycle: Some(ref action), .. }) => {
                drain_for_own_hook(drainer, request, action, stop_by).await
            }
            Ok(_) => drained.next().unwrap_or_else(|| Err(DrainError::Internal("no drain result".into()))),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "SQS record is not a drain request");
                Err(error)
            }
        };
        if result.is_err() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        results.push(result);
    }
    if let Some(notices) = drainer.notices {
        let summaries: Vec<DrainSummary> = results.iter().filter_map(to_publish).cloned().collect();
        publish_within(notices, &summaries, stop_by).await;
    }
    Handled::Batch { response, results }
}

/// Publishes, giving up (logged) past the stop time and a little: the answer, which tells SQS
/// which records to keep, must still reach Lambda before its deadline.
async fn publish_within(notices: Notices<'_>, summaries: &[DrainSummary], stop_by: Option<Instant>) {
    let until = stop_by.map_or_else(|| Instant::now() + PUBLISH_WITHOUT_DEADLINE, |at| at + PUBLISH_PAST_STOP);
    if tokio::time::timeout_at(until, publish_summaries(notices, summaries)).await.is_err() {
        tracing::warn!(summaries = summaries.len(), "drain summaries not published before the invocation's deadline");
    }
}

/// Drains the instance one EventBridge event names: an EC2 notice, or a lifecycle action.
///
/// Returns the summary when every registration is gone (or there was none); otherwise, after
/// trying all of them, an error carrying the summary, so that Lambda retries the event.
pub async fn drain_one(
    drainer: &Drainer<'_>,
    event: &Value,
    stop_by: Option<Instant>,
) -> Result<DrainSummary, DrainError> {
    let request = parse_drain_request(event)?;
    if let Some(action) = &request.lifecycle {
        return drain_for_own_hook(drainer, &request, action, stop_by).await;
    }
    let mut results = drain_requests(drainer, std::slice::from_ref(&request), stop_by).await;
    results.pop().unwrap_or_else(|| Err(DrainError::Internal("no drain result".into())))
}

/// A lifecycle action is drained and completed only when its hook is one this function owns
/// (`LIFECYCLE_HOOK_NAMES`): another tool's hook (aws-node-termination-handler, ECS draining,
/// a script) must not be completed under it, so nothing is called for it, and the event
/// succeeds.
async fn drain_for_own_hook(
    drainer: &Drainer<'_>,
    request: &DrainRequest,
    action: &LifecycleAction,
    stop_by: Option<Instant>,
) -> Result<DrainSummary, DrainError> {
    if drainer.settings.owns_hook(&action.hook) {
        return drain_for_lifecycle(drainer, request, action, stop_by).await;
    }
    tracing::info!(
        instance_id = %request.instance_id, hook = %action.hook, group = %action.group,
        "lifecycle action of a hook not in LIFECYCLE_HOOK_NAMES: left alone for its owner"
    );
    Ok(DrainSummary::left_alone_for(request, drainer.settings.discovery))
}

/// Whether `event` is an SQS event (its records say they come from SQS), not an EventBridge one.
fn is_sqs_event(event: &Value) -> bool {
    let first = event.get("Records").and_then(Value::as_array).and_then(|records| records.first());
    first.and_then(|record| record.get("eventSource")).and_then(Value::as_str) == Some("aws:sqs")
}

/// The summary to publish: a drain's, unless it was a lifecycle action left to its owner (then
/// nothing happened worth a notice).
fn to_publish(result: &Result<DrainSummary, DrainError>) -> Option<&DrainSummary> {
    summary_of(result).filter(|summary| !summary.left_alone())
}

/// The summary a drain produced, complete or not (an event that was no drain request has none).
pub fn summary_of(result: &Result<DrainSummary, DrainError>) -> Option<&DrainSummary> {
    match result {
        Ok(summary) => Some(summary),
        Err(DrainError::Incomplete(summary)) => Some(summary),
        Err(_) => None,
    }
}
