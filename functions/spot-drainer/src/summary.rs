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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainSummary {
    pub instance_id: String,
    pub action: Action,
    /// The configured mode.
    pub discovery: Discovery,
    /// What `auto` resolved to (`tag` or `scan`); absent when the instance was not found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_by: Option<Discovery>,
    pub instance_found: bool,
    pub registrations: Vec<RegistrationOutcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_problems: Vec<GroupProblem>,
}

impl DrainSummary {
    /// Steps that failed and make the drain incomplete.
    pub fn failures(&self) -> usize {
        let registrations = self.registrations.iter().filter(|r| r.outcome == Outcome::Failed).count();
        let groups = self.group_problems.iter().filter(|g| matches!(g.outcome, GroupOutcome::Failed | GroupOutcome::NotReached)).count();
        registrations + groups
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.registrations.iter().filter(|r| r.outcome == outcome).count()
    }
}
