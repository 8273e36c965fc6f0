//! What every drain needs, made once per environment in `main.rs` and lent to each invocation,
//! so the drain's functions take one argument for it instead of four.

use crate::clients::AwsClients;
use crate::group_cache::TargetGroupCache;
use crate::settings::Settings;
use crate::shared_bucket::BudgetTable;

pub struct Drainer<'a> {
    pub aws: &'a AwsClients,
    pub settings: &'a Settings,
    /// The VPCs' group lists, kept across warm invocations.
    pub cache: &'a TargetGroupCache,
    /// Where summaries are published; `None` publishes nothing.
    pub notices: Option<Notices<'a>>,
    /// Where the account's ELB budget is kept (`ELB_BUDGET_TABLE`); `None`: each invocation
    /// paces itself alone.
    pub budget_table: Option<BudgetTable<'a>>,
}

/// The notices topic and the client that publishes to it.
#[derive(Clone, Copy)]
pub struct Notices<'a> {
    pub sns: &'a aws_sdk_sns::Client,
    pub topic_arn: &'a str,
}

impl<'a> Drainer<'a> {
    /// A drainer that publishes nothing and paces itself alone.
    pub fn new(aws: &'a AwsClients, settings: &'a Settings, cache: &'a TargetGroupCache) -> Self {
        Drainer { aws, settings, cache, notices: None, budget_table: None }
    }
}
