//! mq-poller: moves messages from an Amazon MQ queue (ActiveMQ over STOMP, RabbitMQ over AMQP)
//! into a DynamoDB table, acknowledging each message only after it is stored, so nothing is lost;
//! items are keyed by the broker's message id, so a redelivery overwrites instead of duplicating.
//! The same binary also stores the batches of Lambda's native Amazon MQ event source.

pub mod broker;
pub mod clients;
pub mod credentials;
pub mod error;
pub mod event_source;
pub mod handler;
pub mod message;
pub mod metrics;
pub mod poll;
pub mod settings;
pub mod store;

pub use clients::AwsClients;
pub use handler::{handle_event, Outcome};
pub use settings::Settings;
