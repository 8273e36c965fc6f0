//! The drain: from drain requests to every registration of their instances removed. Several
//! instances at once (the warnings of one coalesced batch) share one search: each target group
//! is described once, and deregistered from in one call for all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex as StdMutex};

use futures::{future, stream, StreamExt};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::asg;
use crate::deregistration::deregister_group;
use crate::discovery::{keep_healthy_floor, registrations_in_group, target_group_arns_from_tag};
use crate::drainer::Drainer;
use crate::error::DrainError;
use crate::event::{Action, DrainRequest};
use crate::group_facts::{CONTROLLER, FACTS_TIME};
use crate::instance::{describe_instances, InstanceFacts};
use crate::pacing::ElbBudget;
use crate::registration::{Outcome, RegistrationOutcome};
use crate::retry::Retry;
use crate::settings::Discovery;
use crate::summary::{DelayBeyondNotice, DrainSummary, GroupOutcome, GroupProblem, ManagedGroup};

/// How long an interruption notice lasts, from EventBridge's `time`.
const NOTICE_MS: u64 = 120_000;

/// One instance while it is drained.
struct Draining {
    facts: InstanceFacts,
    summary: DrainSummary,
    /// Every request for it is a rebalance recommendation (no warning, no lifecycle action).
    rebalance_only: bool,
}

/// Drains every request's instance, the searches shared; one result per request, in order. A
/// request repeated for one instance (a rebalance recommendation, then the warning) shares its
/// drain.
pub async fn drain_requests(
    drainer: &Drainer<'_>,
    requests: &[DrainRequest],
    stop_by: Option<Instant>,
) -> Vec<Result<DrainSummary, DrainError>> {
    drain_requests_except(drainer, requests, &BTreeSet::new(), stop_by).await
}

