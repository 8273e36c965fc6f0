//! The entry point: CodeDeploy's hook event in, the probes run, the verdict reported with
//! `PutLifecycleEventHookExecutionStatus`, and the verdict as the answer.

use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusError;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::metrics::Metrics;

use crate::error::HookError;
use crate::settings::Settings;
use crate::verdict::{check_versions, Verdict};

/// The clients the hook uses, made once per environment.
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
}

impl Clients {
    pub fn new(config: &shared::aws::SdkConfig) -> Clients {
        Clients { lambda: aws_sdk_lambda::Client::new(config), codedeploy: aws_sdk_codedeploy::Client::new(config) }
    }
}

/// What CodeDeploy sends a lifecycle hook.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HookEvent {
    deployment_id: String,
    lifecycle_event_hook_execution_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    pub deployment_id: String,
    /// `Succeeded` or `Failed`, as reported to CodeDeploy.
    pub status: &'static str,
    #[serde(flatten)]
    pub verdict: Verdict,
}

pub async fn handle_event(
    clients: &Clients,
    settings: &Settings,
    event: LambdaEvent<Value>,
) -> Result<HookAnswer, HookError> {
    let hook = HookEvent::deserialize(&event.payload)
        .map_err(|e| HookError::MalformedEvent(format!("not a CodeDeploy lifecycle hook event: {e}")))?;
    let verdict = check_versions(&clients.lambda, &settings.targets, settings.probe_timeout).await;
    for failure in &verdict.failures {
        tracing::warn!(version = %failure.version_arn, probe = failure.probe, why = %failure.why, "probe failed");
    }
    let status = if verdict.passed() { LifecycleEventStatus::Succeeded } else { LifecycleEventStatus::Failed };
    report(&clients.codedeploy, &hook, status.clone()).await?;
    tracing::info!(
        deployment = %hook.deployment_id, status = status.as_str(), probes = verdict.probes_run,
        failed = verdict.failures.len(), "verdict reported"
    );
    Metrics::for_this_function()
        .count("ProbesRun", verdict.probes_run as u64)
        .count("ProbesFailed", verdict.failures.len() as u64)
        .emit();
    Ok(HookAnswer { deployment_id: hook.deployment_id, status: status_name(&status), verdict })
}

async fn report(
    codedeploy: &aws_sdk_codedeploy::Client,
    hook: &HookEvent,
    status: LifecycleEventStatus,
) -> Result<(), HookError> {
    let sent = codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&hook.deployment_id)
        .lifecycle_event_hook_execution_id(&hook.lifecycle_event_hook_execution_id)
        .status(status)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        // A retried invocation whose first try was reported: the verdict is in.
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(_))
            ) =>
        {
            tracing::info!("CodeDeploy already has this hook's verdict");
            Ok(())
        }
        Err(error) => Err(HookError::ReportFailed(aws_sdk_codedeploy::error::DisplayErrorContext(&error).to_string())),
    }
}

fn status_name(status: &LifecycleEventStatus) -> &'static str {
    match status {
        LifecycleEventStatus::Succeeded => "Succeeded",
        _ => "Failed",
    }
}
