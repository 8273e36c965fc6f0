//! The EventBridge events this function accepts, parsed strictly enough to refuse anything else.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an event is not a drain request. Its own type, so the parser depends on nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("unsupported event: detail-type {0:?} is not an EC2 Spot Instance Interruption Warning, an EC2 Instance Rebalance Recommendation or an EC2 Instance-terminate Lifecycle Action")]
    Unsupported(String),
}

pub const INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";
pub const TERMINATE_LIFECYCLE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";

/// Why the instance is being drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Terminate,
    Stop,
    Hibernate,
    Rebalance,
    /// An Auto Scaling lifecycle hook on termination (scale-in, instance refresh).
    ScaleIn,
}

/// What one event asks for: drain this instance, for this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainRequest {
    pub instance_id: String,
    pub action: Action,
    /// Set for a lifecycle hook: the action to complete once the instance has drained.
    pub lifecycle: Option<LifecycleAction>,
    /// When EventBridge saw the event (its `time`), epoch milliseconds.
    pub warned_at_ms: Option<u64>,
}

/// The lifecycle action Auto Scaling waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleAction {
    pub group: String,
    pub hook: String,
    pub token: String,
}

impl DrainRequest {
    /// A drain of `instance_id` for an EC2 notice (no lifecycle action to complete).
    pub fn notice(instance_id: &str, action: Action) -> DrainRequest {
        DrainRequest { instance_id: instance_id.to_owned(), action, lifecycle: None, warned_at_ms: None }
    }
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "instance-id")]
    instance_id: Option<String>,
    #[serde(rename = "instance-action")]
    instance_action: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LifecycleDetail {
    #[serde(rename = "EC2InstanceId")]
    ec2_instance_id: Option<String>,
    auto_scaling_group_name: Option<String>,
    lifecycle_hook_name: Option<String>,
    lifecycle_action_token: Option<String>,
}

/// Auto Scaling's terminate lifecycle action: every field is needed to complete it.
fn parse_lifecycle_action(detail: &Value, warned_at_ms: Option<u64>) -> Result<DrainRequest, EventError> {
    let malformed = EventError::Malformed;
    let detail =
        LifecycleDetail::deserialize(detail).map_err(|e| malformed(format!("lifecycle action detail: {e}")))?;
    let field = |value: Option<String>, name: &str| {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| malformed(format!("missing \"detail.{name}\"")))
    };
    let instance_id = field(detail.ec2_instance_id, "EC2InstanceId")?;
    if !is_instance_id(&instance_id) {
        return Err(malformed(format!("\"detail.EC2InstanceId\" is {instance_id:?}")));
    }
    let lifecycle = LifecycleAction {
        group: field(detail.auto_scaling_group_name, "AutoScalingGroupName")?,
        hook: field(detail.lifecycle_hook_name, "LifecycleHookName")?,
        token: field(detail.lifecycle_action_token, "LifecycleActionToken")?,
    };
    Ok(DrainRequest { instance_id, action: Action::ScaleIn, lifecycle: Some(lifecycle), warned_at_ms })
}

/// Reads an EventBridge event; anything that is not one of the two EC2 notices is refused.
pub fn parse_drain_request(event: &Value) -> Result<DrainRequest, EventError> {
    let malformed = EventError::Malformed;
    // `time` only dates the summary: read it apart (through the SDK's DateTime), so a time that
    // cannot be read never stops a drain.
    let warned_at_ms = event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|time| DateTime::from_str(time, DateTimeFormat::DateTime).ok())
        .and_then(|time| time.to_millis().ok())
        .and_then(|ms| u64::try_from(ms).ok());
    let mut untimed = event.clone();
    if let Some(fields) = untimed.as_object_mut() {
        fields.remove("time");
    }
    let envelope = EventBridgeEvent::<Value>::deserialize(&untimed)
        .map_err(|e| malformed(format!("not an EventBridge event: {e}")))?;
    let detail_type = envelope.detail_type;
    if envelope.source == "aws.autoscaling" && detail_type == TERMINATE_LIFECYCLE_ACTION {
        return parse_lifecycle_action(&envelope.detail, warned_at_ms);
    }
    if envelope.source != "aws.ec2" {
        return Err(malformed(format!("source is {:?}, expected \"aws.ec2\"", envelope.source)));
    }
    if envelope.detail.is_null() {
        return Err(malformed("missing \"detail\"".into()));
    }
    let detail = Detail::deserialize(&envelope.detail)
        .map_err(|e| malformed(format!("not an EventBridge event: \"detail\": {e}")))?;
    let instance_id = detail
        .instance_id
        .filter(|id| is_instance_id(id))
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
    Ok(DrainRequest { warned_at_ms, ..DrainRequest::notice(&instance_id, action) })
}

