//! mq-poller: moves messages from an Amazon MQ queue (ActiveMQ over STOMP, RabbitMQ over AMQP)
//! into a DynamoDB table, acknowledging each message only after it is stored, so nothing is lost;
//! items are keyed by the broker's message id, so a redelivery overwrites instead of duplicating.
//! The same binary also stores the batches of Lambda's native Amazon MQ event source.

mod broker;
mod clients;
mod credentials;
mod error;
mod event_source;
mod handler;
mod header;
mod message;
mod metrics;
mod outcome;
mod poll;
mod secrets_extension;
mod settings;
mod store;

pub use broker::stomp::StompConsumer;
pub use broker::{ConnectOptions, Endpoint, QueueConsumer};
pub use clients::AwsClients;
pub use credentials::{BrokerCredentials, CredentialSource, CredentialsProvider};
pub use error::{BrokerError, PollError, StoreError};
pub use handler::{handle_event, handle_payload, Poller};
pub use header::{HeaderValue, Headers};
pub use message::{now_ms, BrokerMessage, MessageId};
pub use outcome::Outcome;
pub use poll::{PollSummary, StopReason};
pub use secrets_extension::{SecretsExtension, EXTENSION_PATH};
pub use settings::Settings;
pub use store::{store_messages, Table};
