//! What one step tells CloudWatch (EMF, see `shared::metrics`).

use std::time::Duration;

use shared::metrics::{Metrics, Unit};

use crate::engine::EngineKind;
use crate::event::Step;

/// A step that succeeded or failed, by engine (the step is a property of the line). The engine is the secret's, where the
/// step read it (finishSecret reads no secret: `none`; a secret whose engine cannot be read:
/// `unknown`).
pub fn step_metrics(step: Step, engine: Option<EngineKind>, succeeded: bool) -> Metrics {
    let engine = match (step, engine) {
        (_, Some(kind)) => kind.name(),
        (Step::FinishSecret, None) => "none",
        (_, None) => "unknown",
    };
    Metrics::for_this_function()
        .dimension("Engine", engine)
        .property("Step", step.name())
        .count("StepsSucceeded", u64::from(succeeded))
        .count("StepsFailed", u64::from(!succeeded))
}

/// How long finishSecret waited for the secret's replica regions to take the new version.
pub fn replication_metrics(waited: Duration) -> Metrics {
    Metrics::for_this_function().duration("ReplicationWaitMs", Unit::Milliseconds, waited)
}

/// How long a single user's readers held a password the database no longer took, and where its
/// start came from (`Source`).
pub fn downtime_metrics(downtime: Duration, source: &'static str) -> Metrics {
    Metrics::for_this_function().dimension("Source", source).duration(
        "PasswordDowntimeMs",
        Unit::Milliseconds,
        downtime,
    )
}

/// How many servers a setSecret changed (or found changed): one for a secret with one `host`.
pub fn hosts_metrics(servers: usize) -> Metrics {
    Metrics::for_this_function().count("HostsRotated", u64::try_from(servers).unwrap_or(u64::MAX))
}

/// How many servers a failed step put back on the AWSCURRENT password.
pub fn rollback_metrics(servers: usize) -> Metrics {
    Metrics::for_this_function().count("ServersRolledBack", u64::try_from(servers).unwrap_or(u64::MAX))
}
