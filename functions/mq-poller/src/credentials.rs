//! Broker credentials: from a Secrets Manager secret (`BROKER_SECRET_ID`, JSON with `username`
//! and `password`), kept for a while (`BROKER_SECRET_TTL_SECONDS`) and read again when the
//! broker refuses them, so a rotated broker password reaches warm execution environments; or,
//! for local use, from `BROKER_USERNAME` / `BROKER_PASSWORD`. Never printed. With the
//! secrets-cache layer attached, the secret is read through the extension (prefetched at init),
//! falling back to the SDK; after a refused login it is read straight from Secrets Manager, since
//! the extension may still hold the refused version, and the extension's answers are ignored until
//! they carry the `VersionId` read directly (it keeps serving the old version up to its TTL).

use std::time::Duration;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::BrokerError;
use crate::secrets_extension::SecretsExtension;

#[derive(Clone, PartialEq, Eq)]
pub struct BrokerCredentials {
    pub username: String,
    password: String,
}

impl std::fmt::Debug for BrokerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

impl BrokerCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        BrokerCredentials { username: username.into(), password: password.into() }
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

#[derive(Debug, Clone)]
pub enum CredentialSource {
    Secret(String),
    Given(BrokerCredentials),
    Missing,
}

impl CredentialSource {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> CredentialSource {
        if let Some(id) = lookup("BROKER_SECRET_ID").filter(|s| !s.trim().is_empty()) {
            return CredentialSource::Secret(id);
        }
        match (lookup("BROKER_USERNAME"), lookup("BROKER_PASSWORD")) {
            (Some(user), Some(password)) => CredentialSource::Given(BrokerCredentials::new(user, password)),
            _ => CredentialSource::Missing,
        }
    }
}

/// How long credentials read from the secret are used before they are read again.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

/// Resolves the credentials on first use and keeps them for `ttl`.
pub struct CredentialsProvider {
    source: CredentialSource,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    ttl: Duration,
    cached: Mutex<Option<(BrokerCredentials, Instant)>>,
    extension: Option<SecretsExtension>,
    /// The `VersionId` read straight from Secrets Manager after a refused login, until the
    /// extension serves it too: an answer of another version is the one refused, or older.
    awaited: std::sync::Mutex<Option<String>>,
}

impl CredentialsProvider {
    pub fn new(source: CredentialSource, secrets: Option<aws_sdk_secretsmanager::Client>) -> Self {
        CredentialsProvider::with_ttl(source, secrets, DEFAULT_SECRET_TTL)
    }

    pub fn with_ttl(source: CredentialSource, secrets: Option<aws_sdk_secretsmanager::Client>, ttl: Duration) -> Self {
        CredentialsProvider {
            source,
            secrets,
            ttl,
            cached: Mutex::new(None),
            extension: None,
            awaited: std::sync::Mutex::new(None),
        }
    }

    /// Reads the secret through the secrets-cache extension first (see the module's note).
    pub fn through_extension(mut self, extension: Option<SecretsExtension>) -> Self {
        self.extension = extension;
        self
    }

    /// The credentials, read again once they are older than the TTL.
    pub async fn get(&self) -> Result<BrokerCredentials, BrokerError> {
        let mut cached = self.cached.lock().await;
        if let Some((credentials, read_at)) = cached.as_ref() {
            if read_at.elapsed() < self.ttl {
                return Ok(credentials.clone());
            }
        }
        let fresh = self.resolve(true).await?;
        *cached = Some((fresh.clone(), Instant::now()));
        Ok(fresh)
    }

    /// After the broker refused `refused`: the secret read again, when it now holds other
    /// credentials (rotated since they were read); `None` when there is nothing newer to try.
    pub async fn refresh_after_refusal(
        &self,
        refused: &BrokerCredentials,
    ) -> Result<Option<BrokerCredentials>, BrokerError> {
        if !matches!(self.source, CredentialSource::Secret(_)) {
            return Ok(None);
        }
        let fresh = self.resolve(false).await?;
        *self.cached.lock().await = Some((fresh.clone(), Instant::now()));
        Ok((fresh != *refused).then_some(fresh))
    }

    async fn resolve(&self, via_extension: bool) -> Result<BrokerCredentials, BrokerError> {
        let secret_id = match &self.source {
            CredentialSource::Given(credentials) => return Ok(credentials.clone()),
            CredentialSource::Missing => {
                return Err(BrokerError::Credentials(
                    "set BROKER_SECRET_ID (or BROKER_USERNAME and BROKER_PASSWORD locally)".into(),
                ))
            }
            CredentialSource::Secret(id) => id,
        };
        let awaited = self.awaited.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(extension) = self.extension.as_ref().filter(|_| via_extension) {
            match extension.secret(secret_id).await {
                Ok(answer) if awaited.is_none() || answer.version == awaited => {
                    self.await_version(None);
                    return parse(secret_id, &answer.text);
                }
                Ok(_) => tracing::info!(
                    "secrets-cache still serves a version of {secret_id} older than the one read after a refused login; \
                     reading it directly"
                ),
                Err(reason) => {
                    tracing::warn!("secrets-cache could not give {secret_id} ({reason}); reading it directly")
                }
            }
        }
        let client =
            self.secrets.as_ref().ok_or_else(|| BrokerError::Credentials("no Secrets Manager client".into()))?;
        let output = client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| BrokerError::Credentials(format!("reading {secret_id}: {}", DisplayErrorContext(&e))))?;
        if !via_extension || awaited.is_some() {
            // After a refusal (or while still waiting on the extension): the version to wait for.
            self.await_version(output.version_id().map(str::to_owned));
        }
        parse(secret_id, output.secret_string().unwrap_or_default())
    }

    fn await_version(&self, version: Option<String>) {
        *self.awaited.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = version;
    }
}

/// The `username` and `password` of the secret's JSON.
fn parse(secret_id: &str, text: &str) -> Result<BrokerCredentials, BrokerError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| BrokerError::Credentials(format!("{secret_id} is not JSON")))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| BrokerError::Credentials(format!("{secret_id} has no \"{name}\" string")))
    };
    Ok(BrokerCredentials::new(field("username")?, field("password")?))
}
