//! What one invocation tells CloudWatch (EMF, see `shared::metrics`).

use std::time::Duration;

use shared::metrics::{Metrics, Unit};

use crate::error::PollError;
use crate::handler::Outcome;

/// Messages received, stored and rejected (handed to the broker's dead-letter handling, or
/// refused as too large for an item in an event-source batch), and how long the invocation took.
/// A failed invocation stored nothing it acknowledged; it counts what it can say.
pub fn invocation_metrics(result: &Result<Outcome, PollError>, took: Duration) -> Metrics {
    let (received, stored, rejected) = match result {
        Ok(Outcome::Poll(summary)) => (summary.received, summary.stored, summary.rejected),
        Ok(Outcome::EventSource { received, stored }) => (*received, *stored, 0),
        Err(PollError::TooLarge { ids, .. } | PollError::Refused { ids, .. }) => (0, 0, ids.len() as u64),
        Err(_) => (0, 0, 0),
    };
    Metrics::for_this_function()
        .count("MessagesReceived", received)
        .count("MessagesStored", stored)
        .count("MessagesRejected", rejected)
        .duration("PollDuration", Unit::Milliseconds, took)
}
