//! The event Secrets Manager sends a rotation function.
//!
//! `aws_lambda_events` has no `RotationToken` (sent for rotations across accounts), so the
//! event is read here; the token is passed on to `PutSecretValue` and never printed.

use std::fmt;

use serde::Deserialize;

use crate::error::RotationError;
use crate::secret::Server;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEvent {
    step: Option<String>,
    secret_id: Option<String>,
    client_request_token: Option<String>,
    rotation_token: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RotationEvent {
    pub step: Step,
    pub secret_id: String,
    /// The version being rotated in.
    pub token: String,
    /// Present for rotations across accounts; a credential of its own.
    pub rotation_token: Option<String>,
    /// Never sent by Secrets Manager: for a secret that lists `hosts`, the one server this part
    /// of the step works on; every version read is seen as it applies to that server.
    pub server: Option<Server>,
}

impl fmt::Debug for RotationEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationEvent")
            .field("step", &self.step)
            .field("secret_id", &self.secret_id)
            .field("token", &self.token)
            .field("rotation_token", &self.rotation_token.as_ref().map(|_| "<redacted>"))
            .field("server", &self.server)
            .finish()
    }
}

impl RotationEvent {
    pub fn parse(event: &serde_json::Value) -> Result<RotationEvent, RotationError> {
        let bad = |why: &str| RotationError::MalformedEvent(why.to_owned());
        let raw = RawEvent::deserialize(event).map_err(|_| bad("not a Secrets Manager rotation event"))?;
        let step = match raw.step.as_deref() {
            Some("createSecret") => Step::CreateSecret,
            Some("setSecret") => Step::SetSecret,
            Some("testSecret") => Step::TestSecret,
            Some("finishSecret") => Step::FinishSecret,
            Some(other) => return Err(RotationError::UnknownStep(other.chars().take(64).collect())),
            None => return Err(bad("missing \"Step\"")),
        };
        let secret_id = raw.secret_id.filter(|s| !s.is_empty()).ok_or_else(|| bad("missing \"SecretId\""))?;
        let token =
            raw.client_request_token.filter(|s| !s.is_empty()).ok_or_else(|| bad("missing \"ClientRequestToken\""))?;
        let rotation_token = raw.rotation_token.filter(|s| !s.is_empty());
        Ok(RotationEvent { step, secret_id, token, rotation_token, server: None })
    }

    /// The same step, on one server of the secret's `hosts`.
    pub fn on(&self, server: &Server) -> RotationEvent {
        RotationEvent { server: Some(server.clone()), ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_four_steps_and_keeps_the_rotation_token_out_of_debug() {
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            let event = json!({"Step": step, "SecretId": "arn:s", "ClientRequestToken": "t-1", "RotationToken": "secret-token"});
            let parsed = RotationEvent::parse(&event).unwrap();
            assert_eq!(parsed.step.name(), step);
            assert_eq!(parsed.rotation_token.as_deref(), Some("secret-token"));
            assert!(!format!("{parsed:?}").contains("secret-token"));
        }
    }

    #[test]
    fn refuses_unknown_steps_and_missing_fields() {
        let unknown = RotationEvent::parse(&json!({"Step": "dropSecret", "SecretId": "s", "ClientRequestToken": "t"}));
        assert!(matches!(unknown, Err(RotationError::UnknownStep(s)) if s == "dropSecret"));
        for event in [
            json!({"SecretId": "s", "ClientRequestToken": "t"}),
            json!({"Step": "setSecret", "ClientRequestToken": "t"}),
            json!({"Step": "setSecret", "SecretId": "s"}),
            json!(42),
        ] {
            assert!(matches!(RotationEvent::parse(&event), Err(RotationError::MalformedEvent(_))), "{event}");
        }
    }
}
