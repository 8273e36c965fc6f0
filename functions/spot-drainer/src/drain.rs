//! The handler: from one EventBridge event to every registration of the instance removed.

use serde_json::Value;

use futures::{stream, StreamExt};

use crate::deregistration::deregister_group;
use crate::discovery::{registrations_in_group, target_group_arns_from_tag, target_groups_in_vpc};
use crate::pacing::ElbBudget;
use crate::registration::RegistrationOutcome;
use crate::summary::{GroupOutcome, GroupProblem};
use tokio::time::Instant;
use crate::error::DrainError;
use crate::event::parse_drain_request;
use crate::instance::{describe_instance, InstanceFacts};
use crate::settings::{Discovery, Settings};
use crate::summary::DrainSummary;

/// Drains the instance named in `event` from every target group it is registered in.
///
/// Returns the summary when every registration is gone (or there was none); otherwise, after
/// trying all of them, an error carrying the summary, so that Lambda retries the event.
pub async fn drain_instance(
    ec2: &aws_sdk_ec2::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    settings: &Settings,
    event: &Value,
) -> Result<DrainSummary, DrainError> {
    drain_instance_by(ec2, elb, settings, event, None).await
}

/// As [`drain_instance`], searching no group after `stop_by` (the invocation's deadline less a
/// margin): the groups not reached are reported, and the drain fails so the event is retried.
pub async fn drain_instance_by(
    ec2: &aws_sdk_ec2::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    settings: &Settings,
    event: &Value,
    stop_by: Option<Instant>,
) -> Result<DrainSummary, DrainError> {
    let request = parse_drain_request(event)?;
    let mut summary = DrainSummary {
        instance_id: request.instance_id.clone(),
        action: request.action,
        discovery: settings.discovery,
        discovered_by: None,
        instance_found: false,
        registrations: Vec::new(),
        group_problems: Vec::new(),
    };
    let Some(instance) = describe_instance(ec2, &request.instance_id).await? else {
        tracing::info!(instance_id = %request.instance_id, "instance no longer exists; nothing to drain");
        return finish(summary);
    };
    summary.instance_found = true;

    let (discovered_by, groups) = target_groups_to_search(elb, settings, &instance).await?;
    summary.discovered_by = Some(discovered_by);
    let budget = ElbBudget::new(&settings.pacing);
    let (registrations, problems) = drain_groups(elb, &groups, &instance, settings, &budget, stop_by).await;
    if registrations.is_empty() && problems.is_empty() {
        tracing::info!(instance_id = %instance.instance_id, groups = groups.len(), "instance is in no target group");
    }
    summary.registrations = registrations;
    summary.group_problems = problems;
    finish(summary)
}

/// Each group is searched and, where the instance is registered, drained at once, not after the
/// whole scan: the first targets leave within seconds even when there are hundreds of groups.
/// `SCAN_CONCURRENCY` groups at a time, every call within the function's ELB budgets.
async fn drain_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    groups: &[String],
    instance: &InstanceFacts,
    settings: &Settings,
    budget: &ElbBudget,
    stop_by: Option<Instant>,
) -> (Vec<RegistrationOutcome>, Vec<GroupProblem>) {
    let per_group: Vec<_> = stream::iter(groups)
        .map(|arn| async move {
            let late = stop_by.is_some_and(|stop_by| Instant::now() >= stop_by);
            if late || !budget.describe.take_by(stop_by).await {
                return Err(GroupProblem {
                    target_group_arn: arn.clone(),
                    outcome: GroupOutcome::NotReached,
                    error: Some("not searched before the invocation's deadline".into()),
                });
            }
            match registrations_in_group(elb, arn, instance).await {
                Ok(found) if found.is_empty() => Ok(Vec::new()),
                Ok(found) => Ok(deregister_group(elb, arn, found, &budget.deregister).await),
                Err(problem) => Err(problem),
            }
        })
        .buffer_unordered(settings.scan_concurrency.max(1))
        .collect()
        .await;
    let (mut registrations, mut problems) = (Vec::new(), Vec::new());
    for result in per_group {
        match result {
            Ok(outcomes) => registrations.extend(outcomes),
            Err(problem) => problems.push(problem),
        }
    }
    // Deterministic order for the summary, whatever order the calls finished in.
    registrations.sort_by(|a, b| {
        let (a, b) = (&a.registration, &b.registration);
        (&a.target_group_arn, &a.target_id, a.port).cmp(&(&b.target_group_arn, &b.target_id, b.port))
    });
    problems.sort_by(|a, b| a.target_group_arn.cmp(&b.target_group_arn));
    (registrations, problems)
}

/// The groups to look in, and which discovery chose them.
async fn target_groups_to_search(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    settings: &Settings,
    instance: &InstanceFacts,
) -> Result<(Discovery, Vec<String>), DrainError> {
    let tag = instance.tags.get(&settings.target_group_tag_key);
    let use_tag = match settings.discovery {
        Discovery::Tag => true,
        Discovery::Scan => false,
        Discovery::Auto => tag.is_some_and(|value| !value.trim().is_empty()),
    };
    if use_tag {
        let arns = tag.map(|value| target_group_arns_from_tag(value)).unwrap_or_default();
        if arns.is_empty() {
            tracing::warn!(
                instance_id = %instance.instance_id,
                tag = %settings.target_group_tag_key,
                "instance has no target group tag; nothing to drain"
            );
        }
        return Ok((Discovery::Tag, arns));
    }
    let Some(vpc_id) = instance.vpc_id.as_deref() else {
        tracing::warn!(instance_id = %instance.instance_id, "instance has no VPC (EC2-Classic?); nothing to scan");
        return Ok((Discovery::Scan, Vec::new()));
    };
    Ok((Discovery::Scan, target_groups_in_vpc(elb, vpc_id).await?))
}

/// Logs the summary as one structured line and turns failures into an error.
fn finish(summary: DrainSummary) -> Result<DrainSummary, DrainError> {
    let line = serde_json::to_string(&summary).unwrap_or_default();
    if summary.failures() > 0 {
        tracing::error!(summary = %line, "drain incomplete");
        Err(DrainError::Incomplete(Box::new(summary)))
    } else {
        tracing::info!(summary = %line, "drain finished");
        Ok(summary)
    }
}