/// As [`drain_requests`], leaving out the groups in `except` (those Auto Scaling drains itself
/// before a lifecycle hook's wait); with any, `auto` does not resolve to the Auto Scaling group.
pub async fn drain_requests_except(
    drainer: &Drainer<'_>,
    requests: &[DrainRequest],
    except: &BTreeSet<String>,
    stop_by: Option<Instant>,
) -> Vec<Result<DrainSummary, DrainError>> {
    let (aws, settings) = (drainer.aws, drainer.settings);
    let mut instance_ids: Vec<&str> = Vec::new();
    for request in requests {
        if !instance_ids.contains(&request.instance_id.as_str()) {
            instance_ids.push(&request.instance_id);
        }
    }
    let budget = ElbBudget::new(&settings.pacing, drainer.budget_table);
    let started = Instant::now();
    let began_ms = epoch_ms();
    let described = describe_instances(&aws.ec2, &instance_ids).await;

    // Each instance found: where to look. Failures and vanished instances are settled here.
    let mut settled: BTreeMap<&str, Result<DrainSummary, DrainError>> = BTreeMap::new();
    let mut draining: Vec<Draining> = Vec::new();
    for (id, facts) in instance_ids.iter().copied().zip(described) {
        let action = requests.iter().find(|r| r.instance_id == id).map(|r| r.action);
        let mut summary = DrainSummary::new(id, action.unwrap_or(Action::Terminate), settings.discovery);
        match facts {
            Err(error) => {
                settled.insert(id, Err(error));
            }
            Ok(None) => {
                tracing::info!(instance_id = %id, "instance no longer exists; nothing to drain");
                settled.insert(id, Ok(summary));
            }
            Ok(Some(facts)) => {
                summary.instance_found = true;
                summary.addresses_released = facts.addresses_released;
                let rebalance_only =
                    requests.iter().filter(|r| r.instance_id == id).all(|r| r.action == Action::Rebalance);
                draining.push(Draining { facts, summary, rebalance_only });
            }
        }
    }
    if settings.detach_from_asg {
        // Only for a notice the instance will act on: a recommendation may never be followed by
        // one (and detaching would drop it from the ASG's groups, past the rebalance floor), and
        // a lifecycle action is Auto Scaling's own termination.
        let interrupted = |id: &str| {
            requests.iter().any(|r| {
                r.instance_id == id && matches!(r.action, Action::Terminate | Action::Stop | Action::Hibernate)
            })
        };
        future::join_all(draining.iter_mut().filter(|d| interrupted(&d.facts.instance_id)).map(|d| async {
            if let Some(group) = asg::group_of(&d.facts) {
                if asg::detach(&aws.autoscaling, group, &d.facts.instance_id).await {
                    d.summary.detached_from = Some(group.to_owned());
                }
            }
        }))
        .await;
    }
    let search = Search { drainer, budget: &budget, started, stop_by, except, asg_groups: Default::default() };
    let discovered = future::join_all(draining.iter().map(|d| search.target_groups(&d.facts))).await;

    // Which instances each group is searched for.
    let mut interested: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut searching = Vec::new();
    for (mut d, found) in draining.into_iter().zip(discovered) {
        match found {
            Err(error) => {
                settled.insert(requests_id(requests, &d.facts.instance_id), Err(error));
            }
            Ok((discovered_by, groups)) => {
                d.summary.discovered_by = Some(discovered_by);
                for group in groups.into_iter().filter(|g| !except.contains(g)) {
                    let for_group = interested.entry(group).or_default();
                    if !for_group.contains(&searching.len()) {
                        for_group.push(searching.len());
                    }
                }
                searching.push(d);
            }
        }
    }
    let facts: Vec<&InstanceFacts> = searching.iter().map(|d| &d.facts).collect();
    let rebalancing: Vec<bool> = searching.iter().map(|d| d.rebalance_only).collect();
    let per_group = search.drain_groups(&interested, &facts, &rebalancing, stop_by).await;
    for (arn, result) in per_group {
        let for_group = interested.get(&arn).map(Vec::as_slice).unwrap_or_default();
        match result {
            Ok(outcomes) => {
                for outcome in outcomes {
                    let owner = for_group
                        .iter()
                        .copied()
                        .find(|i| searching[*i].facts.is_target(&outcome.registration.target_id));
                    if let Some(owner) = owner {
                        searching[owner].summary.registrations.push(outcome);
                    }
                }
            }
            Err(problem) => {
                for i in for_group {
                    searching[*i].summary.group_problems.push(problem.clone());
                }
            }
        }
    }
    // The drain's end: its last deregistration. The delays run from here.
    let drained_ms = epoch_ms();
    note_what_groups_do_next(drainer, &budget, requests, &mut searching, began_ms, drained_ms, stop_by).await;
    for d in searching {
        let id = requests_id(requests, &d.facts.instance_id);
        if d.summary.registrations.is_empty() && d.summary.group_problems.is_empty() {
            tracing::info!(instance_id = %id, "instance is in no target group searched");
        }
        settled.insert(id, Ok(d.summary.sorted()));
    }
    requests
        .iter()
        .map(|request| match settled.get(request.instance_id.as_str()) {
            Some(Ok(summary)) => {
                let seconds_since_warning =
                    request.warned_at_ms.map(|at| drained_ms.saturating_sub(at) as f64 / 1000.0);
                let mut summary = DrainSummary { action: request.action, seconds_since_warning, ..summary.clone() };
                if request.action == Action::Rebalance {
                    // A recommendation gives no notice to outlast (the warning's own result has it).
                    summary.delay_beyond_notice.clear();
                }
                finish(summary)
            }
            Some(Err(error)) => Err(error.clone()),
            None => Err(DrainError::Internal(format!("{} was not drained", request.instance_id))),
        })
        .collect()
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Names, in each summary, the drained groups whose deregistration delay outlasts the
/// instance's notice and those a Kubernetes controller manages (read once for all the drains).
async fn note_what_groups_do_next(
    drainer: &Drainer<'_>,
    budget: &ElbBudget,
    requests: &[DrainRequest],
    searching: &mut [Draining],
    began_ms: u64,
    drained_ms: u64,
    stop_by: Option<Instant>,
) {
    let drained: BTreeSet<String> =
        searching.iter().flat_map(|d| d.summary.drained_groups()).map(str::to_owned).collect();
    // A few seconds at most, and never past the stop time: answering comes first.
    let until = Instant::now() + FACTS_TIME;
    let until = stop_by.map_or(until, |stop_by| until.min(stop_by));
    if drained.is_empty() || Instant::now() >= until {
        return;
    }
    let facts = drainer.cache.group_facts(&drainer.aws.elb, &drained, &budget.describe, until).await;
    for d in searching.iter_mut() {
        let seconds_left = notice_left(requests, &d.facts.instance_id, began_ms, drained_ms);
        let groups: Vec<String> = d.summary.drained_groups().into_iter().map(str::to_owned).collect();
        for arn in groups {
            let Some(group) = facts.get(&arn) else { continue };
            if let (Some(left), Some(delay)) = (seconds_left, group.deregistration_delay_seconds) {
                if delay > left {
                    tracing::warn!(target_group_arn = %arn, delay, seconds_left = left, "the group's deregistration delay outlasts the notice");
                    d.summary.delay_beyond_notice.push(DelayBeyondNotice {
                        target_group_arn: arn.clone(),
                        deregistration_delay_seconds: delay,
                        seconds_left: left,
                    });
                }
            }
            if let Some(cluster) = &group.cluster {
                d.summary.managed_by.push(ManagedGroup {
                    target_group_arn: arn.clone(),
                    controller: CONTROLLER,
                    cluster: cluster.clone(),
                });
            }
        }
    }
}

/// Whole seconds left of the instance's interruption notice at `at_ms`: two minutes from the
/// earliest warning's `time` (the drain's start when a warning has none, or a `time` ahead of
/// this clock); `None` when no request for it is a notice (a recommendation, a lifecycle action).
fn notice_left(requests: &[DrainRequest], instance_id: &str, began_ms: u64, at_ms: u64) -> Option<u64> {
    let warned_ms = requests
        .iter()
        .filter(|r| r.instance_id == instance_id)
        .filter(|r| matches!(r.action, Action::Terminate | Action::Stop | Action::Hibernate))
        .map(|r| r.warned_at_ms.unwrap_or(began_ms).min(began_ms))
        .min()?;
    Some((warned_ms + NOTICE_MS).saturating_sub(at_ms) / 1000)
}

/// The request's own `&str` for an instance id (the map is keyed by the requests' strings).
fn requests_id<'r>(requests: &'r [DrainRequest], instance_id: &str) -> &'r str {
    requests.iter().map(|r| r.instance_id.as_str()).find(|id| *id == instance_id).unwrap_or_default()
}

