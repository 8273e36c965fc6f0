//! The VPC's target groups, kept across warm invocations for a short while
//! (`TARGET_GROUP_CACHE_SECONDS`): listing hundreds of groups costs describe calls from the
//! account's shared ELB budget, and a burst of interruptions asks for the same list again and
//! again. A group created after the list was taken is missed until it expires, hence short.
//! The drained groups' facts (deregistration delay, managing controller) are kept the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client as ElbClient;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::discovery::target_groups_in_vpc;
use crate::error::DrainError;
use crate::group_facts::{read_group_facts, GroupFacts};
use crate::pacing::TokenBucket;

#[derive(Debug, Default)]
pub struct TargetGroupCache {
    ttl: Duration,
    by_vpc: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    facts: Mutex<HashMap<String, (Instant, GroupFacts)>>,
}

impl TargetGroupCache {
    /// A cache keeping lists for `ttl` (zero: every drain lists again).
    pub fn new(ttl: Duration) -> TargetGroupCache {
        TargetGroupCache { ttl, by_vpc: Mutex::new(HashMap::new()), facts: Mutex::new(HashMap::new()) }
    }

    /// The instance- and ip-type groups of `vpc_id`, listed at most once per `ttl`; a list
    /// taken since `fresh_since` (by this drain) is used whatever the `ttl`.
    pub async fn groups_in_vpc(
        &self,
        elb: &ElbClient,
        vpc_id: &str,
        budget: &TokenBucket,
        fresh_since: Instant,
        stop_by: Option<Instant>,
    ) -> Result<Vec<String>, DrainError> {
        // Held while listing: instances of one VPC drained together wait for one list.
        let mut by_vpc = self.by_vpc.lock().await;
        if let Some((taken, groups)) = by_vpc.get(vpc_id) {
            if taken.elapsed() < self.ttl || *taken >= fresh_since {
                return Ok(groups.clone());
            }
        }
        let groups = target_groups_in_vpc(elb, vpc_id, budget, stop_by).await?;
        by_vpc.insert(vpc_id.to_owned(), (Instant::now(), groups.clone()));
        Ok(groups)
    }

    /// The facts of the drained groups `arns`, each read at most once per `ttl`, until `until`;
    /// a group not wholly read (no token in time, an error) is read again next time. The lock
    /// is not held while reading.
    pub async fn group_facts(
        &self,
        elb: &ElbClient,
        arns: &BTreeSet<String>,
        budget: &TokenBucket,
        until: Instant,
    ) -> BTreeMap<String, GroupFacts> {
        let mut facts = BTreeMap::new();
        let mut missing = BTreeSet::new();
        {
            let kept = self.facts.lock().await;
            for arn in arns {
                match kept.get(arn) {
                    Some((taken, known)) if taken.elapsed() < self.ttl => {
                        facts.insert(arn.clone(), known.clone());
                    }
                    _ => {
                        missing.insert(arn.clone());
                    }
                }
            }
        }
        let read = read_group_facts(elb, &missing, budget, until).await;
        let mut kept = self.facts.lock().await;
        for (arn, read) in read {
            if read.complete() {
                kept.insert(arn.clone(), (Instant::now(), read.clone()));
            }
            facts.insert(arn, read);
        }
        facts
    }
}
