//! What one drain tells CloudWatch (EMF, see `shared::metrics`).

use std::time::Duration;

use shared::metrics::{Metrics, Unit};

use crate::error::DrainError;
use crate::registration::Outcome;
use crate::summary::DrainSummary;

/// Registrations removed, steps that failed, and the seconds the drain took. An event that was
/// not a drain request (malformed, unsupported) has none: the Errors alarm counts it.
pub fn drain_metrics(result: &Result<DrainSummary, DrainError>, took: Duration) -> Option<Metrics> {
    let (removed, failures) = match result {
        Ok(summary) => (summary.count(Outcome::Deregistered), 0),
        Err(DrainError::Incomplete(summary)) => (summary.count(Outcome::Deregistered), summary.failures()),
        Err(DrainError::DescribeInstance { .. } | DrainError::ListTargetGroups(_) | DrainError::DescribeAutoScalingGroup { .. }) => (0, 1),
        Err(DrainError::MalformedEvent(_) | DrainError::UnsupportedEvent(_)) => return None,
    };
    Some(
        Metrics::for_this_function()
            .count("RegistrationsRemoved", removed as u64)
            .count("DrainFailures", failures as u64)
            .duration("DrainSeconds", Unit::Seconds, took),
    )
}
