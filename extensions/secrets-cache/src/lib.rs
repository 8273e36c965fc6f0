//! secrets-cache: a Lambda extension that serves Secrets Manager secrets and Parameter Store
//! parameters on `127.0.0.1:2773` with the interface of AWS's Parameters and Secrets Lambda
//! Extension, prefetched while the function initialises and refreshed in the background.

pub mod cache;
pub mod key;
pub mod lifecycle;
pub mod metrics;
pub mod server;
pub mod settings;
pub mod token;
pub mod upstream;
