//! The AWS clients rotation calls, made once at init.

use aws_sdk_secretsmanager::Client;

/// The AWS APIs rotation calls: Secrets Manager for every step, RDS to find the database of a
/// master secret that RDS manages.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub secrets: Client,
    pub rds: aws_sdk_rds::Client,
}

impl AwsClients {
    pub fn new(config: &shared::aws::SdkConfig) -> AwsClients {
        AwsClients { secrets: Client::new(config), rds: aws_sdk_rds::Client::new(config) }
    }
}
