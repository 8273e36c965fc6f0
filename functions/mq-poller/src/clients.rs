//! The AWS clients the function stores messages with, made once at init.

use shared::aws::SdkConfig;

use crate::settings::Settings;
use crate::store::{BodyBucket, Table};

pub struct AwsClients {
    pub dynamo: aws_sdk_dynamodb::Client,
    /// Made only when `BODY_BUCKET` is set: nothing else writes to S3.
    pub s3: Option<aws_sdk_s3::Client>,
}

impl AwsClients {
    pub fn new(config: &SdkConfig, settings: &Settings) -> AwsClients {
        let s3 = settings.body_bucket.as_ref().map(|_| {
            // A custom endpoint (AWS_ENDPOINT_URL: a local stand-in) cannot serve a bucket as a
            // host name; AWS's own endpoints take the default, virtual-hosted style.
            let s3_config =
                aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
            aws_sdk_s3::Client::from_conf(s3_config)
        });
        AwsClients { dynamo: aws_sdk_dynamodb::Client::new(config), s3 }
    }

    /// The table the settings name, with the body bucket when there is one, writing until `write_by`.
    pub fn table<'a>(&'a self, settings: &'a Settings, write_by: tokio::time::Instant) -> Table<'a> {
        let bodies = match (&self.s3, &settings.body_bucket) {
            (Some(s3), Some(name)) => Some(BodyBucket { s3, name }),
            _ => None,
        };
        Table { dynamo: &self.dynamo, name: &settings.table_name, ttl_days: settings.ttl_days, write_by, bodies }
    }
}
