//! The suite's CodeDeploy PreTraffic hook. CodeDeploy calls it after a deploy published new
//! versions and before the `live` alias moves to them; it invokes each new version with events
//! that have no side effects (each function refuses them before any AWS or broker call, with its
//! documented `errorType`; hello-api greets Paul) and reports the verdict, so a build that cannot
//! parse its own events never takes traffic.

pub mod error;
pub mod handler;
pub mod probes;
pub mod settings;
pub mod verdict;

pub use error::HookError;
pub use handler::{handle_event, Clients};
pub use settings::Settings;
