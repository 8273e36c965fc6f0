//! How a function is started in the tests, the demo and the benches: as Lambda starts it, a
//! process polling a Runtime API (ours, or cargo-lambda's), with Lambda's environment.

pub mod cargo_lambda;
pub mod extensions_api;
pub mod lambda_env;
pub mod paths;
pub mod process;
pub mod runtime_api;
pub mod sandbox;
