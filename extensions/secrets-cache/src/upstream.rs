//! Secrets Manager and Parameter Store: the fetches, the cheap "did it move?" check a refresh
//! makes first (`DescribeSecret`), the answers shaped as AWS's extension shapes them, and what
//! went wrong, in kinds that decide both the HTTP status and whether a stale entry may be served.

use std::future::Future;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::key::{Key, Version};

/// What went wrong, without a value in it (a message names the kind and the service's code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found ({0})")]
    NotFound(String),
    /// Access denied, or a KMS error: the role or the key, not the network.
    #[error("refused upstream ({0})")]
    Refused(String),
    /// Throttling, a 5xx, a connection that failed: worth serving a stale entry for.
    #[error("upstream unavailable ({0})")]
    Unavailable(String),
    #[error("upstream timed out")]
    Timeout,
}

impl Failure {
    /// Whether the entry survives it (served stale within the bound) rather than being dropped.
    pub fn transient(&self) -> bool {
        matches!(self, Failure::Unavailable(_) | Failure::Timeout)
    }

    pub fn status(&self) -> u16 {
        match self {
            Failure::BadRequest(_) => 400,
            Failure::NotFound(_) => 404,
            Failure::Refused(_) | Failure::Unavailable(_) => 502,
            Failure::Timeout => 504,
        }
    }

    /// The kind named in the error body.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) => "BadRequest",
            Failure::NotFound(_) => "NotFound",
            Failure::Refused(_) => "UpstreamRefused",
            Failure::Unavailable(_) => "UpstreamUnavailable",
            Failure::Timeout => "UpstreamTimeout",
        }
    }
}

/// One fetched answer: the JSON body as served, and the version it is.
#[derive(Clone, PartialEq)]
pub struct Fetched {
    pub body: Bytes,
    pub version: Option<String>,
}

/// The body holds the value: only its size is shown, so no `{:?}` can print a secret.
impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("body", &format_args!("<{} bytes redacted>", self.body.len()))
            .field("version", &self.version)
            .finish()
    }
}

/// One secret of a `BatchGetSecretValue` answer: its name (to match the names asked for) and its
/// answer. Secrets the call could not read are left out: each is then fetched alone,
/// which gives its reader the exact error.
#[derive(Debug, Clone)]
pub struct BatchFound {
    pub name: Option<String>,
    pub fetched: Fetched,
}

/// Where entries come from (AWS here; a fake in the cache's tests).
pub trait Source: Send + Sync + 'static {
    fn fetch(&self, key: &Key) -> impl Future<Output = Result<Fetched, Failure>> + Send;
    /// The `AWSCURRENT` values of up to 20 secrets in one call (`BatchGetSecretValue`). An `Err`
    /// when the call itself failed (a role without the action, say): each is then fetched alone.
    fn fetch_current_batch(&self, ids: &[String]) -> impl Future<Output = Result<Vec<BatchFound>, Failure>> + Send {
        let _ = ids;
        async { Err(Failure::Unavailable("no batch reads here".into())) }
    }
    /// The version now under the key's stage, when that can be known without fetching the value
    /// (a secret's stage, through `DescribeSecret`); `None` means "fetch to know".
    fn current_version(&self, key: &Key) -> impl Future<Output = Result<Option<String>, Failure>> + Send;
}

pub struct Aws {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub parameters: aws_sdk_ssm::Client,
}

impl Source for Aws {
    async fn fetch(&self, key: &Key) -> Result<Fetched, Failure> {
        match key {
            Key::Secret { id, at } => {
                let request = self.secrets.get_secret_value().secret_id(id);
                let request = match at {
                    Version::Stage(stage) => request.version_stage(stage),
                    Version::Id(version) => request.version_id(version),
                    Version::IdAtStage { id, stage } => request.version_id(id).version_stage(stage),
                };
                let out = request.send().await.map_err(|e| classify(&e))?;
                Ok(secret_answer(&out))
            }
            Key::Parameter { name, at, decrypt } => {
                let out = self
                    .parameters
                    .get_parameter()
                    .name(Key::parameter_name(name, at))
                    .with_decryption(*decrypt)
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                let parameter = out.parameter().ok_or_else(|| Failure::Unavailable("no Parameter".into()))?;
                Ok(parameter_answer(parameter))
            }
        }
    }

