use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mq_poller::credentials::{CredentialSource, CredentialsProvider};
use mq_poller::{handle_event, AwsClients, Settings};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let settings = shared::settings::from_env(Settings::from_lookup)?;
    let config = shared::aws::load_config().await?;
    let aws = AwsClients::new(&config, &settings);
    let source = CredentialSource::from_lookup(|name| std::env::var(name).ok());
    let secrets = matches!(source, CredentialSource::Secret(_)).then(|| aws_sdk_secretsmanager::Client::new(&config));
    // Read on the first poll, kept for BROKER_SECRET_TTL_SECONDS, read again on a refused login.
    let credentials = CredentialsProvider::with_ttl(source, secrets, settings.secret_ttl);
    let (aws, settings, credentials) = (&aws, &settings, &credentials);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = shared::deadline::invocation_deadline(event.context.deadline);
        let started = std::time::Instant::now();
        let result = handle_event(aws, settings, credentials, &event.payload, deadline).await;
        mq_poller::metrics::invocation_metrics(&result, started.elapsed()).emit();
        result
    }))
    .await
}
