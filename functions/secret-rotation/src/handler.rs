//! The function's entry point: one rotation step per invocation, as Secrets Manager sends them.

use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::clients::AwsClients;
use crate::error::RotationError;
use crate::event::RotationEvent;
use crate::metrics::step_metrics;
use crate::rotation::{run_step, StepReport};
use crate::settings::Settings;

/// Runs the step, and answers its report (lambda_runtime writes it, in the report's field order).
pub async fn handle_event(
    clients: &AwsClients,
    settings: &Settings,
    event: LambdaEvent<Value>,
) -> Result<StepReport, RotationError> {
    rotate_step(clients, settings, &event.payload).await
}

/// Runs one rotation step for the event Secrets Manager sent, and reports it as a metric.
pub async fn rotate_step(
    clients: &AwsClients,
    settings: &Settings,
    event: &Value,
) -> Result<StepReport, RotationError> {
    let event = RotationEvent::parse(event)?;
    // The engine, once a step has read the secret: the metric's dimension.
    let mut engine = None;
    let result = run_step(clients, settings, &event, &mut engine).await;
    step_metrics(event.step, engine, result.is_ok()).emit();
    let result = result?;
    let report = StepReport { step: event.step.name(), secret_id: event.secret_id, token: event.token, result };
    tracing::info!(step = report.step, secret_id = %report.secret_id, token = %report.token, result = %report.result, "rotation step done");
    Ok(report)
}
