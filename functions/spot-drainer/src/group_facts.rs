//! After the deregistrations: what each drained group does next. Its deregistration delay
//! (`DescribeTargetGroupAttributes`), to compare with the notice's time left, and whether a
//! Kubernetes controller manages it (`DescribeTags`, the AWS Load Balancer Controller's tag),
//! since that controller may register the target again. These inform the summary; they are read
//! from the describe budget only while the drain's stop time allows, and a group whose facts
//! could not be read is left out of them, never failed.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::Client as ElbClient;
use futures::{stream, StreamExt};
use tokio::time::Instant;

use crate::pacing::TokenBucket;

/// The tag the AWS Load Balancer Controller puts on the target groups it manages.
pub const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
pub const CONTROLLER: &str = "aws-load-balancer-controller";
const DELAY_ATTRIBUTE: &str = "deregistration_delay.timeout_seconds";
/// `DescribeTags` takes at most 20 resources a call.
const TAGS_PER_CALL: usize = 20;
/// Attribute reads in flight at once (each also waits for a describe token).
const CONCURRENT_READS: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    pub deregistration_delay_seconds: Option<u64>,
    /// The cluster, when the AWS Load Balancer Controller manages the group.
    pub cluster: Option<String>,
}

/// The facts of `arns`, each call taking a describe token unless the token would come after
/// `stop_by`.
pub async fn read_group_facts(
    elb: &ElbClient,
    arns: &BTreeSet<String>,
    budget: &TokenBucket,
    stop_by: Option<Instant>,
) -> BTreeMap<String, GroupFacts> {
    let mut facts: BTreeMap<String, GroupFacts> = BTreeMap::new();
    let all: Vec<&String> = arns.iter().collect();
    for chunk in all.chunks(TAGS_PER_CALL) {
        if !budget.take_by(stop_by).await {
            tracing::info!(groups = chunk.len(), "no time left to read the drained groups' tags");
            break;
        }
        match elb.describe_tags().set_resource_arns(Some(chunk.iter().map(|a| a.to_string()).collect())).send().await {
            Ok(output) => {
                for description in output.tag_descriptions() {
                    let Some(arn) = description.resource_arn() else { continue };
                    let cluster = description
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(CLUSTER_TAG))
                        .and_then(|t| t.value().map(str::to_owned));
                    facts.entry(arn.to_owned()).or_default().cluster = cluster;
                }
            }
            Err(error) => {
                tracing::warn!(error = %aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&error), "reading the drained groups' tags failed")
            }
        }
    }
    let delays: Vec<(String, Option<u64>)> = stream::iter(all)
        .map(|arn| async move {
            if !budget.take_by(stop_by).await {
                return (arn.clone(), None);
            }
            let read = elb.describe_target_group_attributes().target_group_arn(arn).send().await;
            let delay = match read {
                Ok(output) => output
                    .attributes()
                    .iter()
                    .find(|a| a.key() == Some(DELAY_ATTRIBUTE))
                    .and_then(|a| a.value())
                    .and_then(|v| v.parse().ok()),
                Err(error) => {
                    tracing::warn!(target_group_arn = %arn, error = %aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&error), "reading the group's deregistration delay failed");
                    None
                }
            };
            (arn.clone(), delay)
        })
        .buffer_unordered(CONCURRENT_READS)
        .collect()
        .await;
    for (arn, delay) in delays {
        facts.entry(arn).or_default().deregistration_delay_seconds = delay;
    }
    facts
}
