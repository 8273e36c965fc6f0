//! What a failed step undoes (`ROLLBACK_ON_FAILURE`, on by default): a single user's servers
//! that took the pending password get the AWSCURRENT one back, so every reader of AWSCURRENT
//! logs in again; and a refusal no retry can pass clears AWSPENDING, so the next rotation can
//! start (Secrets Manager refuses to start one while AWSPENDING is on another version).

use aws_sdk_secretsmanager::Client;

use crate::clients::AwsClients;
use crate::engine::{self, DbError};
use crate::error::RotationError;
use crate::event::{RotationEvent, Step};
use crate::fleet::on_each_server;
use crate::secret::{Origin, Server};
use crate::settings::Settings;
use crate::versions::{read_doc, require_doc, sm_error, CURRENT, PENDING};

/// What a rollback did.
pub(crate) struct RolledBack {
    /// Servers that held the pending password and now hold the current one.
    pub put_back: usize,
    /// Servers that could not be checked or put back in time (`host:port`, or "the secret's
    /// host"): they may still hold the pending password.
    pub not_put_back: Vec<String>,
}

/// Puts the AWSCURRENT password back on every server where the pending password logs in. Which
/// servers those are is found by logging in, so servers changed by an earlier run that was cut
/// short are found too. A server that cannot be reached, or not before `stop_at`, is logged and
/// left: the retry's setSecret finds it.
pub(crate) async fn put_current_back(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    servers: Option<&[Server]>,
    stop_at: Option<tokio::time::Instant>,
) -> RolledBack {
    let results = on_each_server(event, servers, settings.host_concurrency, |event| async move {
        let put_back = put_back_on(&clients.secrets, settings, &event);
        match stop_at {
            None => put_back.await,
            // A server that hangs must not hold the answer past the step's time.
            Some(stop_at) => tokio::time::timeout_at(stop_at, put_back).await.unwrap_or_else(|_| {
                Err(RotationError::DeadlineExceeded {
                    step: event.step.name(),
                    secret_id: event.secret_id.clone(),
                    margin_ms: crate::error::DEADLINE_MARGIN.as_millis(),
                })
            }),
        }
    })
    .await;
    let mut rolled = RolledBack { put_back: 0, not_put_back: Vec::new() };
    for (server, result) in results {
        let host = server.as_ref().map_or_else(|| "the secret's host".to_owned(), Server::describe);
        match result {
            Ok(true) => {
                rolled.put_back += 1;
                tracing::info!(secret_id = %event.secret_id, server = %host, "put the AWSCURRENT password back");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(secret_id = %event.secret_id, server = %host, error_type = error.error_type(), error = %error, "could not put the AWSCURRENT password back; the retried setSecret finds this server");
                rolled.not_put_back.push(host);
            }
        }
    }
    rolled
}

/// On one server: `true` when it held the pending password and now holds the current one.
async fn put_back_on(client: &Client, settings: &Settings, event: &RotationEvent) -> Result<bool, RotationError> {
    let secret_id = &event.secret_id;
    let server = event.server.as_ref();
    let Some(pending) = read_doc(client, secret_id, PENDING, Some(&event.token), server).await? else {
        return Ok(false);
    };
    let current = require_doc(client, secret_id, CURRENT, None, server).await?;
    let pending = pending.connection(Origin { secret_id, stage: PENDING })?;
    let current = current.connection(Origin { secret_id, stage: CURRENT })?;
    // Single user only: the user, and the server, are the same in both versions; AWSCURRENT's
    // password goes to no server AWSCURRENT does not name.
    let same_server = pending.fields_that_differ(&current, true).is_empty();
    if !same_server || pending.username != current.username || pending.password == current.password {
        return Ok(false);
    }
    let fail = |source| RotationError::Database { step: event.step.name(), secret_id: secret_id.clone(), source };
    match engine::check_login(&pending, &settings.db).await {
        Ok(()) => {}
        Err(e) if e.is_auth_failure() => return Ok(false),
        Err(e) => return Err(fail(e)),
    }
    engine::set_own_password(&pending, &current.password, &settings.db).await.map_err(fail)?;
    Ok(true)
}

/// Whether `error`, from `step`, is one no retry of this rotation can pass: a refusal of the
/// secrets themselves, or a single user's testSecret whose servers answered and refused the
/// pending password that setSecret had set (it was changed behind the function's back).
/// Unreachable servers, timeouts and an alternating clone that setSecret could not finish
/// (locked, or short of a grant: fixed, then resumed) keep AWSPENDING.
pub(crate) fn no_retry_can_pass(step: Step, error: &RotationError, single_user: bool) -> bool {
    match error {
        RotationError::Refused { .. } | RotationError::MalformedSecret { .. } => true,
        RotationError::Database { source: DbError::PrivilegedUser { .. }, .. } => true,
        RotationError::Database { source: DbError::AuthFailed { .. }, .. } => single_user && step == Step::TestSecret,
        _ => false,
    }
}

/// Takes AWSPENDING off the rotation's version. Best-effort: the step's own error is the answer.
pub(crate) async fn clear_pending(client: &Client, event: &RotationEvent) {
    let cleared = client
        .update_secret_version_stage()
        .secret_id(&event.secret_id)
        .version_stage(PENDING)
        .remove_from_version_id(&event.token)
        .send()
        .await;
    match cleared {
        Ok(_) => {
            tracing::info!(secret_id = %event.secret_id, token = %event.token, "cleared AWSPENDING: no retry of this rotation can pass")
        }
        Err(e) => {
            let error = sm_error("UpdateSecretVersionStage", &event.secret_id, &e);
            tracing::error!(secret_id = %event.secret_id, error = %error, "could not clear AWSPENDING");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(source: DbError) -> RotationError {
        RotationError::Database { step: "testSecret", secret_id: "s".into(), source }
    }

    #[test]
    fn only_refusals_no_retry_can_pass_clear_pending() {
        let refused = RotationError::Refused { secret_id: "s".into(), reason: "r".into() };
        assert!(no_retry_can_pass(Step::SetSecret, &refused, false));
        assert!(no_retry_can_pass(Step::SetSecret, &database(DbError::PrivilegedUser { user: "u".into() }), true));
        let refused_login = database(DbError::AuthFailed { user: "u".into() });
        assert!(no_retry_can_pass(Step::TestSecret, &refused_login, true));
        assert!(!no_retry_can_pass(Step::TestSecret, &refused_login, false), "an alternating clone is resumed");
        assert!(!no_retry_can_pass(Step::SetSecret, &refused_login, true));
        for transient in [
            database(DbError::Unreachable { host: "h".into(), port: 1, message: "m".into() }),
            database(DbError::Timeout { host: "h".into(), port: 1, seconds: 5 }),
            database(DbError::PrivilegeMismatch { clone: "c".into(), original: "o".into(), difference: "d".into() }),
            RotationError::DeadlineExceeded { step: "setSecret", secret_id: "s".into(), margin_ms: 1 },
        ] {
            assert!(!no_retry_can_pass(Step::TestSecret, &transient, true), "{transient}");
        }
    }
}
