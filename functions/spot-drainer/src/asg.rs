//! The instance's Auto Scaling group: the target groups attached to it (no scan needed), and,
//! when asked, detaching the instance so Auto Scaling launches its replacement at once.

use aws_sdk_autoscaling::error::DisplayErrorContext;
use aws_sdk_autoscaling::Client as AutoScalingClient;

use crate::error::DrainError;
use crate::instance::InstanceFacts;

/// The tag EC2 Auto Scaling puts on every instance it launches.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

pub fn group_of(instance: &InstanceFacts) -> Option<&str> {
    instance.tags.get(GROUP_TAG).map(String::as_str).filter(|name| !name.trim().is_empty())
}

/// The target groups attached to the Auto Scaling group: its `TargetGroupARNs` and its ELBv2
/// traffic sources (the newer way to attach them), without repeats.
pub async fn target_groups_of(autoscaling: &AutoScalingClient, group: &str) -> Result<Vec<String>, DrainError> {
    let output =
        autoscaling.describe_auto_scaling_groups().auto_scaling_group_names(group).send().await.map_err(|e| {
            DrainError::DescribeAutoScalingGroup {
                group: group.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            }
        })?;
    let Some(found) = output.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(group)) else {
        return Err(DrainError::DescribeAutoScalingGroup {
            group: group.to_owned(),
            message: "no such Auto Scaling group".into(),
        });
    };
    let traffic = found
        .traffic_sources()
        .iter()
        .filter(|source| source.r#type().is_none_or(|kind| kind == "elbv2"))
        .filter_map(|source| source.identifier());
    let mut arns: Vec<String> = Vec::new();
    for arn in found.target_group_arns().iter().map(String::as_str).chain(traffic) {
        if arn.contains(":targetgroup/") && !arns.iter().any(|known| known == arn) {
            arns.push(arn.to_owned());
        }
    }
    Ok(arns)
}

/// Detaches the instance without lowering the desired capacity: Auto Scaling starts the
/// replacement now, and deregisters the instance from its attached groups with its own budget.
/// A failure (the instance already leaving, say) is logged, never fatal: the drain goes on.
pub async fn detach(autoscaling: &AutoScalingClient, group: &str, instance_id: &str) -> bool {
    let result = autoscaling
        .detach_instances()
        .auto_scaling_group_name(group)
        .instance_ids(instance_id)
        .should_decrement_desired_capacity(false)
        .send()
        .await;
    match result {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(%instance_id, %group, error = %DisplayErrorContext(&e), "could not detach the instance from its Auto Scaling group; draining it anyway");
            false
        }
    }
}
