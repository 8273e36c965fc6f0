//! One binary, two ways in: an Amazon MQ event-source batch is stored as it is; any other event
//! (the EventBridge schedule) starts a poll of the broker.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;

use crate::clients::AwsClients;
use crate::credentials::CredentialsProvider;
use crate::error::{BrokerError, PollError};
use crate::event_source::{event_source, messages_from_event};
use crate::metrics::invocation_metrics;
use crate::outcome::Outcome;
use crate::poll::poll_broker;
use crate::settings::Settings;
use crate::store::{park, store_setting_aside_refused, Table};

/// What is kept of the invocation for acknowledging and answering once the writes are done.
const WRITE_RESERVE: std::time::Duration = std::time::Duration::from_millis(500);

/// What every invocation needs, made once per environment in `main.rs`.
pub struct Poller<'a> {
    pub aws: &'a AwsClients,
    pub settings: &'a Settings,
    /// The broker's credentials, read from the secret and kept a while.
    pub credentials: &'a CredentialsProvider,
}

/// The function's entry point: polls or stores, writes the metrics, and answers (lambda_runtime
/// writes the answer, in the outcome's own field order).
pub async fn handle_event(poller: &Poller<'_>, event: LambdaEvent<Value>) -> Result<Outcome, PollError> {
    let deadline = shared::deadline::invocation_deadline(event.context.deadline);
    let started = std::time::Instant::now();
    let result = handle_payload(poller.aws, poller.settings, poller.credentials, &event.payload, deadline).await;
    invocation_metrics(&result, started.elapsed()).emit();
    result
}

/// Handles one invocation's payload. `deadline` is the invocation's; the poll stops
/// `deadline_margin` before it.
pub async fn handle_payload(
    aws: &AwsClients,
    settings: &Settings,
    credentials: &CredentialsProvider,
    event: &Value,
    deadline: Instant,
) -> Result<Outcome, PollError> {
    // Writes may run until just before the deadline, leaving time to acknowledge and answer.
    let write_by = deadline.checked_sub(WRITE_RESERVE).unwrap_or_else(Instant::now);
    let table = aws.table(settings, write_by);
    if event_source(event).is_some() {
        return store_event_batch(&table, settings, event).await;
    }
    let stop_at = deadline.checked_sub(settings.deadline_margin).unwrap_or_else(Instant::now);
    let current = credentials.get().await?;
    let summary = match poll_broker(&table, settings, &current, stop_at).await {
        // A refused login may be a password rotated since the secret was read: read it again,
        // once, and retry with what it holds now.
        Err(PollError::Broker(BrokerError::AuthFailed { .. }))
            if let Some(fresh) = credentials.refresh_after_refusal(&current).await? =>
        {
            tracing::info!("the broker refused the cached credentials; retrying with the secret's current version");
            poll_broker(&table, settings, &fresh, stop_at).await?
        }
        other => other?,
    };
    tracing::info!(
        endpoint = %summary.endpoint, queue = %summary.queue, received = summary.received,
        stored = summary.stored, rejected = summary.rejected, stop_reason = ?summary.stop_reason, "poll finished"
    );
    Ok(Outcome::Poll(summary))
}

/// Stores an event-source batch. Any failed write fails the invocation, so the event source
/// retries the batch; keys by message id make the retry overwrite, not duplicate.
async fn store_event_batch(table: &Table<'_>, settings: &Settings, event: &Value) -> Result<Outcome, PollError> {
    let messages = messages_from_event(event, &settings.queue_name)?;
    let received = messages.len() as u64;
    let (fits, too_large): (Vec<_>, Vec<_>) = messages.into_iter().partition(|m| table.can_store(m));
    let refused = store_setting_aside_refused(table, &fits.iter().collect::<Vec<_>>()).await?;
    let parked = match (refused.is_empty(), table.bodies) {
        (false, Some(bucket)) => {
            // Parked whole, so the batch succeeds and the queue moves on with nothing lost.
            for refusal in &refused {
                let message = &fits[refusal.index];
                park(table, bucket, message, &refusal.reason).await?;
            }
            refused.len() as u64
        }
        _ => 0,
    };
    if parked == 0 && !refused.is_empty() {
        // As with a message too large: the rest is stored, the batch fails naming the refused
        // ones, and the event source's retries and the broker's redelivery policy decide.
        let ids: Vec<String> = refused.iter().map(|r| fits[r.index].id.clone()).collect();
        let reason = refused[0].reason.clone();
        tracing::error!(message_ids = ?ids, %reason, "DynamoDB refused messages; the batch fails");
        return Err(PollError::Refused { ids, reason });
    }
    if !too_large.is_empty() {
        // The event source cannot take one message back, and a message is never dropped: the
        // batch fails (its other messages are stored, and a retry overwrites them), so the event
        // source retries it and the broker's redelivery policy decides where it ends.
        let ids: Vec<String> = too_large.iter().map(|m| m.id.clone()).collect();
        let largest = too_large.iter().map(|m| m.body.len()).max().unwrap_or_default();
        tracing::error!(message_ids = ?ids, largest_bytes = largest, "messages too large for a DynamoDB item; the batch fails");
        return Err(PollError::TooLarge { ids, largest_bytes: largest });
    }
    let refused_at: Vec<usize> = refused.iter().map(|r| r.index).collect();
    let stored: Vec<_> = fits.iter().enumerate().filter(|(i, _)| !refused_at.contains(i)).map(|(_, m)| m).collect();
    let bodies_in_bucket = stored.iter().filter(|m| !m.fits_in_an_item()).count() as u64;
    let outcome = Outcome::EventSource { received, stored: stored.len() as u64, bodies_in_bucket, parked };
    tracing::info!(received, stored = stored.len(), bodies_in_bucket, parked, "event-source batch stored");
    Ok(outcome)
}
