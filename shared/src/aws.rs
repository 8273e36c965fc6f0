//! AWS SDK configuration, loaded once per execution environment.
//!
//! Everything comes from the SDK's standard chain: credentials (Lambda's role, or the usual
//! variables and profiles locally), region (`AWS_REGION`), and endpoints: `AWS_ENDPOINT_URL`
//! for every service or `AWS_ENDPOINT_URL_<SERVICE>` for one, which is how the tests reach moto
//! and how a VPC interface endpoint is used. Nothing here is home-made on purpose.

pub use aws_config::SdkConfig;

/// Loads the SDK configuration from the environment.
pub async fn load_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
