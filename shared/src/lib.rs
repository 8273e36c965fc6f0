//! What the functions of the suite share, and nothing more: logging, metrics (EMF), AWS SDK
//! configuration, the invocation deadline, reading settings, and the one TLS rule.

pub mod aws;
pub mod deadline;
pub mod logging;
pub mod metrics;
pub mod settings;
pub mod tls;