/// An EC2 instance id as EC2 documents them: `i-` and 8 or 17 lowercase letters and digits (in
/// practice hex). Anything else is refused before any call: EC2 would fail the whole batch's
/// `DescribeInstances` for it.
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|rest| {
        matches!(rest.len(), 8 | 17) && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
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
        for (text, action) in
            [("terminate", Action::Terminate), ("stop", Action::Stop), ("hibernate", Action::Hibernate)]
        {
            let request = parse_drain_request(&warning(text)).unwrap();
            assert_eq!(
                request,
                DrainRequest {
                    warned_at_ms: Some(1_795_428_000_000),
                    ..DrainRequest::notice("i-1234567890abcdef0", action)
                }
            );
        }
    }

    #[test]
    fn eventbridge_times_are_read_as_utc() {
        let at = |time: &str| {
            let mut event = warning("terminate");
            event["time"] = json!(time);
            parse_drain_request(&event).map(|r| r.warned_at_ms)
        };
        assert_eq!(at("1970-01-01T00:00:00Z"), Ok(Some(0)));
        assert_eq!(at("2024-02-29T23:59:59.5Z"), Ok(Some(1_709_251_199_500)));
        assert_eq!(at("2026-13-01T00:00:00Z"), Ok(None), "an unreadable time never stops a drain");
        assert_eq!(at("2026-11-23 10:00:00"), Ok(None));
        let mut untimed = warning("terminate");
        if let Some(o) = untimed.as_object_mut() {
            o.remove("time");
        }
        assert_eq!(parse_drain_request(&untimed).map(|r| r.warned_at_ms), Ok(None));
    }

    #[test]
    fn rebalance_recommendation() {
        let event = json!({
            "detail-type": REBALANCE_RECOMMENDATION, "source": "aws.ec2",
            "detail": {"instance-id": "i-0abc1234"}
        });
        assert_eq!(parse_drain_request(&event).unwrap().action, Action::Rebalance);
    }

    #[test]
    fn terminate_lifecycle_actions_carry_what_completing_them_needs() {
        let event = json!({
            "detail-type": TERMINATE_LIFECYCLE_ACTION, "source": "aws.autoscaling",
            "detail": {"LifecycleActionToken": "87654321-4321-4321-4321-210987654321", "AutoScalingGroupName": "web", "LifecycleHookName": "drain",
                       "EC2InstanceId": "i-0abc1234", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}
        });
        let request = parse_drain_request(&event).unwrap();
        assert_eq!((request.instance_id.as_str(), request.action), ("i-0abc1234", Action::ScaleIn));
        let lifecycle = request.lifecycle.unwrap();
        assert_eq!((lifecycle.group.as_str(), lifecycle.hook.as_str()), ("web", "drain"));
        let mut no_token = event.clone();
        no_token["detail"]["LifecycleActionToken"] = json!("");
        assert!(parse_drain_request(&no_token).unwrap_err().to_string().contains("LifecycleActionToken"));
    }

    #[test]
    fn refusals_name_what_was_wrong() {
        let cases = [
            (
                json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {"instance-id": "i-0abc1234"}}),
                "State-change",
            ),
            (
                json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": {"instance-action": "terminate"}}),
                "instance-id",
            ),
            (
                json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": {"instance-id": "i-0abc1234", "instance-action": "reboot"}}),
                "instance-action",
            ),
            (
                json!({"detail-type": INTERRUPTION_WARNING, "source": "my.app", "detail": {"instance-id": "i-0abc1234"}}),
                "source",
            ),
            (json!({"source": "aws.ec2"}), "detail-type"),
            // Not as EC2 makes ids: refused here, not left to fail a whole batch's lookup.
            (
                json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": {"instance-id": "i-0ABC1234", "instance-action": "terminate"}}),
                "instance-id",
            ),
            (
                json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": {"instance-id": "i-0abc12345", "instance-action": "terminate"}}),
                "instance-id",
            ),
            (json!("just a string"), "not an EventBridge event"),
            (
                json!({"detail-type": INTERRUPTION_WARNING, "source": "aws.ec2", "detail": "x"}),
                "not an EventBridge event",
            ),
        ];
        for (event, expected) in cases {
            let error = parse_drain_request(&event).unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} should mention {expected:?}");
        }
    }
}
