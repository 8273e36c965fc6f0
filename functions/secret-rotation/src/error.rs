//! Rotation errors. None carries a password or a secret string: messages name the secret,
//! the step, the user and the kind of failure only.

use std::time::Duration;

use crate::engine::DbError;

/// How long before Lambda's deadline a step gives up: room to answer the typed error, and emit
/// its metric, before Lambda would end the invocation as "Task timed out" with no errorType.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("malformed rotation event: {0}")]
    MalformedEvent(String),
    #[error("unknown rotation step {0:?}; expected createSecret, setSecret, testSecret or finishSecret")]
    UnknownStep(String),
    #[error("secret {0} does not have rotation enabled")]
    RotationNotEnabled(String),
    #[error("secret version {token} has no stage for rotation of {secret_id}")]
    TokenNotAVersion { secret_id: String, token: String },
    #[error("secret version {token} of {secret_id} is not AWSPENDING")]
    TokenNotPending { secret_id: String, token: String },
    #[error("secret {secret_id} ({stage}) is not usable: {reason}")]
    MalformedSecret { secret_id: String, stage: String, reason: String },
    /// The secrets do not describe one safe alternating rotation; nothing was changed.
    #[error("rotation of {secret_id} refused: {reason}; nothing was changed")]
    Refused { secret_id: String, reason: String },
    /// finishSecret found the pending version unable to serve; AWSCURRENT did not move.
    #[error("finishSecret for {secret_id}: the pending version is not ready ({reason}); AWSCURRENT was not moved")]
    PendingNotReady { secret_id: String, reason: String },
    #[error("Secrets Manager {operation} failed for {secret_id}: {message}")]
    SecretsManager { operation: &'static str, secret_id: String, message: String },
    /// Looking up the database an RDS-managed master secret belongs to failed.
    #[error("RDS {operation} failed for {resource}: {message}")]
    Rds { operation: &'static str, resource: String, message: String },
    /// The step ran out of the invocation's time (less a margin) before it finished. Every step
    /// is safe to run again, and an alternating clone cut short cannot log in.
    #[error("{step} for {secret_id} did not finish within the invocation's time (it stopped {margin_ms} ms before Lambda's deadline); running the step again resumes it")]
    DeadlineExceeded { step: &'static str, secret_id: String, margin_ms: u128 },
    /// A replica region of the secret failed to take the new version (finishSecret).
    #[error("finishSecret for {secret_id}: the replica in {region} failed ({message}); AWSCURRENT moved in the primary region")]
    ReplicationFailed { secret_id: String, region: String, message: String },
    /// Replica regions had not taken the new version when the invocation's time ran out; the
    /// retried finishSecret waits on.
    #[error("finishSecret for {secret_id}: the replicas in {regions} are not in sync yet; the retry waits on")]
    ReplicationPending { secret_id: String, regions: String },
    #[error("{step} for {secret_id}: {source}")]
    Database { step: &'static str, secret_id: String, source: DbError },
}

impl RotationError {
    /// The `errorType` Lambda reports: one stable name per kind, for alarms, retries and catches.
    pub fn error_type(&self) -> &'static str {
        match self {
            RotationError::MalformedEvent(_) => "MalformedEvent",
            RotationError::UnknownStep(_) => "UnknownStep",
            RotationError::RotationNotEnabled(_) => "RotationNotEnabled",
            RotationError::TokenNotAVersion { .. } => "TokenNotAVersion",
            RotationError::TokenNotPending { .. } => "TokenNotPending",
            RotationError::MalformedSecret { .. } => "MalformedSecret",
            RotationError::Refused { .. } => "RotationRefused",
            RotationError::SecretsManager { .. } => "SecretsManagerFailed",
            RotationError::Rds { .. } => "RdsFailed",
            RotationError::PendingNotReady { .. } => "PendingNotReady",
            RotationError::DeadlineExceeded { .. } => "DeadlineExceeded",
            RotationError::ReplicationFailed { .. } => "ReplicationFailed",
            RotationError::ReplicationPending { .. } => "ReplicationPending",
            RotationError::Database { source, .. } => source.error_type(),
        }
    }
}

impl From<RotationError> for lambda_runtime::Diagnostic {
    fn from(error: RotationError) -> Self {
        lambda_runtime::Diagnostic { error_type: error.error_type().to_owned(), error_message: error.to_string() }
    }
}
