use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pretraffic_hook::{handle_event, Clients, Settings};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let settings = shared::settings::from_env(Settings::from_lookup)?;
    let config = shared::aws::load_config().await?;
    let clients = Clients::new(&config);
    let (clients, settings) = (&clients, &settings);
    run(service_fn(move |event: LambdaEvent<Value>| handle_event(clients, settings, event))).await
}