/// One search of the groups, shared by every instance of the drain.
struct Search<'s> {
    drainer: &'s Drainer<'s>,
    budget: &'s ElbBudget,
    started: Instant,
    /// When the search stops, to leave time to answer.
    stop_by: Option<Instant>,
    /// Groups left out (those Auto Scaling drains itself before a lifecycle hook's wait).
    except: &'s BTreeSet<String>,
    /// Each Auto Scaling group's target groups, looked up once for all its instances: a reclaim
    /// of a hundred instances of one group is one `DescribeAutoScalingGroups`, not a hundred
    /// (which Auto Scaling would throttle, and a throttled lookup falls back to the scan).
    asg_groups: StdMutex<BTreeMap<String, AsgLookup>>,
}

/// One Auto Scaling group's lookup, shared by every instance of the group that waits on it.
type AsgLookup = Arc<OnceCell<Result<Vec<String>, DrainError>>>;

impl Search<'_> {
    async fn target_groups_of_asg(&self, group: &str) -> Result<Vec<String>, DrainError> {
        let cell = match self.asg_groups.lock() {
            Ok(mut known) => known.entry(group.to_owned()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        cell.get_or_init(|| asg::target_groups_of(&self.drainer.aws.autoscaling, group)).await.clone()
    }

    /// Each group is searched and, where an instance is registered, drained at once, not after
    /// the whole scan: the first targets leave within seconds even when there are hundreds of
    /// groups. `SCAN_CONCURRENCY` groups at a time, every call within the function's ELB budgets;
    /// all the instances' registrations in a group go in one `DeregisterTargets` call.
    async fn drain_groups(
        &self,
        interested: &BTreeMap<String, Vec<usize>>,
        instances: &[&InstanceFacts],
        rebalancing: &[bool],
        stop_by: Option<Instant>,
    ) -> Vec<(String, Result<Vec<RegistrationOutcome>, GroupProblem>)> {
        let (elb, budget) = (&self.drainer.aws.elb, self.budget);
        let keep = self.drainer.settings.rebalance_keep_healthy;
        stream::iter(interested)
            .map(|(arn, for_group)| async move {
                let late = stop_by.is_some_and(|stop_by| Instant::now() >= stop_by);
                if late || !budget.describe.take_by(stop_by).await {
                    let problem = GroupProblem {
                        target_group_arn: arn.clone(),
                        outcome: GroupOutcome::NotReached,
                        error: Some("not searched before the invocation's deadline".into()),
                    };
                    return (arn.clone(), Err(problem));
                }
                let of_group: Vec<&InstanceFacts> = for_group.iter().map(|i| instances[*i]).collect();
                let rebalancing = |target_id: &str| {
                    for_group.iter().any(|i| rebalancing[*i] && instances[*i].is_target(target_id))
                };
                let retry = Retry { budget: &budget.describe, stop_by };
                let result = match registrations_in_group(elb, arn, &of_group, retry).await {
                    Ok(targets) => {
                        let (remove, defer) = keep_healthy_floor(targets, rebalancing, keep);
                        if !defer.is_empty() {
                            tracing::info!(target_group_arn = %arn, deferred = defer.len(), keep, "rebalance recommendation: registrations kept so the group keeps its healthy targets");
                        }
                        let mut outcomes = match remove.is_empty() {
                            true => Vec::new(),
                            false => deregister_group(elb, arn, remove, &budget.deregister, stop_by).await,
                        };
                        outcomes.extend(defer.into_iter().map(|registration| RegistrationOutcome {
                            registration,
                            outcome: Outcome::Deferred,
                            error: None,
                        }));
                        Ok(outcomes)
                    }
                    Err(problem) => Err(problem),
                };
                (arn.clone(), result)
            })
            .buffer_unordered(self.drainer.settings.scan_concurrency.max(1))
            .collect()
            .await
    }

    /// The groups to look in for one instance, and which discovery chose them.
    async fn target_groups(&self, instance: &InstanceFacts) -> Result<(Discovery, Vec<String>), DrainError> {
        let (aws, settings) = (self.drainer.aws, self.drainer.settings);
        let tag = instance.tags.get(&settings.target_group_tag_key).filter(|value| !value.trim().is_empty());
        let scan = || async {
            let Some(vpc_id) = instance.vpc_id.as_deref() else {
                tracing::warn!(instance_id = %instance.instance_id, "instance has no VPC (EC2-Classic?); nothing to scan");
                return Ok((Discovery::Scan, Vec::new()));
            };
            let groups = self
                .drainer
                .cache
                .groups_in_vpc(&aws.elb, vpc_id, &self.budget.describe, self.started, self.stop_by)
                .await?;
            Ok((Discovery::Scan, groups))
        };
        match settings.discovery {
            Discovery::Tag => {
                let arns = tag.map(|value| target_group_arns_from_tag(value)).unwrap_or_default();
                if arns.is_empty() {
                    tracing::warn!(instance_id = %instance.instance_id, tag = %settings.target_group_tag_key, "instance has no target group tag; nothing to drain");
                }
                Ok((Discovery::Tag, arns))
            }
            Discovery::Scan => scan().await,
            Discovery::Asg => match asg::group_of(instance) {
                Some(group) => Ok((Discovery::Asg, self.target_groups_of_asg(group).await?)),
                None => {
                    tracing::warn!(instance_id = %instance.instance_id, "instance is in no Auto Scaling group; nothing to drain");
                    Ok((Discovery::Asg, Vec::new()))
                }
            },
            Discovery::Auto => {
                if let Some(value) = tag {
                    return Ok((Discovery::Tag, target_group_arns_from_tag(value)));
                }
                if let Some(group) = asg::group_of(instance).filter(|_| self.except.is_empty()) {
                    // An Auto Scaling group with groups attached names them; one without, or one
                    // that cannot be read, leaves the scan, which finds others' registrations too.
                    match self.target_groups_of_asg(group).await {
                        Ok(arns) if !arns.is_empty() => return Ok((Discovery::Asg, arns)),
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(instance_id = %instance.instance_id, %error, "falling back to the scan")
                        }
                    }
                }
                scan().await
            }
        }
    }
}

