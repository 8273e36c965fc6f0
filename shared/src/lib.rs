//! What the functions of the suite share, and nothing more: logging, metrics (EMF), AWS SDK
//! configuration, the invocation deadline, and the one TLS rule.

pub mod aws;
pub mod deadline;
pub mod logging;
pub mod metrics;
pub mod tls;
