//! What one drain tells CloudWatch (EMF, see `shared::metrics`).

use std::time::Duration;

use shared::metrics::{Metrics, Unit};

use crate::error::DrainError;
use crate::registration::{Outcome, RegistrationOutcome};
use crate::summary::DrainSummary;

/// Registrations removed, steps that failed, drained groups whose deregistration delay outlasts
/// the notice (`DelayBeyondNotice`), and the seconds the invocation took, over every drain of the
/// invocation (one, or a batch's). Events that were not drain requests (malformed,
/// unsupported) count nothing: the Errors alarm, or the queue's dead-letter queue, has them.
pub fn drain_metrics<'r>(
    results: impl IntoIterator<Item = &'r Result<DrainSummary, DrainError>>,
    took: Duration,
) -> Option<Metrics> {
    let (mut removed, mut failures, mut drains) = (0, 0, 0);
    // Requests for one instance that share a batch (a rebalance recommendation and its warning,
    // a repeated delivery) share one drain, and each answers its own copy of it: the same
    // registrations, its own action and times, and a rebalance's copy without the delay list.
    // That drain is counted once, with the longest delay list any copy carries; an error cloned
    // to each request once.
    let mut drained: Vec<(&str, &[RegistrationOutcome], usize)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for result in results {
        let summary = match result {
            Ok(summary) => Some(summary),
            Err(DrainError::Incomplete(summary)) => Some(&**summary),
            Err(DrainError::MalformedEvent(_) | DrainError::UnsupportedEvent(_)) => continue,
            Err(_) => None,
        };
        if let Some(summary) = summary {
            let beyond = summary.delay_beyond_notice.len();
            let same = |(instance, registrations, _): &&mut (&str, &[RegistrationOutcome], usize)| {
                *instance == summary.instance_id && *registrations == summary.registrations.as_slice()
            };
            if let Some(shared) = drained.iter_mut().find(same) {
                shared.2 = shared.2.max(beyond);
                continue;
            }
            drained.push((&summary.instance_id, &summary.registrations, beyond));
        } else if let Err(error) = result {
            let text = error.to_string();
            if errors.contains(&text) {
                continue;
            }
            errors.push(text);
        }
        let (r, f) = match result {
            Ok(summary) => (summary.count(Outcome::Deregistered), 0),
            Err(DrainError::Incomplete(summary)) => (summary.count(Outcome::Deregistered), summary.failures()),
            Err(_) => (0, 1),
        };
        (removed, failures, drains) = (removed + r, failures + f, drains + 1);
    }
    let beyond: usize = drained.iter().map(|(_, _, beyond)| beyond).sum();
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
        // The rebalance recommendation's copy of the same drain: its own action, no delay list.
        let rebalance = DrainSummary { action: Action::Rebalance, delay_beyond_notice: Vec::new(), ..summary.clone() };
        let failed = DrainError::Internal("the same failure, cloned to each request".into());
        let results: Vec<Result<DrainSummary, DrainError>> =
            vec![Ok(rebalance), Ok(summary.clone()), Ok(summary), Ok(other), Err(failed.clone()), Err(failed)];
        let line = drain_metrics(&results, Duration::from_secs(1)).expect("metrics").to_line(0);
        let record: serde_json::Value = serde_json::from_str(&line).expect("an EMF line");
        assert_eq!(record["DelayBeyondNotice"], 2.0, "{line}");
        assert_eq!(record["DrainFailures"], 1.0, "{line}");
    }
}
