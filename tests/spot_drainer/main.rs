//! spot-drainer against moto's EC2, ELBv2 and Auto Scaling: real registrations in, real
//! registrations gone.
//!
//! - `discovery`: the groups found by the tag, by a scan of the VPC, or auto; the cached list.
//! - `auto_scaling`: an Auto Scaling group's target groups without a scan; detaching.
//! - `batches`: several warnings drained together, and an SQS batch with a bad record.
//! - `retries`: nothing left to do: a warning twice, an instance gone or in no group.
//! - `events`: malformed events refused before any call; the summary's timing.
//! - `rebalance`: a recommendation keeps a group's last healthy target; the warning drains it.
//! - `after_drain`: groups whose deregistration delay outlasts the notice, and groups a
//!   Kubernetes controller manages, named in the summary.
//! - `shared_budget`: the account's ELB budget in a DynamoDB table, drawn on by every
//!   invocation; a table that is gone.
//!
//! The fleets, warnings and checks they share are in `harness_fixtures::spot_drainer`; the
//! staging of moto in `harness_services::ec2`.

mod after_drain;
mod auto_scaling;
mod batches;
mod discovery;
mod events;
mod rebalance;
mod retries;
mod shared_budget;
