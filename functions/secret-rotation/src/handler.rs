//! The function's entry point: one rotation step per invocation, as Secrets Manager sends them.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;

use crate::clients::AwsClients;
use crate::error::{RotationError, DEADLINE_MARGIN};
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
    let deadline = shared::deadline::invocation_deadline(event.context.deadline);
    let stop_at = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or_else(Instant::now);
    rotate_step(clients, settings, &event.payload, Some(stop_at)).await
}

/// Runs one rotation step for the event Secrets Manager sent, and reports it as a metric. With
/// `stop_at`, every call the step makes (database round trips included) is bounded by it: the
/// step is dropped there and answers `DeadlineExceeded`.
pub async fn rotate_step(
    clients: &AwsClients,
    settings: &Settings,
    event: &Value,
    stop_at: Option<Instant>,
) -> Result<StepReport, RotationError> {
    let event = RotationEvent::parse(event)?;
    // The engine, once a step has read the secret: the metric's dimension.
    let mut engine = None;
    let step = run_step(clients, settings, &event, &mut engine, stop_at);
    let result = match stop_at {
        None => step.await,
        Some(stop_at) => tokio::time::timeout_at(stop_at, step).await.unwrap_or_else(|_| {
            Err(RotationError::DeadlineExceeded {
                step: event.step.name(),
                secret_id: event.secret_id.clone(),
                margin_ms: DEADLINE_MARGIN.as_millis(),
            })
        }),
    };
    step_metrics(event.step, engine, result.is_ok()).emit();
    let result = result?;
    let report = StepReport { step: event.step.name(), secret_id: event.secret_id, token: event.token, result };
    tracing::info!(step = report.step, secret_id = %report.secret_id, token = %report.token, result = %report.result, "rotation step done");
    Ok(report)
}
