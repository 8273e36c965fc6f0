//! Secrets Manager rotation function: the four steps (createSecret, setSecret, testSecret,
//! finishSecret) for PostgreSQL, MySQL/MariaDB and generic secrets, single-user or alternating
//! users, each step safe to run again.

mod clients;
mod engine;
mod error;
mod event;
mod fleet;
mod handler;
mod metrics;
mod pair;
mod password;
mod rds_master;
mod rds_readers;
mod replication;
mod rollback;
mod rotation;
mod secret;
mod settings;
mod versions;

pub use clients::AwsClients;
pub use error::RotationError;
pub use event::{RotationEvent, Step};
pub use handler::{handle_event, rotate_step};
pub use password::PasswordPolicy;
pub use rds_master::{endpoint_of, owner_of, RdsOwner};
pub use rotation::{StepOutcome, StepReport};
pub use settings::{Settings, Strategy};
