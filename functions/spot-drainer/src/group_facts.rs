//! After the deregistrations: what each drained group does next. Its deregistration delay
//! (`DescribeTargetGroupAttributes`), to compare with the notice's time left, and whether a
//! Kubernetes controller manages it (`DescribeTags`, the AWS Load Balancer Controller's tag),
//! since that controller may register the target again. These inform the summary; they are read
//! from the describe budget, each call made once (no SDK retries), and the whole read bounded to
//! [`FACTS_TIME`] after the last deregistration and never past the drain's stop time: the
//! invocation's slot and the account's describe bucket are for the next drain. A group whose
//! facts could not be read is left out of them, never failed.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::Client as ElbClient;
use futures::{stream, StreamExt};
use tokio::time::Instant;

use crate::pacing::TokenBucket;
use crate::retry::one_attempt;

/// How long the facts may be read after the deregistrations.
pub const FACTS_TIME: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// Whether the group's tags were read (else `cluster` says nothing).
    pub tags_read: bool,
}

impl GroupFacts {
    /// Both facts were read: worth keeping.
    pub fn complete(&self) -> bool {
        self.deregistration_delay_seconds.is_some() && self.tags_read
    }
}

/// The facts of `arns`, each call taking a describe token, until `until`: what was read by then.
pub async fn read_group_facts(
    elb: &ElbClient,
    arns: &BTreeSet<String>,
    budget: &TokenBucket,
    until: Instant,
) -> BTreeMap<String, GroupFacts> {
    let facts = std::sync::Mutex::new(BTreeMap::<String, GroupFacts>::new());
    if tokio::time::timeout_at(until, read_into(elb, arns, budget, until, &facts)).await.is_err() {
        tracing::info!(groups = arns.len(), "the drained groups' facts were not all read in time");
    }
    facts.into_inner().unwrap_or_default()
}

async fn read_into(
    elb: &ElbClient,
    arns: &BTreeSet<String>,
    budget: &TokenBucket,
    until: Instant,
    facts: &std::sync::Mutex<BTreeMap<String, GroupFacts>>,
) {
    let stop_by = Some(until);
    let all: Vec<&String> = arns.iter().collect();
    for chunk in all.chunks(TAGS_PER_CALL) {
        if !budget.take_by(stop_by).await {
            break;
        }
        let request = elb.describe_tags().set_resource_arns(Some(chunk.iter().map(|a| a.to_string()).collect()));
        match request.customize().config_override(one_attempt()).send().await {
            Ok(output) => {
                let Ok(mut facts) = facts.lock() else { return };
                for description in output.tag_descriptions() {
                    let Some(arn) = description.resource_arn() else { continue };
                    let cluster = description
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(CLUSTER_TAG))
                        .and_then(|t| t.value().map(str::to_owned));
                    let entry = facts.entry(arn.to_owned()).or_default();
                    (entry.cluster, entry.tags_read) = (cluster, true);
                }
            }
            Err(error) => {
                tracing::warn!(error = %aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&error), "reading the drained groups' tags failed")
            }
        }
    }
    let mut delays = stream::iter(all)
        .map(|arn| async move {
            if !budget.take_by(stop_by).await {
                return (arn.clone(), None);
            }
            let read = elb
                .describe_target_group_attributes()
                .target_group_arn(arn)
                .customize()
                .config_override(one_attempt())
                .send()
                .await;
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
        .buffer_unordered(CONCURRENT_READS);
    // Kept as each answer comes, so what was read before the time ran out is not lost.
    while let Some((arn, delay)) = delays.next().await {
        if let Ok(mut facts) = facts.lock() {
            facts.entry(arn).or_default().deregistration_delay_seconds = delay;
        }
    }
}
