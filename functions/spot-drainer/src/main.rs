use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use spot_drainer::{handle_event, AwsClients, Handled, Settings, TargetGroupCache};

/// Kept of the invocation to finish the deregistrations under way and answer.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let settings = Settings::from_env()?;
    let config = shared::aws::load_config().await?;
    let aws = AwsClients::new(&config);
    // Kept for the life of the environment: later drains reuse the VPC's group list a while.
    let cache = TargetGroupCache::new(settings.target_group_cache_ttl);
    let sns = settings.notices_topic_arn.as_ref().map(|_| aws_sdk_sns::Client::new(&config));
    let notices = sns.as_ref().zip(settings.notices_topic_arn.as_deref());
    let (aws, settings, cache) = (&aws, &settings, &cache);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let started = std::time::Instant::now();
        // Stop searching in time to answer: what is left is reported, and the event retried.
        let stop_by = shared::deadline::invocation_deadline(event.context.deadline).checked_sub(DEADLINE_MARGIN);
        match handle_event(aws, notices, settings, cache, &event.payload, stop_by).await {
            Handled::Single(result) => {
                if let Some(metrics) = spot_drainer::metrics::drain_metrics([&result], started.elapsed()) {
                    metrics.emit();
                }
                result.and_then(|summary| {
                    serde_json::to_value(summary).map_err(|e| spot_drainer::DrainError::MalformedEvent(e.to_string()))
                })
            }
            // Failed records are named in the answer, and only they are retried.
            Handled::Batch { response, results } => {
                if let Some(metrics) = spot_drainer::metrics::drain_metrics(&results, started.elapsed()) {
                    metrics.emit();
                }
                serde_json::to_value(response).map_err(|e| spot_drainer::DrainError::MalformedEvent(e.to_string()))
            }
        }
    }))
    .await
}
