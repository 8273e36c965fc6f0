//! Auto Scaling's terminate lifecycle hook (scale-in, instance refresh): Auto Scaling drains the
//! target groups attached to the group itself before the hook's wait; this drains the instance
//! from every other group it is registered in, waits until those targets have left `draining`
//! (heart-beating the hook meanwhile), then completes the action with CONTINUE. The wait is
//! bounded by the invocation: a deregistration delay longer than that ends the invocation with
//! `StillDraining` (the hook heart-beaten), and the retried event waits on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_autoscaling::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
use tokio::time::Instant;

use crate::asg;
use crate::clients::AwsClients;
use crate::drain::{drain_requests_except, finish};
use crate::drainer::Drainer;
use crate::error::DrainError;
use crate::event::{DrainRequest, LifecycleAction};
use crate::pacing::TokenBucket;
use crate::registration::{Outcome, Registration};
use crate::summary::DrainSummary;

/// How often the targets are checked while they drain.
pub const POLL_EVERY: Duration = Duration::from_secs(5);
/// Well under the shortest heartbeat timeout a hook may have (30 s).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);

pub async fn drain_for_lifecycle(
    drainer: &Drainer<'_>,
    request: &DrainRequest,
    action: &LifecycleAction,
    stop_by: Option<Instant>,
) -> Result<DrainSummary, DrainError> {
    let (aws, settings) = (drainer.aws, drainer.settings);
    let attached: BTreeSet<String> =
        asg::target_groups_of(&aws.autoscaling, &action.group).await?.into_iter().collect();
    // The hook heart-beaten while the drain runs too: a scan can outlast a short heartbeat
    // timeout (30 s at least), and the hook's default result would end the instance mid-drain.
    let drain = drain_requests_except(drainer, std::slice::from_ref(request), &attached, stop_by);
    let mut drain = std::pin::pin!(drain);
    let mut drained = loop {
        tokio::select! {
            drained = &mut drain => break drained,
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {
                if let Err(error) = heartbeat(aws, action, &request.instance_id).await {
                    tracing::warn!(instance_id = %request.instance_id, %error, "heartbeat during the drain failed; draining on");
                }
            }
        }
    };
    let mut summary = drained.pop().unwrap_or_else(|| Err(DrainError::Internal("no drain result".into())))?;
    let leaving: Vec<&Registration> =
        summary.registrations.iter().filter(|r| r.outcome == Outcome::Deregistered).map(|r| &r.registration).collect();
    // The wait polls from a bucket of its own, not the account's: it may last 15 minutes at one
    // call per group every 5 s, and must not take turns with the drains of a reclaim, whose
    // notice is two minutes.
    let budget = TokenBucket::new(settings.pacing.describe_rate, settings.pacing.describe_burst);
    wait_until_drained(aws, action, &request.instance_id, &leaving, &budget, stop_by).await?;
    summary.lifecycle = Some(complete(aws, action, &request.instance_id).await?.to_owned());
    finish(summary)
}

/// Polls the groups the instance left until none of its targets is `draining`.
async fn wait_until_drained(
    aws: &AwsClients,
    action: &LifecycleAction,
    instance_id: &str,
    leaving: &[&Registration],
    budget: &TokenBucket,
    stop_by: Option<Instant>,
) -> Result<(), DrainError> {
    let mut by_group: BTreeMap<&str, Vec<&Registration>> = BTreeMap::new();
    for registration in leaving {
        by_group.entry(registration.target_group_arn.as_str()).or_default().push(registration);
    }
    let mut beaten = Instant::now();
    loop {
        let mut draining = 0;
        for (arn, targets) in &by_group {
            budget.take().await;
            let mut describe = aws.elb.describe_target_health().target_group_arn(*arn);
            for target in targets {
                describe =
                    describe.targets(TargetDescription::builder().id(&target.target_id).set_port(target.port).build());
            }
            // A group that cannot be read now is read again on the next round; one deleted since
            // holds nothing to wait for.
            match describe.send().await {
                Ok(health) => {
                    draining += health
                        .target_health_descriptions()
                        .iter()
                        .filter(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Draining))
                        .count()
                }
                Err(error) if error.code() == Some("TargetGroupNotFound") => {}
                Err(_) => draining += targets.len(),
            }
        }
        if draining == 0 {
            return Ok(());
        }
        if stop_by.is_some_and(|stop_by| Instant::now() + POLL_EVERY >= stop_by) {
            // Keep the hook open for the retried event, which waits on.
            heartbeat(aws, action, instance_id).await?;
            return Err(DrainError::StillDraining { instance_id: instance_id.to_owned(), targets: draining });
        }
        if beaten.elapsed() >= HEARTBEAT_EVERY {
            heartbeat(aws, action, instance_id).await?;
            beaten = Instant::now();
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A lifecycle action that is no longer waiting: completed already (a repeated event), or ended
/// by its timeout.
fn no_longer_waiting(error: &impl ProvideErrorMetadata) -> bool {
    error.code() == Some("ValidationError") && error.message().is_some_and(|m| m.contains("No active Lifecycle Action"))
}

async fn heartbeat(aws: &AwsClients, action: &LifecycleAction, instance_id: &str) -> Result<(), DrainError> {
    let result = aws
        .autoscaling
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&action.group)
        .lifecycle_hook_name(&action.hook)
        .lifecycle_action_token(&action.token)
        .instance_id(instance_id)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(no_longer_waiting) => Ok(()),
        Err(e) => Err(DrainError::LifecycleAction(format!("heartbeat for {instance_id}: {}", DisplayErrorContext(&e)))),
    }
}

/// Completes the action with CONTINUE; a repeated event finds it completed, which is the goal.
async fn complete(aws: &AwsClients, action: &LifecycleAction, instance_id: &str) -> Result<&'static str, DrainError> {
    let result = aws
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(&action.group)
        .lifecycle_hook_name(&action.hook)
        .lifecycle_action_token(&action.token)
        .instance_id(instance_id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await;
    match result {
        Ok(_) => Ok("completed"),
        Err(e) if e.as_service_error().is_some_and(no_longer_waiting) => Ok("already-completed"),
        Err(e) => {
            Err(DrainError::LifecycleAction(format!("completing for {instance_id}: {}", DisplayErrorContext(&e))))
        }
    }
}
