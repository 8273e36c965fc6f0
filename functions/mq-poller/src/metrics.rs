//! What one invocation tells CloudWatch (EMF, see `shared::metrics`).

use std::time::Duration;

use shared::metrics::{Metrics, Unit};

use crate::error::{BrokerError, PollError};
use crate::outcome::Outcome;

/// Messages received, stored (and of those, the bodies sent to the body bucket) and rejected (handed to the broker's dead-letter handling, or
/// refused as too large for an item in an event-source batch), and how long the invocation took.
/// A failed invocation stored nothing it acknowledged; it counts what it can say. `InternalErrors`
/// counts failures of the function itself.
pub fn invocation_metrics(result: &Result<Outcome, PollError>, took: Duration) -> Metrics {
    let (received, stored, rejected, bodies_in_bucket) = match result {
        Ok(Outcome::Poll(summary)) => (summary.received, summary.stored, summary.rejected, summary.bodies_in_bucket),
        Ok(Outcome::EventSource { received, stored, bodies_in_bucket, parked }) => {
            (*received, *stored, *parked, *bodies_in_bucket)
        }
        Err(PollError::TooLarge { ids, .. } | PollError::Refused { ids, .. }) => (0, 0, ids.len() as u64, 0),
        Err(_) => (0, 0, 0, 0),
    };
    Metrics::for_this_function()
        .count("MessagesReceived", received)
        .count("MessagesStored", stored)
        .count("MessagesRejected", rejected)
        .count("BodiesToS3", bodies_in_bucket)
        .count("InternalErrors", u64::from(matches!(result, Err(PollError::Broker(BrokerError::Internal(_))))))
        .duration("PollDuration", Unit::Milliseconds, took)
}
