use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use spot_drainer::{handle_event, AwsClients, BudgetTable, Drainer, Notices, Settings, TargetGroupCache};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let settings = shared::settings::from_env(Settings::from_lookup)?;
    let config = shared::aws::load_config().await?;
    let aws = AwsClients::new(&config);
    // Kept for the life of the environment: later drains reuse the VPC's group list a while.
    let cache = TargetGroupCache::new(settings.target_group_cache_ttl);
    let sns = settings.notices_topic_arn.as_ref().map(|_| aws_sdk_sns::Client::new(&config));
    let notices = sns.as_ref().zip(settings.notices_topic_arn.as_deref());
    let dynamodb = settings.elb_budget_table.as_ref().map(|_| aws_sdk_dynamodb::Client::new(&config));
    let budget_table = dynamodb.as_ref().zip(settings.elb_budget_table.as_deref());
    let drainer = Drainer {
        notices: notices.map(|(sns, topic_arn)| Notices { sns, topic_arn }),
        budget_table: budget_table.map(|(dynamodb, table)| BudgetTable { dynamodb, table }),
        ..Drainer::new(&aws, &settings, &cache)
    };
    let drainer = &drainer;
    run(service_fn(move |event: LambdaEvent<Value>| handle_event(drainer, event))).await
}
