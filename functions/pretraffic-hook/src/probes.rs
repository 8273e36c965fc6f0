//! The events each function gets before it takes traffic. Each must be harmless on a live
//! account: every one but hello-api's is refused by the function's own event parsing, before it
//! calls AWS or a broker, so a probe can neither drain an instance, nor rotate a secret, nor
//! take a message off a queue. What the function must answer is its documented behaviour
//! (functions/<fn>/README.md, "errorTypes"), so a build that stops parsing its events as
//! documented is kept from traffic.

use serde_json::{json, Value};

use crate::settings::FunctionKind;

/// One event, and what a good version answers.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: &'static str,
    pub event: Value,
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A failed invocation with this `errorType`.
    ErrorType(&'static str),
    /// An API Gateway answer: this status and body.
    HttpAnswer { status: u16, body: &'static str },
    /// An SQS partial-batch answer naming exactly these records as failed.
    FailedRecords(&'static [&'static str]),
    /// A success whose answer has this field with this value.
    Field { name: &'static str, value: &'static str },
}

/// A lifecycle hook name no operator gives a hook of theirs: the action is another owner's, so
/// the function must leave it alone (no call, nothing completed).
pub const PROBE_HOOK: &str = "ops-suite-pretraffic-probe-not-a-hook";

pub fn probes_for(kind: FunctionKind) -> Vec<Probe> {
    match kind {
        FunctionKind::HelloApi => vec![Probe {
            name: "hello-paul",
            event: rest_api_request("Paul"),
            expected: Expected::HttpAnswer { status: 200, body: "Hello Paul" },
        }],
        FunctionKind::SpotDrainerLifecycle => {
            let mut probes = probes_for(FunctionKind::SpotDrainer);
            probes.push(Probe {
                name: "lifecycle-action-of-another-owner",
                event: eventbridge_event(
                    "aws.autoscaling",
                    "EC2 Instance-terminate Lifecycle Action",
                    json!({
                        "LifecycleActionToken": "00000000-0000-0000-0000-000000000000",
                        "AutoScalingGroupName": "ops-suite-pretraffic-probe",
                        "LifecycleHookName": PROBE_HOOK,
                        "EC2InstanceId": "i-00000000000000000",
                        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"
                    }),
                ),
                expected: Expected::Field { name: "lifecycle", value: "left-alone" },
            });
            probes
        }
        FunctionKind::SpotDrainer => vec![
            Probe {
                name: "event-of-another-source",
                event: eventbridge_event("ops-suite.pretraffic", "ops-suite pre-traffic probe", json!({})),
                expected: Expected::ErrorType("MalformedEvent"),
            },
            Probe {
                name: "ec2-event-that-is-no-warning",
                event: eventbridge_event(
                    "aws.ec2",
                    "EC2 Instance State-change Notification",
                    json!({"instance-id": "i-00000000000000000", "state": "running"}),
                ),
                expected: Expected::ErrorType("UnsupportedEvent"),
            },
            Probe {
                name: "warning-without-an-instance",
                event: eventbridge_event(
                    "aws.ec2",
                    "EC2 Spot Instance Interruption Warning",
                    json!({"instance-action": "terminate"}),
                ),
                expected: Expected::ErrorType("MalformedEvent"),
            },
            Probe {
                // The queue's way in: a record that is no drain request fails alone.
                name: "queue-record-that-is-no-warning",
                event: json!({"Records": [{
                    "messageId": "pretraffic-probe",
                    "receiptHandle": "pretraffic-probe",
                    "body": "not an EventBridge event",
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:pretraffic-probe",
                    "awsRegion": "us-east-1"
                }]}),
                expected: Expected::FailedRecords(&["pretraffic-probe"]),
            },
        ],
        FunctionKind::SecretRotation => vec![Probe {
            name: "step-without-a-secret",
            event: json!({"Step": "createSecret", "ClientRequestToken": "pretraffic-probe"}),
            expected: Expected::ErrorType("MalformedEvent"),
        }],
        FunctionKind::MqPoller => vec![Probe {
            // An event-source batch without its messages: refused before the table or broker.
            name: "event-source-batch-without-messages",
            event: json!({"eventSource": "aws:mq", "eventSourceArn": "arn:aws:mq:us-east-1:000000000000:broker:pretraffic:b-0"}),
            expected: Expected::ErrorType("MalformedEvent"),
        }],
    }
}

fn eventbridge_event(source: &str, detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": detail_type,
        "source": source,
        "account": "000000000000",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail
    })
}

/// A REST API (payload 1.0) `POST /hello`, as API Gateway sends it.
fn rest_api_request(body: &str) -> Value {
    json!({
        "resource": "/hello",
        "path": "/hello",
        "httpMethod": "POST",
        "headers": {"Content-Type": "text/plain"},
        "multiValueHeaders": {"Content-Type": ["text/plain"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "pretraffic",
            "resourceId": "pretraffic",
            "resourcePath": "/hello",
            "httpMethod": "POST",
            "path": "/Prod/hello",
            "protocol": "HTTP/1.1",
            "stage": "Prod",
            "requestId": "pretraffic-probe",
            "identity": {"sourceIp": "127.0.0.1"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_probes_and_only_a_greeting_or_a_hook_left_alone_succeeds() {
        for kind in [
            FunctionKind::HelloApi,
            FunctionKind::SpotDrainer,
            FunctionKind::SpotDrainerLifecycle,
            FunctionKind::SecretRotation,
            FunctionKind::MqPoller,
        ] {
            let probes = probes_for(kind);
            assert!(!probes.is_empty(), "{kind:?}");
            for probe in probes {
                let greets = matches!(probe.expected, Expected::HttpAnswer { .. });
                assert_eq!(greets, kind == FunctionKind::HelloApi, "{kind:?} {}", probe.name);
                if let Expected::Field { value, .. } = probe.expected {
                    assert_eq!((kind, value), (FunctionKind::SpotDrainerLifecycle, "left-alone"));
                }
            }
        }
        assert_eq!(
            probes_for(FunctionKind::SpotDrainerLifecycle).len(),
            probes_for(FunctionKind::SpotDrainer).len() + 1
        );
    }
}
