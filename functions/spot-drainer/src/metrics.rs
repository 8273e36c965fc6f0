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
    // Requests for one instance that share a batch share one drain, and each answers its
    // summary: that drain is counted once.
    let mut counted: Vec<&DrainSummary> = Vec::new();
    for result in results {
        let summary = match result {
            Ok(summary) => Some(summary),
            Err(DrainError::Incomplete(summary)) => Some(&**summary),
            Err(_) => None,
        };
        if let Some(summary) = summary {
            if counted.contains(&summary) {
                continue;
            }
            counted.push(summary);
        }
        beyond += summary.map_or(0, |s| s.delay_beyond_notice.len());
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::drain_metrics;
    use crate::error::DrainError;
    use crate::event::Action;
    use crate::settings::Discovery;
    use crate::summary::{DelayBeyondNotice, DrainSummary};

    #[test]
    fn one_drain_answered_to_two_requests_is_counted_once() {
        let mut summary = DrainSummary::new("i-0123456789abcdef0", Action::Terminate, Discovery::Scan);
        summary.delay_beyond_notice.push(DelayBeyondNotice {
            target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/slow/1".into(),
            deregistration_delay_seconds: 300,
            seconds_left: 100,
        });
        let other = DrainSummary { instance_id: "i-0fedcba9876543210".into(), ..summary.clone() };
        let results: Vec<Result<DrainSummary, DrainError>> = vec![Ok(summary.clone()), Ok(summary), Ok(other)];
        let line = drain_metrics(&results, Duration::from_secs(1)).expect("metrics").to_line(0);
        let record: serde_json::Value = serde_json::from_str(&line).expect("an EMF line");
        assert_eq!(record["DelayBeyondNotice"], 2.0, "{line}");
    }
}
