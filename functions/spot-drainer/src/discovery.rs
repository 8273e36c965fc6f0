//! Finding the registrations of the instance: which target groups to look in (the tag, or a scan
//! of the VPC), and a group's target health, which gives the exact target ids and ports.

use aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext;
use aws_sdk_elasticloadbalancingv2::types::{TargetHealthDescription, TargetHealthStateEnum, TargetTypeEnum};
use aws_sdk_elasticloadbalancingv2::Client as ElbClient;

use tokio::time::Instant;

use crate::error::DrainError;
use crate::instance::InstanceFacts;
use crate::pacing::TokenBucket;
use crate::registration::Registration;
use crate::retry::{is_transient, one_attempt, Retry};
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
/// from `budget`); a page whose token would come after `stop_by` fails the listing.
pub async fn target_groups_in_vpc(
    elb: &ElbClient,
    vpc_id: &str,
    budget: &TokenBucket,
    stop_by: Option<Instant>,
) -> Result<Vec<String>, DrainError> {
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        if !budget.take_by(stop_by).await {
            return Err(DrainError::ListTargetGroups("not listed before the invocation's deadline".into()));
        }
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

/// What one group's target health says of the instances being drained.
pub struct GroupTargets {
    /// Their registrations (exact ids and ports), each with whether it is healthy now.
    pub found: Vec<(Registration, bool)>,
    /// Healthy targets of the group that are none of the instances being drained.
    pub healthy_others: usize,
}

/// The registrations of the instances in one group, from its target health (exact ids and
/// ports); a group that cannot be read is a problem for the summary, not an error of the drain.
/// The first attempt's token is the caller's; transient failures are retried within `retry`.
pub async fn registrations_in_group(
    elb: &ElbClient,
    arn: &str,
    instances: &[&InstanceFacts],
    retry: Retry<'_>,
) -> Result<GroupTargets, GroupProblem> {
    let mut retries = 0;
    let output = loop {
        let err = match elb
            .describe_target_health()
            .target_group_arn(arn)
            .customize()
            .config_override(one_attempt())
            .send()
            .await
        {
            Ok(output) => break output,
            Err(err) => err,
        };
        retries += 1;
        if is_transient(&err) && retry.before(retries).await {
            continue;
        }
        let not_found = err.as_service_error().is_some_and(|e| e.is_target_group_not_found_exception());
        return Err(GroupProblem {
            target_group_arn: arn.to_owned(),
            outcome: if not_found { GroupOutcome::NotFound } else { GroupOutcome::Failed },
            error: Some(DisplayErrorContext(&err).to_string()),
        });
    };
    let ours = |id: Option<&str>| id.is_some_and(|id| instances.iter().any(|instance| instance.is_target(id)));
    let healthy = |d: &TargetHealthDescription| {
        d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)
    };
    let descriptions = output.target_health_descriptions();
    // Distinct targets: one other instance on two ports is one healthy target, not two.
    let healthy_others = descriptions
        .iter()
        .filter(|d| healthy(d))
        .filter_map(|d| d.target().and_then(|t| t.id()))
        .filter(|id| !ours(Some(id)))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let found = descriptions
        .iter()
        .filter_map(|description| Some((description.target()?, healthy(description))))
        .filter(|(target, _)| ours(target.id()))
        .map(|(target, healthy)| {
            let registration = Registration {
                target_group_arn: arn.to_owned(),
                target_id: target.id().unwrap_or_default().to_owned(),
                port: target.port(),
                availability_zone: target.availability_zone().map(str::to_owned),
            };
            (registration, healthy)
        })
        .collect();
    Ok(GroupTargets { found, healthy_others })
}

/// Splits a group's registrations into those to remove now and those to defer: a rebalance
/// recommendation (`rebalancing` says whose) may not leave the group with fewer than `keep`
/// healthy targets, so the registrations that would go below it stay for now. Every
/// other registration (an interruption's, a lifecycle action's, an unhealthy one) goes.
pub fn keep_healthy_floor(
    targets: GroupTargets,
    rebalancing: impl Fn(&str) -> bool,
    keep: usize,
) -> (Vec<Registration>, Vec<Registration>) {
    let mut healthy_left = targets.healthy_others;
    let (mut remove, mut defer) = (Vec::new(), Vec::new());
    for (registration, healthy) in targets.found {
        // Below the floor every rebalancing registration stays, unhealthy ones too: a group
        // whose targets all fail health checks still routes to them (ELB fails open).
        if rebalancing(&registration.target_id) && healthy_left < keep {
            healthy_left += usize::from(healthy);
            defer.push(registration);
        } else {
            remove.push(registration);
        }
    }
    (remove, defer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(id: &str) -> Registration {
        Registration { target_group_arn: "arn:g".into(), target_id: id.into(), port: Some(80), availability_zone: None }
    }

    #[test]
    fn a_rebalance_keeps_the_floor_of_healthy_targets_and_an_interruption_does_not() {
        let targets = |healthy_others| GroupTargets {
            found: vec![(registration("i-a"), true), (registration("i-b"), true), (registration("i-sick"), false)],
            healthy_others,
        };
        let ids = |r: &[Registration]| r.iter().map(|r| r.target_id.clone()).collect::<Vec<_>>();
        // The group's only healthy targets are rebalancing: one stays.
        let (remove, defer) = keep_healthy_floor(targets(0), |_| true, 1);
        assert_eq!((ids(&remove), ids(&defer)), (vec!["i-b".into(), "i-sick".into()], vec!["i-a".to_owned()]));
        // Enough healthy others: everything goes.
        let (remove, defer) = keep_healthy_floor(targets(1), |_| true, 1);
        assert_eq!((remove.len(), defer.len()), (3, 0));
        // An interrupted instance is never kept, nor is anything with no floor.
        let (remove, defer) = keep_healthy_floor(targets(0), |id| id != "i-a", 1);
        assert_eq!((ids(&remove), ids(&defer)), (vec!["i-a".into(), "i-sick".into()], vec!["i-b".to_owned()]));
        assert_eq!(keep_healthy_floor(targets(0), |_| true, 0).1.len(), 0);
        assert_eq!(keep_healthy_floor(targets(0), |_| true, 5).1.len(), 3, "below the floor nothing goes");
        // Every target failing health checks (ELB fails open): none is removed.
        let failing =
            GroupTargets { found: vec![(registration("i-a"), false), (registration("i-b"), false)], healthy_others: 0 };
        assert_eq!(keep_healthy_floor(failing, |_| true, 1).1.len(), 2);
    }

    #[test]
    fn tag_values_split_on_commas_and_space() {
        let value = " arn:a, arn:b\narn:c,,arn:a ";
        assert_eq!(target_group_arns_from_tag(value), ["arn:a", "arn:b", "arn:c"]);
        assert!(target_group_arns_from_tag(" , ").is_empty());
    }
}
