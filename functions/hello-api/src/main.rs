use lambda_http::{run, service_fn, Error};

mod error;
mod greeting;
mod handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    run(service_fn(handler::handle_event)).await
}
