//! The record of one drain: returned to the caller and logged as one structured line.

use serde::Serialize;

use crate::event::Action;
use crate::registration::{Outcome, RegistrationOutcome};
use crate::settings::Discovery;

/// A target group that could not be searched for the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupProblem {
    pub target_group_arn: String,
    /// `not-found` (deleted: nothing to drain there) or `failed` (unknown: the drain is incomplete).
    pub outcome: GroupOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupOutcome {
    NotFound,
    Failed,
    /// Not searched before the invocation's deadline: the drain is incomplete, and the retried
    /// event searches it.
    NotReached,
}

/// A drained group whose deregistration delay outlasts the notice: its connections are still
/// open when the instance goes. Lowering the group's `deregistration_delay.timeout_seconds`
/// below the notice fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelayBeyondNotice {
    pub target_group_arn: String,
    pub deregistration_delay_seconds: u64,
    /// What was left of the two-minute notice when the drain ended (0 once it has run out).
    pub seconds_left: u64,
}

/// A drained group that a Kubernetes controller manages (tag `elbv2.k8s.aws/cluster`): it may
/// register the target again while its pod still runs, so a cluster agent such as
/// aws-node-termination-handler is needed there as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedGroup {
    pub target_group_arn: String,
    pub controller: &'static str,
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrainSummary {
    pub instance_id: String,
    pub action: Action,
    /// The configured mode.
    pub discovery: Discovery,
    /// What discovery resolved to (`tag`, `asg` or `scan`); absent when the instance was not
    /// found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_by: Option<Discovery>,
    /// The Auto Scaling group the instance was detached from (`DETACH_FROM_ASG`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detached_from: Option<String>,
    pub instance_found: bool,
    /// Already terminated when drained (a late retry): ip targets could not be told apart from
    /// another instance's and were left.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub addresses_released: bool,
    pub registrations: Vec<RegistrationOutcome>,
    /// Seconds from the event (EventBridge's `time`) to the end of this drain, its last
    /// deregistration included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_since_warning: Option<f64>,
    /// For a lifecycle hook: `completed`, `already-completed` (a repeated event), or
    /// `left-alone` (another owner's hook: nothing was called).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_problems: Vec<GroupProblem>,
    /// Drained groups whose deregistration delay outlasts an interruption notice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delay_beyond_notice: Vec<DelayBeyondNotice>,
    /// Drained groups a Kubernetes controller manages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managed_by: Vec<ManagedGroup>,
}

const LEFT_ALONE: &str = "left-alone";

impl DrainSummary {
    /// Nothing done yet.
    pub fn new(instance_id: &str, action: Action, discovery: Discovery) -> DrainSummary {
        DrainSummary {
            instance_id: instance_id.to_owned(),
            action,
            discovery,
            discovered_by: None,
            detached_from: None,
            instance_found: false,
            addresses_released: false,
            registrations: Vec::new(),
            seconds_since_warning: None,
            lifecycle: None,
            group_problems: Vec::new(),
            delay_beyond_notice: Vec::new(),
            managed_by: Vec::new(),
        }
    }

    /// A lifecycle action of a hook another tool owns: nothing drained, nothing completed.
    pub fn left_alone_for(request: &crate::event::DrainRequest, discovery: Discovery) -> DrainSummary {
        DrainSummary {
            lifecycle: Some(LEFT_ALONE.to_owned()),
            ..DrainSummary::new(&request.instance_id, request.action, discovery)
        }
    }

    /// Whether this is a lifecycle action left to its owner (not published: nothing happened).
    pub fn left_alone(&self) -> bool {
        self.lifecycle.as_deref() == Some(LEFT_ALONE)
    }

    /// In a stable order, whatever order the calls finished in.
    pub fn sorted(mut self) -> DrainSummary {
        self.registrations.sort_by(|a, b| {
            let (a, b) = (&a.registration, &b.registration);
            (&a.target_group_arn, &a.target_id, a.port).cmp(&(&b.target_group_arn, &b.target_id, b.port))
        });
        self.group_problems.sort_by(|a, b| a.target_group_arn.cmp(&b.target_group_arn));
        self.delay_beyond_notice.sort_by(|a, b| a.target_group_arn.cmp(&b.target_group_arn));
        self.managed_by.sort_by(|a, b| a.target_group_arn.cmp(&b.target_group_arn));
        self
    }

    /// Steps that failed and make the drain incomplete.
    pub fn failures(&self) -> usize {
        let registrations = self.registrations.iter().filter(|r| r.outcome == Outcome::Failed).count();
        let groups = self
            .group_problems
            .iter()
            .filter(|g| matches!(g.outcome, GroupOutcome::Failed | GroupOutcome::NotReached))
            .count();
        registrations + groups
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.registrations.iter().filter(|r| r.outcome == outcome).count()
    }

    /// The groups this drain deregistered the instance from.
    pub fn drained_groups(&self) -> std::collections::BTreeSet<&str> {
        self.registrations
            .iter()
            .filter(|r| r.outcome == Outcome::Deregistered)
            .map(|r| r.registration.target_group_arn.as_str())
            .collect()
    }
}
