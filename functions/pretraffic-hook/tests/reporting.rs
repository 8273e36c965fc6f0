//! The verdict as CodeDeploy receives it, through the SDK clients with their answers mocked
//! (moto has no CodeDeploy lifecycle hooks): which status is reported, and what a failed or
//! repeated report does.

use std::sync::{Arc, Mutex};

use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::{
    PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
};
use aws_sdk_codedeploy::types::error::LifecycleEventAlreadyCompletedException;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use lambda_runtime::{Context, LambdaEvent};
use pretraffic_hook::settings::{FunctionKind, Target};
use pretraffic_hook::{handle_event, Clients, HookError, Settings};
use serde_json::json;

const VERSION: &str = "arn:aws:lambda:us-east-1:123456789012:function:ops-secret-rotation:4";

fn hook_event() -> LambdaEvent<serde_json::Value> {
    LambdaEvent::new(json!({"DeploymentId": "d-ABC", "LifecycleEventHookExecutionId": "exec-1"}), Context::default())
}

fn settings() -> Settings {
    Settings {
        targets: vec![Target { kind: FunctionKind::SecretRotation, version_arn: VERSION.into() }],
        probe_timeout: std::time::Duration::from_secs(5),
    }
}

/// A Lambda whose every invocation fails with this errorType.
fn lambda_answering(error_type: &'static str) -> aws_sdk_lambda::Client {
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(move || {
        InvokeOutput::builder()
            .status_code(200)
            .function_error("Unhandled")
            .payload(Blob::new(json!({"errorType": error_type, "errorMessage": "refused"}).to_string()))
            .build()
    });
    mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke])
}

/// A CodeDeploy that records the statuses reported to it.
fn recording_codedeploy(reported: Arc<Mutex<Vec<(String, String, String)>>>) -> aws_sdk_codedeploy::Client {
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(move |request| {
            reported.lock().expect("lock").push((
                request.deployment_id().unwrap_or_default().to_owned(),
                request.lifecycle_event_hook_execution_id().unwrap_or_default().to_owned(),
                request.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            ));
            true
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
    mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&put])
}

#[tokio::test]
async fn a_version_that_refuses_as_documented_is_reported_succeeded_for_its_own_execution() {
    let reported = Arc::new(Mutex::new(Vec::new()));
    let clients =
        Clients { lambda: lambda_answering("MalformedEvent"), codedeploy: recording_codedeploy(reported.clone()) };
    let answer = handle_event(&clients, &settings(), hook_event()).await.expect("a verdict");
    assert_eq!((answer.status, answer.verdict.probes_run), ("Succeeded", 1));
    let reported = reported.lock().expect("lock").clone();
    assert_eq!(reported, [("d-ABC".to_owned(), "exec-1".to_owned(), "Succeeded".to_owned())]);
}

#[tokio::test]
async fn a_version_answering_another_error_type_is_reported_failed() {
    let reported = Arc::new(Mutex::new(Vec::new()));
    // A build that reaches Secrets Manager with an event it should have refused.
    let clients = Clients {
        lambda: lambda_answering("SecretsManagerFailed"),
        codedeploy: recording_codedeploy(reported.clone()),
    };
    let answer = handle_event(&clients, &settings(), hook_event()).await.expect("a verdict");
    assert_eq!(answer.status, "Failed");
    assert_eq!(answer.verdict.failures.len(), 1);
    assert!(answer.verdict.failures[0].why.contains("SecretsManagerFailed"), "{:?}", answer.verdict);
    assert_eq!(reported.lock().expect("lock")[0].2, LifecycleEventStatus::Failed.as_str());
}

#[tokio::test]
async fn a_report_codedeploy_refuses_fails_the_invocation_so_lambda_retries_it() {
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .then_error(|| PutLifecycleEventHookExecutionStatusError::unhandled(std::io::Error::other("throttled")));
    let clients = Clients {
        lambda: lambda_answering("MalformedEvent"),
        codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&put]),
    };
    let error = handle_event(&clients, &settings(), hook_event()).await.expect_err("not reported");
    assert_eq!(error.kind(), "ReportFailed");
}

#[tokio::test]
async fn a_retry_after_the_verdict_was_taken_is_no_failure() {
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status).then_error(|| {
        PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
            LifecycleEventAlreadyCompletedException::builder().message("already").build(),
        )
    });
    let clients = Clients {
        lambda: lambda_answering("MalformedEvent"),
        codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&put]),
    };
    assert!(handle_event(&clients, &settings(), hook_event()).await.is_ok());
}

#[tokio::test]
async fn an_event_without_the_hook_ids_is_malformed_and_nothing_is_invoked_or_reported() {
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(|| InvokeOutput::builder().build());
    let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
    let clients = Clients {
        lambda: mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]),
        codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&put]),
    };
    let event = LambdaEvent::new(json!({"DeploymentId": "d-ABC"}), Context::default());
    let error = handle_event(&clients, &settings(), event).await.expect_err("malformed");
    assert!(matches!(error, HookError::MalformedEvent(_)), "{error}");
    assert_eq!((invoke.num_calls(), put.num_calls()), (0, 0));
}
