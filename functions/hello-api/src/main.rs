use lambda_http::{run, service_fn, Error};

mod hello;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    run(service_fn(hello::handle_request)).await
}
