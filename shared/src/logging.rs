//! Logging through `tracing`, following Lambda's log controls as `lambda_runtime`'s own
//! subscriber does: `AWS_LAMBDA_LOG_FORMAT=JSON` gives structured lines, `AWS_LAMBDA_LOG_LEVEL`
//! (or `RUST_LOG`) sets the level; without them (a local run) readable text at INFO.
//!
//! One difference: some libraries log what must never be logged (statements with passwords,
//! logins, raw events); they are capped whatever level or directive is asked for.

use lambda_runtime::tracing::subscriber as tracing_subscriber;
use lambda_runtime::tracing::Level;
use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Targets capped whatever level or directive is asked for (`RUST_LOG=tokio_postgres=trace`
/// included), with the most verbose level each may log at. Below it they would print what must
/// never reach a log: SQL with passwords, logins (the database and AMQP clients log statements
/// and frames at debug level), and `lambda_runtime` logs every raw event at TRACE (a rotation's
/// `RotationToken`, an MQ batch's message bodies).
const CAPPED_TARGETS: &[(&str, Level)] = &[
    ("tokio_postgres", Level::INFO),
    ("postgres_protocol", Level::INFO),
    ("mysql_async", Level::INFO),
    ("mysql_common", Level::INFO),
    ("lapin", Level::INFO),
    ("amq_protocol", Level::INFO),
    ("amq_protocol_tcp", Level::INFO),
    ("tcp_stream", Level::INFO),
    ("lambda_runtime", Level::DEBUG),
    ("lambda_runtime_api_client", Level::DEBUG),
    ("lambda_http", Level::DEBUG),
    // The AWS SDK's HTTP layer prints whole requests and responses at TRACE: a secret's value
    // in GetSecretValue and PutSecretValue, a message body in a DynamoDB write.
    ("aws_smithy_runtime", Level::DEBUG),
    ("aws_smithy_runtime_api", Level::DEBUG),
    ("aws_smithy_http_client", Level::DEBUG),
    ("aws_smithy_http", Level::DEBUG),
    ("hyper", Level::DEBUG),
    ("hyper_util", Level::DEBUG),
    ("h2", Level::DEBUG),
];

/// Whether a capped target's event or span at `level` may be logged.
fn within_cap(target: &str, level: &Level) -> bool {
    CAPPED_TARGETS
        .iter()
        .filter(|(capped, _)| {
            target == *capped || target.strip_prefix(capped).is_some_and(|rest| rest.starts_with("::"))
        })
        .all(|(_, most_verbose)| level <= most_verbose)
}

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
    let requested = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    install(writer, requested);
}

/// As [`init`], at `level` (`None`: nothing) whatever Lambda's log controls or `RUST_LOG` say:
/// for an extension, whose own setting names its level (the caps still hold).
pub fn init_at(level: Option<Level>) {
    let level = level.map_or(LevelFilter::OFF, LevelFilter::from_level);
    install(std::io::stdout, EnvFilter::builder().with_default_directive(level.into()).parse_lossy(""));
}

fn install<W>(writer: W, requested: EnvFilter)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // A hard cap on top of whatever was requested: directives cannot lift it.
    let cap = filter_fn(|metadata| within_cap(metadata.target(), metadata.level()));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = fmt::layer().with_target(false).without_time().with_writer(writer);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = if json { layer.json().boxed() } else { layer.boxed() };
    // A second call (tests) finds a subscriber installed already; that one stays.
    let _ = tracing_subscriber::registry().with(layer.with_filter(requested).with_filter(cap)).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_targets_stay_capped_and_others_are_free() {
        assert!(!within_cap("tokio_postgres::query", &Level::DEBUG));
        assert!(within_cap("tokio_postgres", &Level::INFO));
        assert!(!within_cap("lambda_runtime::layers::api_response", &Level::TRACE));
        assert!(within_cap("lambda_runtime::runtime", &Level::DEBUG));
        assert!(within_cap("secret_rotation::rotation", &Level::TRACE));
        assert!(!within_cap("aws_smithy_runtime::client::orchestrator", &Level::TRACE));
        assert!(within_cap("aws_smithy_runtime::client::orchestrator", &Level::DEBUG));
        // A prefix of a name is not the name.
        assert!(within_cap("lapin_extras", &Level::TRACE));
    }
}
