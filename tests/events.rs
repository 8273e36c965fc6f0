//! The sample events in `events/` (the demo's, the tests', and `sam local invoke`'s): each is
//! what AWS sends, read by its `aws_lambda_events` type, and the SQS sample's records agree with
//! their own bodies (digest, instance).

use std::collections::BTreeSet;

use aws_lambda_events::event::activemq::ActiveMqEvent;
use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::rabbitmq::RabbitMqEvent;
use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use harness_runtime::paths::{event_file, read_event, workspace_root};
use md5::{Digest, Md5};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn reads_as<T: DeserializeOwned>(file: &str) -> T {
    serde_json::from_value(read_event(file)).unwrap_or_else(|e| panic!("{file} is not what AWS sends: {e}"))
}

/// Every file, by the type AWS's event has (and so every file is checked).
fn check(file: &str) {
    match file {
        // API Gateway's two payloads: 2.0 (HTTP API) says its version, 1.0 (REST API) does not.
        hello if hello.starts_with("hello-") && read_event(hello)["version"] == "2.0" => {
            let request: ApiGatewayV2httpRequest = reads_as(file);
            assert_eq!(request.raw_path.as_deref(), Some("/hello"), "{file}");
        }
        hello if hello.starts_with("hello-") => {
            let request: ApiGatewayProxyRequest = reads_as(file);
            assert_eq!(request.path.as_deref(), Some("/hello"), "{file}");
        }
        "mq-activemq-event-source.json" => {
            let event: ActiveMqEvent = reads_as(file);
            assert_eq!(event.event_source.as_deref(), Some("aws:mq"), "{file}");
            assert!(!event.messages.is_empty(), "{file}");
        }
        "mq-rabbitmq-event-source.json" => {
            let event: RabbitMqEvent = reads_as(file);
            assert_eq!(event.event_source.as_deref(), Some("aws:rmq"), "{file}");
            assert!(!event.messages_by_queue.is_empty(), "{file}");
        }
        "mq-scheduled-poll.json" => {
            let event: EventBridgeEvent<Value> = reads_as(file);
            assert_eq!((event.source.as_str(), event.detail_type.as_str()), ("aws.events", "Scheduled Event"));
        }
        "rotation-create-secret.json"
        | "rotation-set-secret.json"
        | "rotation-test-secret.json"
        | "rotation-finish-secret.json" => {
            let event: SecretsManagerSecretRotationEvent = reads_as(file);
            let step = file.trim_start_matches("rotation-").trim_end_matches("-secret.json");
            assert_eq!(event.step.to_lowercase(), format!("{step}secret"), "{file}");
            assert!(event.secret_id.starts_with("arn:aws:secretsmanager:"), "{file}");
        }
        "spot-interruption-warning.json" | "spot-interruption-hibernate.json" => {
            let event: EventBridgeEvent<Value> = reads_as(file);
            assert_eq!(event.detail_type, "EC2 Spot Instance Interruption Warning");
            names_its_instance(&event);
        }
        "spot-rebalance-recommendation.json" => {
            let event: EventBridgeEvent<Value> = reads_as(file);
            assert_eq!(event.detail_type, "EC2 Instance Rebalance Recommendation");
            names_its_instance(&event);
        }
        "spot-lifecycle-terminate.json" => {
            let event: EventBridgeEvent<Value> = reads_as(file);
            assert_eq!(
                (event.source.as_str(), event.detail_type.as_str()),
                ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action")
            );
            for field in ["LifecycleActionToken", "AutoScalingGroupName", "LifecycleHookName", "EC2InstanceId"] {
                assert!(event.detail[field].is_string(), "{file}: {field}");
            }
            assert_eq!(event.detail["LifecycleTransition"], "autoscaling:EC2_INSTANCE_TERMINATING");
            let group = event.detail["AutoScalingGroupName"].as_str().unwrap_or_default();
            assert!(
                event.resources.iter().flatten().any(|r| r.ends_with(&format!("autoScalingGroupName/{group}"))),
                "{file}"
            );
        }
        "spot-warnings-sqs-batch.json" => {
            let batch: SqsEvent = reads_as(file);
            let mut ids = BTreeSet::new();
            for record in &batch.records {
                let body = record.body.as_deref().expect("a body");
                let digest: String = Md5::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(record.md5_of_body.as_deref(), Some(digest.as_str()), "{file}: md5OfBody is not the body's");
                let warning: EventBridgeEvent<Value> = serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("{file}: a body is no EventBridge event: {e}"));
                names_its_instance(&warning);
                assert!(ids.insert(record.message_id.clone()), "{file}: a message id twice");
            }
            assert!(batch.records.len() >= 2, "{file}: a batch");
        }
        "codedeploy-pretraffic-hook.json" => {
            let event: CodeDeployLifecycleEvent = reads_as(file);
            assert!(event.deployment_id.starts_with("d-"), "{file}");
            assert!(!event.lifecycle_event_hook_execution_id.is_empty(), "{file}");
        }
        other => panic!("events/{other} has no check: say here which AWS event it is"),
    }
}

/// An EC2 event's resources name the instance its detail is about.
fn names_its_instance(event: &EventBridgeEvent<Value>) {
    let instance = event.detail["instance-id"].as_str().expect("instance-id");
    assert!(
        event.resources.iter().flatten().any(|r| r.ends_with(&format!("instance/{instance}"))),
        "{instance} is not in its resources {:?}",
        event.resources
    );
}

#[test]
fn every_sample_event_is_what_aws_sends() {
    let dir = workspace_root().join("events");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 18, "{files:?}");
    for file in &files {
        assert!(event_file(file).is_file());
        check(file);
    }
}

#[test]
fn the_lifecycle_sample_is_a_drain_request_spot_drainer_reads() {
    let request = spot_drainer::parse_drain_request(&read_event("spot-lifecycle-terminate.json"))
        .unwrap_or_else(|e| panic!("spot-drainer refuses its own sample: {e:?}"));
    assert!(format!("{request:?}").contains("i-1234567890abcdef0"), "{request:?}");
}
