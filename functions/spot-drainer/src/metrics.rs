//! What one drain tells CloudWatch (EMF, see `shared::metrics`).

use std::time::Duration;

use shared::metrics::{Metrics, Unit};

use crate::error::DrainError;
use crate::registration::Outcome;
use crate::summary::DrainSummary;

/// Registrations removed, steps that failed, drained groups whose deregistration delay outlasts
/// the notice (`DelayBeyondNotice`), and the seconds the invocation took, over every drain of the
/// invocation (one, or a batch's). Events that were not drain requests (malformed,
/// unsupported) count nothing: the Errors alarm, or the queue's dead-letter queue, has them.
pub fn drain_metrics<'r>(
    results: impl IntoIterator<Item = &'r Result<DrainSummary, DrainError>>,
    took: Duration,
) -> Option<Metrics> {
    let (mut removed, mut failures, mut drains, mut beyond) = (0, 0, 0, 0);
    for result in results {
        beyond += match result {
            Ok(summary) => summary.delay_beyond_notice.len(),
            Err(DrainError::Incomplete(summary)) => summary.delay_beyond_notice.len(),
            Err(_) => 0,
        };
        let (r, f) = match result {
            Ok(summary) => (summary.count(Outcome::Deregistered), 0),
            Err(DrainError::Incomplete(summary)) => (summary.count(Outcome::Deregistered), summary.failures()),
            Err(
                DrainError::DescribeInstance { .. }
                | DrainError::ListTargetGroups(_)
                | DrainError::DescribeAutoScalingGroup { .. }
                | DrainError::StillDraining { .. }
                | DrainError::LifecycleAction(_)
                | DrainError::Internal(_),
            ) => (0, 1),
            Err(DrainError::MalformedEvent(_) | DrainError::UnsupportedEvent(_)) => continue,
        };
        (removed, failures, drains) = (removed + r, failures + f, drains + 1);
    }
    (drains > 0).then(|| {
        Metrics::for_this_function()
            .count("RegistrationsRemoved", removed as u64)
            .count("DrainFailures", failures as u64)
            .count("DelayBeyondNotice", beyond as u64)
            .duration("DrainSeconds", Unit::Seconds, took)
    })
}
