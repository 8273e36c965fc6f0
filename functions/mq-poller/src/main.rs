use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mq_poller::{
    handle_event, AwsClients, CredentialSource, CredentialsProvider, Poller, SecretsExtension, Settings, EXTENSION_PATH,
};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    // The secrets-cache layer's process shares the function's memory (the byte budget).
    let attached = std::path::Path::new(EXTENSION_PATH).exists();
    let settings =
        Settings { secrets_extension_attached: attached, ..shared::settings::from_env(Settings::from_lookup)? };
    let config = shared::aws::load_config().await?;
    let aws = AwsClients::new(&config, &settings);
    let source = shared::settings::from_env(|lookup| Ok(CredentialSource::from_lookup(lookup)))?;
    let secrets = matches!(source, CredentialSource::Secret(_)).then(|| aws_sdk_secretsmanager::Client::new(&config));
    // Read on the first poll (through secrets-cache when its layer is attached), kept for
    // BROKER_SECRET_TTL_SECONDS, read again from Secrets Manager on a refused login.
    let extension = shared::settings::from_env(|lookup| Ok(SecretsExtension::from_lookup(attached, lookup)))?;
    let credentials = CredentialsProvider::with_ttl(source, secrets, settings.secret_ttl).through_extension(extension);
    let poller = Poller { aws: &aws, settings: &settings, credentials: &credentials };
    let poller = &poller;
    run(service_fn(move |event: LambdaEvent<Value>| handle_event(poller, event))).await
}
