//! Logging through `tracing`, following Lambda's log controls as `lambda_runtime`'s own
//! subscriber does: `AWS_LAMBDA_LOG_FORMAT=JSON` gives structured lines, `AWS_LAMBDA_LOG_LEVEL`
//! (or `RUST_LOG`) sets the level; without them (a local run) readable text at INFO.
//!
//! One difference: database and broker clients log statements and frames (with their values,
//! passwords included) at debug level. They are capped at INFO whatever level is asked for.

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;

/// Targets never logged below INFO: they would print SQL with passwords in it.
/// (The AMQP client logs its frames, login included, at debug level too.)
const CAPPED_TARGETS: &[&str] = &[
    "tokio_postgres=info",
    "mysql_async=info",
    "mysql_common=info",
    "lapin=info",
    "amq_protocol=info",
    "amq_protocol_tcp=info",
    "tcp_stream=info",
];

/// Installs the global tracing subscriber, writing to stdout. Call once, first thing in `main`.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// As [`init`], writing to `writer` (tests capture the logs this way).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|text| text.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let mut filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    for directive in CAPPED_TARGETS {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(writer);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second call (tests) finds a subscriber installed already; that one stays.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
