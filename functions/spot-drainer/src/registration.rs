//! The registration model: one registration of the instance in a target group, and what became of
//! it.

use serde::Serialize;

/// One registration of the instance: a target group, the target id (instance id or IP) and its port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    pub target_group_arn: String,
    pub target_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Deregistered,
    /// The target or its group was already gone: the drain's goal holds, so a retry succeeds.
    AlreadyGone,
    /// Left registered for now: a rebalance recommendation would have left its group with fewer
    /// healthy targets than `REBALANCE_KEEP_HEALTHY`. The interruption warning, if one comes,
    /// drains it.
    Deferred,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationOutcome {
    #[serde(flatten)]
    pub registration: Registration,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
