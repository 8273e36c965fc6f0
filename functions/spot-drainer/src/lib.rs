//! Spot drainer: on an EC2 Spot Instance Interruption Warning (or a rebalance recommendation, or
//! an Auto Scaling terminate lifecycle action), deregister the instance from every Elastic Load
//! Balancing v2 target group it is registered in, with each registration's exact port, so
//! connections drain within the two-minute notice.
//!
//! `handler` takes the event and answers; `drain` and `lifecycle` do the work, through
//! `discovery`, `deregistration` and `pacing` (with `shared_bucket`, the account's budget in DynamoDB); `drainer` holds what every drain needs.

mod asg;
mod clients;
mod deregistration;
mod discovery;
mod drain;
mod drainer;
mod error;
mod event;
mod group_cache;
mod group_facts;
mod handler;
mod instance;
mod lifecycle;
mod metrics;
mod notices;
mod pacing;
mod registration;
mod retry;
mod settings;
mod shared_bucket;
mod summary;

pub use clients::AwsClients;
pub use drain::drain_requests;
pub use drainer::{Drainer, Notices};
pub use error::DrainError;
pub use event::{parse_drain_request, Action, DrainRequest, EventError};
pub use group_cache::TargetGroupCache;
pub use handler::{drain_event, drain_one, handle_event, Handled};
pub use lifecycle::{HEARTBEAT_EVERY, POLL_EVERY};
pub use pacing::TokenBucket;
pub use registration::Outcome;
pub use settings::{Discovery, Pacing, Settings};
pub use shared_bucket::BudgetTable;
pub use summary::{DrainSummary, GroupOutcome};
