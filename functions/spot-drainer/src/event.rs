//! The EventBridge events this function accepts, parsed strictly enough to refuse anything else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an event is not a drain request. Its own type, so the parser depends on nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("unsupported event: detail-type {0:?} is neither an EC2 Spot Instance Interruption Warning nor an EC2 Instance Rebalance Recommendation")]
    Unsupported(String),
}

pub const INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";

/// Why the instance is being drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Terminate,
    Stop,
    Hibernate,
    Rebalance,
}

/// What one event asks for: drain this instance, for this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainRequest {
    pub instance_id: String,
    pub action: Action,
}

#[derive(Deserialize)]
struct Envelope {
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    detail: Option<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "instance-id")]
    instance_id: Option<String>,
    #[serde(rename = "instance-action")]
    instance_action: Option<String>,
}

/// Reads an EventBridge event; anything that is not one of the two EC2 notices is refused.
pub fn parse_drain_request(event: &Value) -> Result<DrainRequest, EventError> {
    let malformed = EventError::Malformed;
    let envelope = Envelope::deserialize(event)
        .map_err(|e| malformed(format!("not an EventBridge event: {e}")))?;
    let detail_type = envelope
        .detail_type
        .ok_or_else(|| malformed("missing \"detail-type\"".into()))?;
    if envelope.source.as_deref() != Some("aws.ec2") {
        return Err(malformed(format!(
            "source is {:?}, expected \"aws.ec2\"",
            envelope.source.unwrap_or_default()
        )));
    }
    let detail = envelope
        .detail
        .ok_or_else(|| malformed("missing \"detail\"".into()))?;
    let instance_id = detail
        .instance_id
        .filter(|id| id.starts_with("i-"))
        .ok_or_else(|| malformed("missing or invalid \"detail.instance-id\"".into()))?;
    let action = match detail_type.as_str() {
        INTERRUPTION_WARNING => match detail.instance_action.as_deref() {
            Some("terminate") => Action::Terminate,
            Some("stop") => Action::Stop,
            Some("hibernate") => Action::Hibernate,
            other => {
                return Err(malformed(format!(
                    "\"detail.instance-action\" is {other:?}, expected terminate, stop or hibernate"
                )))
            }
        },
        REBALANCE_RECOMMENDATION => Action::Rebalance,
        other => return Err(EventError::Unsupported(other.to_owned())),
    };
    Ok(DrainRequest { instance_id, action })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn warning(action: &str) -> Value {
        json!({
            "version": "0", "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
            "detail-type": INTERRUPTION_WARNING, "source": "aws.ec2",
            "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1b:instance/i-1234567890abcdef0"],
            "detail": {"instance-id": "i-1234567890abcdef0", "instance-action": action}
        })
    }

    #[test]
    fn interruption_warning_each_action() {
        for (text, action) in [("terminate", Action::Terminate), ("stop", Action::Stop), ("hibernate", Action::Hibernate)] {
            let request = parse_drain_request(&warning(text)).unwrap();
            assert_eq!(request, DrainRequest { instance_id: "i-1234567890abcdef0".into(), action });
        }
    }

    #[test]
    fn rebalance_recommendation() {
        let event = json!({
            "detail-type": REBALANCE_RECOMMENDATION, "source": "aws.ec2",
            "detail": {"instance-id": "i-0abc"}
        });
        assert_eq!(parse_drain_request(&event).unwrap().action, Action::Rebalance);
    }

    #[test]
    fn refusals_name_what_was_wrong() {
        let cases = [
            (json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {"instance-id": "i-1"}}), "State-change"),
            (json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": {"instance-action": "terminate"}}), "instance-id"),
            (json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": {"instance-id": "i-1", "instance-action": "reboot"}}), "instance-action"),
            (json!({"detail-type": INTERRUPTION_WARNING, "source": "my.app", "detail": {"instance-id": "i-1"}}), "source"),
            (json!({"source": "aws.ec2"}), "detail-type"),
            (json!("just a string"), "not an EventBridge event"),
            (json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": "x"}), "not an EventBridge event"),
        ];
        for (event, expected) in cases {
            let error = parse_drain_request(&event).unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} should mention {expected:?}");
        }
    }
}
