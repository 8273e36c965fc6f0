// The rotation future nests deeply (four steps, two engines, the SDK); the default limit of
// 128 is too low to compute its layout.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use secret_rotation::{handle_event, AwsClients, Settings};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let settings = shared::settings::from_env(Settings::from_lookup)?;
    let config = shared::aws::load_config().await?;
    let clients = AwsClients::new(&config);
    let (clients, settings) = (&clients, &settings);
    run(service_fn(move |event: LambdaEvent<Value>| handle_event(clients, settings, event))).await
}
