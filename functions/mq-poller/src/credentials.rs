//! Broker credentials: from a Secrets Manager secret (`BROKER_SECRET_ID`, JSON with `username`
//! and `password`), read once per execution environment and reused; or, for local use, from
//! `BROKER_USERNAME` / `BROKER_PASSWORD`. Never printed.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use tokio::sync::OnceCell;

use crate::error::BrokerError;

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

/// Resolves the credentials on first use and keeps them for the execution environment's life.
pub struct CredentialsProvider {
    source: CredentialSource,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    cached: OnceCell<BrokerCredentials>,
}

impl CredentialsProvider {
    pub fn new(source: CredentialSource, secrets: Option<aws_sdk_secretsmanager::Client>) -> Self {
        CredentialsProvider { source, secrets, cached: OnceCell::new() }
    }

    pub async fn get(&self) -> Result<&BrokerCredentials, BrokerError> {
        self.cached.get_or_try_init(|| self.resolve()).await
    }

    async fn resolve(&self) -> Result<BrokerCredentials, BrokerError> {
        let secret_id = match &self.source {
            CredentialSource::Given(credentials) => return Ok(credentials.clone()),
            CredentialSource::Missing => {
                return Err(BrokerError::Credentials("set BROKER_SECRET_ID (or BROKER_USERNAME and BROKER_PASSWORD locally)".into()))
            }
            CredentialSource::Secret(id) => id,
        };
        let client = self.secrets.as_ref().ok_or_else(|| BrokerError::Credentials("no Secrets Manager client".into()))?;
        let output = client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| BrokerError::Credentials(format!("reading {secret_id}: {}", DisplayErrorContext(&e))))?;
        let text = output.secret_string().unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| BrokerError::Credentials(format!("{secret_id} is not JSON")))?;
        let field = |name: &str| {
            value.get(name).and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| {
                BrokerError::Credentials(format!("{secret_id} has no \"{name}\" string"))
            })
        };
        Ok(BrokerCredentials::new(field("username")?, field("password")?))
    }
}
