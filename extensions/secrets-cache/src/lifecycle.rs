//! The extension's life, as Lambda runs it: bind the port, start the prefetch, register at once
//! (Lambda starts the runtime only when every extension has registered), hold the first `next`
//! until the prefetch is in or its deadline passes (init ends when every extension has called
//! it), then follow `INVOKE`s and stop at `SHUTDOWN`. A bad setting is reported through
//! `init/error` after registering (the call needs the extension's id), and the process exits.

use std::sync::Arc;
use std::time::Instant;

use lambda_extension::{requests, service_fn, Error, Extension, LambdaEvent, NextEvent};
use tokio::sync::Semaphore;

use crate::cache::{Cache, Policy};
use crate::metrics::{self, Stats};
use crate::server::{self, Server};
use crate::settings::{LogLevel, Settings};
use crate::token::Token;
use crate::upstream::Aws;

/// The name Lambda knows it by: the file's name in `/opt/extensions`.
pub const NAME: &str = "secrets-cache";

/// Why the extension cannot start, as `init/error` reports it (`Extension.<reason>`).
#[derive(Debug)]
pub struct InitFailure {
    pub error_type: &'static str,
    pub message: String,
}

pub async fn run() -> Result<(), Error> {
    let started = Instant::now();
    let settings = shared::settings::from_env(|lookup| Settings::from_lookup(lookup));
    let level = match settings.as_ref().map(|s| s.log_level) {
        Ok(LogLevel::Debug) => Some(tracing::Level::DEBUG),
        Ok(LogLevel::Info) | Err(_) => Some(tracing::Level::INFO),
        Ok(LogLevel::Warn) => Some(tracing::Level::WARN),
        Ok(LogLevel::Error) => Some(tracing::Level::ERROR),
        Ok(LogLevel::None) => None,
    };
    shared::logging::init_at(level);
    shared::tls::install_crypto_provider();
    let ready = match settings {
        Ok(settings) => prepare(settings).await,
        Err(message) => Err(InitFailure { error_type: "Extension.ConfigInvalid", message }),
    };

    let stats = ready.as_ref().map(|r| r.stats.clone()).unwrap_or_default();
    let events_stats = stats.clone();
    let events = service_fn(move |event: LambdaEvent| {
        let stats = events_stats.clone();
        async move {
            if let Some(record) = stats.take() {
                record.emit();
            }
            if let NextEvent::Shutdown(_) = event.next {
                // Nothing to flush or write: stop now, well within the shutdown deadline.
                std::process::exit(0);
            }
            Ok::<(), Error>(())
        }
    });
    let registered =
        Extension::new().with_extension_name(NAME).with_events(&["INVOKE", "SHUTDOWN"]).with_events_processor(events);
    let registered = registered.register().await?;

    let ready = match ready {
        Ok(ready) => ready,
        Err(failure) => {
            tracing::error!(error_type = failure.error_type, "cannot start: {}", failure.message);
            report_init_error(&registered.extension_id, &failure).await?;
            std::process::exit(1);
        }
    };
    let keys = ready.prefetch_keys;
    match tokio::time::timeout(ready.prefetch_deadline, ready.prefetch).await {
        Ok(Ok(fetched)) => {
            tracing::info!(keys, fetched, elapsed_ms = started.elapsed().as_millis() as u64, "prefetch done");
        }
        _ => tracing::warn!(keys, "prefetch not done within its deadline; init goes on, reads wait on it"),
    }
    if keys > 0 {
        metrics::prefetch_time(started.elapsed(), keys).emit();
    }
    registered.run().await
}

struct Ready {
    stats: Arc<Stats>,
    prefetch: tokio::task::JoinHandle<usize>,
    prefetch_keys: usize,
    prefetch_deadline: std::time::Duration,
}

/// Everything before registering: the port, the clients, the server and the prefetch, started.
async fn prepare(settings: Settings) -> Result<Ready, InitFailure> {
    let token = std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty()).ok_or(InitFailure {
        error_type: "Extension.ConfigInvalid",
        message: "AWS_SESSION_TOKEN is not set: requests could not be authenticated".to_owned(),
    })?;
    let listener = server::bind(settings.port).await.map_err(|e| InitFailure {
        error_type: "Extension.PortUnavailable",
        message: format!("127.0.0.1:{}: {e}", settings.port),
    })?;
    let sdk = shared::aws::load_config()
        .await
        .map_err(|e| InitFailure { error_type: "Extension.TrustedRootsInvalid", message: e.to_string() })?;
    let timeout = |limit: Option<std::time::Duration>| {
        let mut builder = aws_config::timeout::TimeoutConfig::builder();
        builder.set_operation_timeout(limit);
        builder.build()
    };
    let secrets = aws_sdk_secretsmanager::config::Builder::from(&sdk).timeout_config(timeout(settings.secrets_timeout));
    let parameters = aws_sdk_ssm::config::Builder::from(&sdk).timeout_config(timeout(settings.parameters_timeout));
    let source = Arc::new(Aws {
        secrets: aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
        parameters: aws_sdk_ssm::Client::from_conf(parameters.build()),
    });
    let policy = Policy {
        enabled: settings.cache_enabled,
        secret_ttl: settings.secret_ttl,
        parameter_ttl: settings.parameter_ttl,
        stale_max: settings.stale_max,
        capacity: settings.cache_size,
    };
    let stats = Arc::new(Stats::default());
    let cache = Cache::new(source, policy, stats.clone());
    let server = Arc::new(Server {
        cache: cache.clone(),
        token: Token::new(token),
        connections: Arc::new(Semaphore::new(settings.max_connections)),
        idle_connection: settings.idle_connection,
    });
    tokio::spawn(server::serve(listener, server));
    let keys = settings.prefetch;
    let prefetch_keys = keys.len();
    let prefetch = tokio::spawn(async move { cache.prefetch(&keys).await });
    Ok(Ready { stats, prefetch, prefetch_keys, prefetch_deadline: settings.prefetch_deadline })
}

async fn report_init_error(extension_id: &str, failure: &InitFailure) -> Result<(), Error> {
    let client = lambda_runtime_api_client::Client::builder().build()?;
    let body = requests::ErrorRequest {
        error_message: &failure.message,
        error_type: failure.error_type,
        stack_trace: Vec::new(),
    };
    client.call(requests::init_error(extension_id, failure.error_type, Some(body))?).await?;
    Ok(())
}
