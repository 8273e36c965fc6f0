//! Finding the registrations of the instance: which target groups to look in (the tag, or a scan
//! of the VPC), and a group's target health, which gives the exact target ids and ports.

use aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext;
use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use aws_sdk_elasticloadbalancingv2::Client as ElbClient;

use crate::error::DrainError;
use crate::instance::InstanceFacts;
use crate::pacing::TokenBucket;
use crate::registration::Registration;
use crate::summary::{GroupOutcome, GroupProblem};

/// The target group ARNs in a tag value: one or several, separated by commas or white space.
pub fn target_group_arns_from_tag(value: &str) -> Vec<String> {
    let mut arns: Vec<String> = Vec::new();
    for arn in value.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()) {
        if !arns.iter().any(|known| known == arn) {
            arns.push(arn.to_owned());
        }
    }
    arns
}

/// Every instance- and ip-type target group in the VPC (all pages, each a describe call drawn
/// from `budget`).
pub async fn target_groups_in_vpc(
    elb: &ElbClient,
    vpc_id: &str,
    budget: &TokenBucket,
) -> Result<Vec<String>, DrainError> {
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        budget.take().await;
        let page = elb
            .describe_target_groups()
            .set_marker(marker.take())
            .page_size(400)
            .send()
            .await
            .map_err(|e| DrainError::ListTargetGroups(DisplayErrorContext(&e).to_string()))?;
        for group in page.target_groups() {
            let searchable = matches!(group.target_type(), Some(TargetTypeEnum::Instance | TargetTypeEnum::Ip) | None);
            if searchable && group.vpc_id() == Some(vpc_id) {
                if let Some(arn) = group.target_group_arn() {
                    arns.push(arn.to_owned());
                }
            }
        }
        match page.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
            _ => return Ok(arns),
        }
    }
}

/// The registrations of the instances in one group, from its target health (exact ids and
/// ports); a group that cannot be read is a problem for the summary, not an error of the drain.
pub async fn registrations_in_group(
    elb: &ElbClient,
    arn: &str,
    instances: &[&InstanceFacts],
) -> Result<Vec<Registration>, GroupProblem> {
    let output = elb.describe_target_health().target_group_arn(arn).send().await.map_err(|err| {
        let not_found = err.as_service_error().is_some_and(|e| e.is_target_group_not_found_exception());
        GroupProblem {
            target_group_arn: arn.to_owned(),
            outcome: if not_found { GroupOutcome::NotFound } else { GroupOutcome::Failed },
            error: Some(DisplayErrorContext(&err).to_string()),
        }
    })?;
    Ok(output
        .target_health_descriptions()
        .iter()
        .filter_map(|description| description.target())
        .filter(|target| target.id().is_some_and(|id| instances.iter().any(|instance| instance.is_target(id))))
        .map(|target| Registration {
            target_group_arn: arn.to_owned(),
            target_id: target.id().unwrap_or_default().to_owned(),
            port: target.port(),
            availability_zone: target.availability_zone().map(str::to_owned),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_split_on_commas_and_space() {
        let value = " arn:a, arn:b\narn:c,,arn:a ";
        assert_eq!(target_group_arns_from_tag(value), ["arn:a", "arn:b", "arn:c"]);
        assert!(target_group_arns_from_tag(" , ").is_empty());
    }
}
