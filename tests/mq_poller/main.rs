//! mq-poller against a real ActiveMQ (STOMP, TLS) and RabbitMQ (AMQP), with moto's DynamoDB (and
//! S3, for the body bucket), and as a built binary through a Lambda Runtime API.
//!
//! - `poll`: the scheduled poll drains each broker byte for byte; where it stops and how it closes.
//! - `event_source`: batches from the Amazon MQ event source, retried without duplicates.
//! - `body_bucket`: bodies too large for an item go to the bucket, their item pointing at them.
//! - `parking`: messages the table refuses are dead-lettered, or parked in the bucket.
//! - `failures`: peers unreachable or gone mid-drain, the poller killed or frozen mid-drain.
//! - `credentials`: broker credentials from Secrets Manager, rotated between two polls.
//! - `memory`: bodies larger in all than the function's memory, drained by the built binary.
//!
//! The scene, settings and events they share are in `harness_fixtures::mq_poller`; the senders
//! and readers of the stand-ins in `harness_services`.

mod body_bucket;
mod credentials;
mod event_source;
mod failures;
mod memory;
mod parking;
mod poll;
