//! Removing the registrations: one `DeregisterTargets` call per target group, with each target's
//! exact port.

use aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use aws_sdk_elasticloadbalancingv2::Client as ElbClient;

use tokio::time::Instant;

use crate::pacing::TokenBucket;
use crate::registration::{Outcome, Registration, RegistrationOutcome};
use crate::retry::{is_transient, one_attempt, Retry};

/// Deregisters the instance's registrations in one group, in one call, each with its exact
/// port; every call waits for a token of `budget`.
pub async fn deregister_group(
    elb: &ElbClient,
    arn: &str,
    targets: Vec<Registration>,
    budget: &TokenBucket,
    stop_by: Option<Instant>,
) -> Vec<RegistrationOutcome> {
    let budget = Retry { budget, stop_by };
    match deregister(elb, arn, &targets, budget).await {
        Ok(()) => with_outcome(targets, Outcome::Deregistered, None),
        Err(Failure::GroupGone) => with_outcome(targets, Outcome::AlreadyGone, None),
        // One invalid target fails the whole call; retry one by one so the others still go.
        Err(Failure::InvalidTarget) if targets.len() > 1 => {
            let mut outcomes = Vec::with_capacity(targets.len());
            for target in targets {
                let (outcome, error) = match deregister(elb, arn, std::slice::from_ref(&target), budget).await {
                    Ok(()) => (Outcome::Deregistered, None),
                    Err(Failure::GroupGone | Failure::InvalidTarget) => (Outcome::AlreadyGone, None),
                    Err(Failure::Other(message) | Failure::Transient(message)) => (Outcome::Failed, Some(message)),
                };
                outcomes.push(RegistrationOutcome { registration: target, outcome, error });
            }
            outcomes
        }
        Err(Failure::InvalidTarget) => with_outcome(targets, Outcome::AlreadyGone, None),
        Err(Failure::Other(message) | Failure::Transient(message)) => {
            with_outcome(targets, Outcome::Failed, Some(message))
        }
    }
}

enum Failure {
    GroupGone,
    /// The target is not (or no longer) a valid target of the group, e.g. the instance terminated.
    InvalidTarget,
    /// Throttling, a server error or a timeout: worth another attempt.
    Transient(String),
    Other(String),
}

/// One call, its transient failures retried within `retry` (each attempt takes a token).
async fn deregister(elb: &ElbClient, arn: &str, targets: &[Registration], retry: Retry<'_>) -> Result<(), Failure> {
    if !retry.budget.take_by(retry.stop_by).await {
        return Err(Failure::Other("not deregistered before the invocation's deadline".into()));
    }
    let mut retries = 0;
    loop {
        match deregister_once(elb, arn, targets).await {
            Err(Failure::Transient(_)) if retry.before(retries + 1).await => retries += 1,
            Err(Failure::Transient(message)) => return Err(Failure::Other(message)),
            other => return other,
        }
    }
}

async fn deregister_once(elb: &ElbClient, arn: &str, targets: &[Registration]) -> Result<(), Failure> {
    let mut request = elb.deregister_targets().target_group_arn(arn);
    for target in targets {
        request = request.targets(
            TargetDescription::builder()
                .id(&target.target_id)
                .set_port(target.port)
                .set_availability_zone(target.availability_zone.clone())
                .build(),
        );
    }
    match request.customize().config_override(one_attempt()).send().await {
        Ok(_) => Ok(()),
        Err(err) => Err(match err.as_service_error() {
            Some(e) if e.is_target_group_not_found_exception() => Failure::GroupGone,
            Some(e) if e.is_invalid_target_exception() => Failure::InvalidTarget,
            _ if is_transient(&err) => Failure::Transient(DisplayErrorContext(&err).to_string()),
            _ => Failure::Other(DisplayErrorContext(&err).to_string()),
        }),
    }
}

fn with_outcome(targets: Vec<Registration>, outcome: Outcome, error: Option<String>) -> Vec<RegistrationOutcome> {
    targets
        .into_iter()
        .map(|registration| RegistrationOutcome { registration, outcome, error: error.clone() })
        .collect()
}
