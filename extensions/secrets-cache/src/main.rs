//! The `secrets-cache` extension binary (`/opt/extensions/secrets-cache` in its layer).

// One thread: a few connections from one function, and the fewest threads to start at init.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_extension::Error> {
    secrets_cache::lifecycle::run().await
}
