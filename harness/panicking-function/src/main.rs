//! A function wired as the suite's are (shared logging, `lambda_runtime::run`), whose handler
//! panics on `{"panic": "<message>"}` and echoes anything else. The panic trigger lives here,
//! in a test fixture, and in no function that is deployed.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    run(service_fn(|event: LambdaEvent<Value>| async move {
        if let Some(message) = event.payload.get("panic").and_then(Value::as_str) {
            panic!("{message}");
        }
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
