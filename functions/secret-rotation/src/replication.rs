//! Secrets replicated to other regions: `finishSecret` answers success only once every replica
//! holds the version just made current (`DescribeSecret`'s `ReplicationStatus` all `InSync`), so
//! a reader in a replica region never gets a password the database no longer takes. A replica
//! that failed answers `ReplicationFailed`; one still in progress when the invocation's time runs
//! out answers `ReplicationPending`, and the retried `finishSecret` (its token already current)
//! resumes the wait.

use std::time::Duration;

use aws_sdk_secretsmanager::types::StatusType;
use aws_sdk_secretsmanager::Client;
use tokio::time::Instant;

use crate::error::RotationError;
use crate::versions::describe;

/// How long a wait may last when the step has no deadline (a direct call, the tests).
const WAIT_WITHOUT_DEADLINE: Duration = Duration::from_secs(20);

/// Time kept for one more `DescribeSecret` and the answer: the wait gives up this long before
/// the step's stop time, so it answers `ReplicationPending`, never the step's `DeadlineExceeded`.
const CALL_BUDGET: Duration = Duration::from_secs(1);

/// Waits until every replica region of `secret_id` is in sync, polling every `poll`, giving up
/// before `stop_at`. Returns how long it waited (zero for a secret with no replicas).
pub async fn wait_for_replicas(
    client: &Client,
    secret_id: &str,
    poll: Duration,
    stop_at: Option<Instant>,
) -> Result<Duration, RotationError> {
    let started = Instant::now();
    let stop_at = stop_at.unwrap_or(started + WAIT_WITHOUT_DEADLINE);
    let give_up = stop_at.checked_sub(CALL_BUDGET).unwrap_or(started);
    let pending = |regions: String| RotationError::ReplicationPending { secret_id: secret_id.to_owned(), regions };
    loop {
        let described = match tokio::time::timeout_at(give_up + CALL_BUDGET / 2, describe(client, secret_id)).await {
            Ok(answer) => answer?,
            Err(_) => return Err(pending("(no answer from DescribeSecret in time)".into())),
        };
        let replicas = described.replication_status();
        if let Some(failed) = replicas.iter().find(|r| r.status() == Some(&StatusType::Failed)) {
            return Err(RotationError::ReplicationFailed {
                secret_id: secret_id.to_owned(),
                region: failed.region().unwrap_or("?").to_owned(),
                message: failed.status_message().unwrap_or_default().to_owned(),
            });
        }
        let pending_regions: Vec<&str> = replicas
            .iter()
            .filter(|r| r.status() != Some(&StatusType::InSync))
            .map(|r| r.region().unwrap_or("?"))
            .collect();
        if pending_regions.is_empty() {
            let waited = started.elapsed();
            if !replicas.is_empty() {
                crate::metrics::replication_metrics(waited).emit();
            }
            return Ok(waited);
        }
        if Instant::now() + poll >= give_up {
            return Err(pending(pending_regions.join(", ")));
        }
        tokio::time::sleep(poll).await;
    }
}
