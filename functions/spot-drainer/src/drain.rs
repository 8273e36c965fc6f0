//! The handler: from one EventBridge event to every registration of the instance removed.

use serde_json::Value;

use crate::deregistration::deregister_from_target_groups;
use crate::discovery::{find_registrations, target_group_arns_from_tag, target_groups_in_vpc};
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
    let found = find_registrations(elb, &groups, &instance, settings.scan_concurrency).await;
    summary.group_problems = found.problems;
    if found.registrations.is_empty() {
        tracing::info!(instance_id = %instance.instance_id, groups = groups.len(), "instance is in no target group");
    }
    summary.registrations =
        deregister_from_target_groups(elb, found.registrations, settings.scan_concurrency).await;
    finish(summary)
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
