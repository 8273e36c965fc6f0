//! Secrets Manager rotation function: the four steps (createSecret, setSecret, testSecret,
//! finishSecret) for PostgreSQL, MySQL/MariaDB and generic secrets, single-user or alternating
//! users, each step safe to run again.

pub mod engine;
pub mod error;
pub mod event;
pub mod metrics;
pub mod password;
pub mod rds_master;
pub mod rotation;
pub mod secret;
pub mod settings;
pub mod versions;

pub use error::RotationError;
pub use event::{RotationEvent, Step};
pub use password::PasswordPolicy;
pub use rotation::{rotate_step, AwsClients, StepOutcome, StepReport};
pub use settings::{Settings, Strategy};
