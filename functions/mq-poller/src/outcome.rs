//! What an invocation answers: a poll's summary, or what became of an event-source batch.

use serde::Serialize;

use crate::poll::PollSummary;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Outcome {
    Poll(PollSummary),
    /// `parked`: refused by DynamoDB and parked in the body bucket.
    EventSource {
        received: u64,
        stored: u64,
        bodies_in_bucket: u64,
        parked: u64,
    },
}