    async fn fetch_current_batch(&self, ids: &[String]) -> Result<Vec<BatchFound>, Failure> {
        let mut found = Vec::new();
        let mut next_token: Option<String> = None;
        // Each page answers one id at least: more pages than ids is a service gone wrong, and the
        // prefetch holds readers meanwhile.
        for _ in 0..ids.len().max(1) {
            let out = self
                .secrets
                .batch_get_secret_value()
                .set_secret_id_list(Some(ids.to_vec()))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            for entry in out.secret_values() {
                let fields = SecretFields {
                    arn: entry.arn(),
                    name: entry.name(),
                    version_id: entry.version_id(),
                    stages: entry.version_stages(),
                    created: entry.created_date(),
                    string: entry.secret_string(),
                    binary: entry.secret_binary().map(|b| b.as_ref()),
                };
                found.push(BatchFound { name: entry.name().map(str::to_owned), fetched: fields.answer() });
            }
            let answered = out.secret_values().len() + out.errors().len();
            match out.next_token() {
                Some(token) if !token.is_empty() && answered > 0 => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn current_version(&self, key: &Key) -> Result<Option<String>, Failure> {
        let Key::Secret { id, at: Version::Stage(stage) } = key else { return Ok(None) };
        let out = self.secrets.describe_secret().secret_id(id).send().await.map_err(|e| classify(&e))?;
        // Scheduled for deletion: DescribeSecret still answers through the recovery window, but
        // the secret is gone for its readers (GetSecretValue refuses it).
        if out.deleted_date().is_some() {
            return Err(Failure::NotFound("scheduled for deletion".into()));
        }
        let under_stage = out.version_ids_to_stages().and_then(|versions| {
            versions.iter().find(|(_, stages)| stages.iter().any(|s| s == stage)).map(|(version, _)| version.clone())
        });
        Ok(under_stage)
    }
}

/// A secret's value and what describes it, from `GetSecretValue` or one entry of
/// `BatchGetSecretValue` (the same fields).
struct SecretFields<'a> {
    arn: Option<&'a str>,
    name: Option<&'a str>,
    version_id: Option<&'a str>,
    stages: &'a [String],
    created: Option<&'a DateTime>,
    string: Option<&'a str>,
    binary: Option<&'a [u8]>,
}

impl SecretFields<'_> {
    /// The answer as AWS's extension returns it (`GetSecretValue`'s shape).
    fn answer(&self) -> Fetched {
        use base64::Engine;
        let mut body = json!({
            "ARN": self.arn,
            "Name": self.name,
            "VersionId": self.version_id,
            "VersionStages": self.stages,
            "CreatedDate": self.created.and_then(date),
            "ResultMetadata": {},
        });
        if let Some(text) = self.string {
            body["SecretString"] = Value::String(text.to_owned());
        }
        if let Some(binary) = self.binary {
            body["SecretBinary"] = Value::String(base64::engine::general_purpose::STANDARD.encode(binary));
        }
        Fetched { body: Bytes::from(body.to_string()), version: self.version_id.map(str::to_owned) }
    }
}

fn secret_answer(out: &aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput) -> Fetched {
    let fields = SecretFields {
        arn: out.arn(),
        name: out.name(),
        version_id: out.version_id(),
        stages: out.version_stages(),
        created: out.created_date(),
        string: out.secret_string(),
        binary: out.secret_binary().map(|b| b.as_ref()),
    };
    fields.answer()
}

/// `GetParameter`'s answer, as AWS's extension returns it.
fn parameter_answer(p: &aws_sdk_ssm::types::Parameter) -> Fetched {
    let body = json!({
        "Parameter": {
            "ARN": p.arn(),
            "DataType": p.data_type(),
            "LastModifiedDate": p.last_modified_date().and_then(date),
            "Name": p.name(),
            "Selector": p.selector(),
            "SourceResult": p.source_result(),
            "Type": p.r#type().map(|t| t.as_str()),
            "Value": p.value(),
            "Version": p.version(),
        },
        "ResultMetadata": {},
    });
    Fetched { body: Bytes::from(body.to_string()), version: Some(p.version().to_string()) }
}

fn date(at: &DateTime) -> Option<String> {
    at.fmt(Format::DateTime).ok()
}

/// The kind of an SDK error: from the service's error code when it answered, else from how the
/// call failed. Never the message (a service may quote the request).
fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Failure {
    match error {
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Unavailable("no answer".into()),
        SdkError::ConstructionFailure(_) => Failure::BadRequest("the request could not be made".into()),
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => by_code(code),
            // No code the SDK could read: the HTTP status says what kind it is.
            None => by_status(service.raw().status().as_u16()),
        },
        _ => Failure::Unavailable("unknown".into()),
    }
}

fn by_status(status: u16) -> Failure {
    let named = format!("HTTP {status}");
    match status {
        401 | 403 => Failure::Refused(named),
        404 => Failure::NotFound(named),
        400 => Failure::BadRequest(named),
        _ => Failure::Unavailable(named),
    }
}

fn by_code(code: &str) -> Failure {
    let named = || code.to_owned();
    match code {
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => Failure::NotFound(named()),
        "AccessDeniedException" | "AccessDenied" | "DecryptionFailure" | "UnrecognizedClientException" => {
            Failure::Refused(named())
        }
        code if code.starts_with("KMS") || code.starts_with("Kms") || code.starts_with("InvalidKeyId") => {
            Failure::Refused(named())
        }
        "InvalidParameterException"
        | "InvalidRequestException"
        | "ValidationException"
        | "InvalidKeyId"
        | "ParameterVersionLabelLimitExceeded" => Failure::BadRequest(named()),
        // Throttling, InternalServiceError, InternalServerError, ServiceUnavailable and anything new.
        _ => Failure::Unavailable(named()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetched_answer_never_shows_its_value() {
        let fetched = Fetched { body: Bytes::from_static(b"{\"SecretString\":\"canary-s3cret\"}"), version: None };
        let shown = format!("{fetched:?} {fetched:#?}");
        assert!(!shown.contains("canary-s3cret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn codes_decide_whether_a_stale_entry_may_be_served() {
        assert_eq!(by_code("ResourceNotFoundException").status(), 404);
        assert!(!by_code("AccessDeniedException").transient());
        assert!(!by_code("KMSAccessDeniedException").transient());
        assert!(!by_code("DecryptionFailure").transient());
        assert!(by_code("ThrottlingException").transient());
        assert!(by_code("InternalServiceError").transient());
        assert_eq!(by_code("InvalidRequestException").status(), 400);
        assert_eq!(Failure::Timeout.status(), 504);
        assert!(!by_status(403).transient(), "a refusal without a readable code");
        assert!(by_status(503).transient() && by_status(429).transient());
    }
}
