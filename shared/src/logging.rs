//! Logging through `lambda_runtime`'s own subscriber, so Lambda's log controls apply:
//! `AWS_LAMBDA_LOG_FORMAT=JSON` gives structured lines, `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`) sets the level.
//! Without them (a local run) it prints readable text.

/// Installs the global tracing subscriber. Call once, first thing in `main`.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
