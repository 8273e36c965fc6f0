//! Spot drainer: on an EC2 Spot Instance Interruption Warning (or a rebalance recommendation),
//! deregister the instance from every Elastic Load Balancing v2 target group it is registered in,
//! with each registration's exact port, so connections drain within the two-minute notice.

pub mod asg;
pub mod clients;
pub mod deregistration;
pub mod discovery;
pub mod drain;
pub mod error;
pub mod event;
pub mod group_cache;
pub mod handler;
pub mod instance;
pub mod lifecycle;
pub mod metrics;
pub mod notices;
pub mod pacing;
pub mod registration;
pub mod settings;
pub mod summary;

pub use clients::AwsClients;
pub use drain::{drain_instance, drain_instance_by, drain_requests};
pub use error::DrainError;
pub use group_cache::TargetGroupCache;
pub use handler::{handle_event, Handled};
pub use settings::{Discovery, Settings};
pub use summary::DrainSummary;
