//! The version checks AWS documents for every step, and the Secrets Manager calls around them.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_secretsmanager::Client;

use crate::error::RotationError;
use crate::event::RotationEvent;
use crate::secret::{Origin, SecretDoc, Server};

pub const CURRENT: &str = "AWSCURRENT";
pub const PENDING: &str = "AWSPENDING";
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// What the checks found: whether the step has work to do, and which version is current now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The token's version already holds AWSCURRENT: this rotation is done.
    pub token_is_current: bool,
    pub current_version: Option<String>,
}

/// `DescribeSecret`, then: rotation enabled, the token a version of the secret, and that version
/// AWSCURRENT (nothing to do) or AWSPENDING (go on); anything else is an error.
pub async fn check_versions(client: &Client, event: &RotationEvent) -> Result<Versions, RotationError> {
    let secret_id = &event.secret_id;
    let described = describe(client, secret_id).await?;
    if described.rotation_enabled() != Some(true) {
        return Err(RotationError::RotationNotEnabled(secret_id.clone()));
    }
    let stages = described.version_ids_to_stages();
    let current_version =
        stages.into_iter().flatten().find(|(_, labels)| labels.iter().any(|l| l == CURRENT)).map(|(id, _)| id.clone());
    let Some(token_stages) = stages.and_then(|s| s.get(&event.token)) else {
        return Err(RotationError::TokenNotAVersion { secret_id: secret_id.clone(), token: event.token.clone() });
    };
    if token_stages.iter().any(|l| l == CURRENT) {
        return Ok(Versions { token_is_current: true, current_version });
    }
    if !token_stages.iter().any(|l| l == PENDING) {
        return Err(RotationError::TokenNotPending { secret_id: secret_id.clone(), token: event.token.clone() });
    }
    Ok(Versions { token_is_current: false, current_version })
}

/// `DescribeSecret`, its failure named.
pub async fn describe(
    client: &Client,
    secret_id: &str,
) -> Result<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput, RotationError> {
    client.describe_secret().secret_id(secret_id).send().await.map_err(|e| sm_error("DescribeSecret", secret_id, &e))
}

/// The secret string of a version, looked up by stage (and version id when given). Always with
/// a stage: without one, a stale version may come back. `None` when that version has no value.
pub async fn secret_string(
    client: &Client,
    secret_id: &str,
    stage: &str,
    version_id: Option<&str>,
) -> Result<Option<String>, RotationError> {
    let request = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage(stage)
        .set_version_id(version_id.map(str::to_owned));
    match request.send().await {
        Ok(output) => Ok(output.secret_string().map(str::to_owned)),
        Err(err) if err.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(err) => Err(sm_error("GetSecretValue", secret_id, &err)),
    }
}

/// An SDK error as a rotation error. The SDK's messages carry no secret values.
pub fn sm_error<E: std::error::Error + 'static>(operation: &'static str, secret_id: &str, err: &E) -> RotationError {
    RotationError::SecretsManager {
        operation,
        secret_id: secret_id.to_owned(),
        message: DisplayErrorContext(err).to_string(),
    }
}

/// A version's value as a secret document, seen on `server` when the step works on one server
/// of a `hosts` secret; `None` when the version has no value.
pub async fn read_doc(
    client: &Client,
    secret_id: &str,
    stage: &'static str,
    version: Option<&str>,
    server: Option<&Server>,
) -> Result<Option<SecretDoc>, RotationError> {
    let origin = Origin { secret_id, stage };
    let Some(text) = secret_string(client, secret_id, stage, version).await? else { return Ok(None) };
    let doc = SecretDoc::parse(&text, origin)?;
    match server {
        Some(server) => doc.on_server(server, origin).map(Some),
        None => Ok(Some(doc)),
    }
}

/// As [`read_doc`], for a version that must have a value.
pub async fn require_doc(
    client: &Client,
    secret_id: &str,
    stage: &'static str,
    version: Option<&str>,
    server: Option<&Server>,
) -> Result<SecretDoc, RotationError> {
    read_doc(client, secret_id, stage, version, server).await?.ok_or_else(|| RotationError::MalformedSecret {
        secret_id: secret_id.to_owned(),
        stage: stage.to_owned(),
        reason: "the version has no secret string".into(),
    })
}