/// Logs the summary as one structured line and turns failures into an error.
pub(crate) fn finish(summary: DrainSummary) -> Result<DrainSummary, DrainError> {
    let line = serde_json::to_string(&summary).unwrap_or_default();
    if summary.failures() > 0 {
        tracing::error!(summary = %line, "drain incomplete");
        Err(DrainError::Incomplete(Box::new(summary)))
    } else {
        tracing::info!(summary = %line, "drain finished");
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(instance: &str, action: Action, warned_at_ms: Option<u64>) -> DrainRequest {
        DrainRequest { warned_at_ms, ..DrainRequest::notice(instance, action) }
    }

    #[test]
    fn the_notice_runs_two_minutes_from_the_earliest_warning_and_only_for_notices() {
        let began = 1_000_000;
        let at = began + 30_000;
        let requests = [warning("i-1", Action::Terminate, Some(began - 10_000))];
        assert_eq!(notice_left(&requests, "i-1", began, at), Some(80));
        // Without a time: from the drain's start. A time ahead of this clock: the same.
        assert_eq!(notice_left(&[warning("i-1", Action::Stop, None)], "i-1", began, at), Some(90));
        assert_eq!(notice_left(&[warning("i-1", Action::Hibernate, Some(began + 60_000))], "i-1", began, at), Some(90));
        // Run out: nothing left, not a negative.
        assert_eq!(notice_left(&[warning("i-1", Action::Terminate, Some(0))], "i-1", began, at), Some(0));
        // A recommendation and a lifecycle action have no notice; another instance's does not count.
        let others = [warning("i-1", Action::Rebalance, Some(began)), warning("i-1", Action::ScaleIn, Some(began))];
        assert_eq!(notice_left(&others, "i-1", began, at), None);
        assert_eq!(notice_left(&requests, "i-2", began, at), None);
        // The earliest warning counts.
        let twice =
            [warning("i-1", Action::Terminate, Some(began)), warning("i-1", Action::Terminate, Some(began - 60_000))];
        assert_eq!(notice_left(&twice, "i-1", began, at), Some(30));
    }
}
