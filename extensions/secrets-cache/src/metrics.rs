//! The extension's counters, published as EMF lines (through `shared::metrics`) to the
//! function's log group: what happened since the last line, at each `INVOKE` and at `SHUTDOWN`.
//! Counts and durations only: never a name or a value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shared::metrics::{Metrics, Unit};

#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale_served: AtomicU64,
    pub refresh_errors: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last call, as one record (`None` when nothing happened).
    pub fn take(&self) -> Option<Metrics> {
        let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        let (hits, misses, stale, errors) =
            (take(&self.hits), take(&self.misses), take(&self.stale_served), take(&self.refresh_errors));
        if hits + misses + stale + errors == 0 {
            return None;
        }
        Some(
            record()
                .count("SecretsCacheHits", hits)
                .count("SecretsCacheMisses", misses)
                .count("SecretsCacheStaleServed", stale)
                .count("SecretsCacheRefreshErrors", errors),
        )
    }
}

/// The prefetch's time, once per execution environment.
pub fn prefetch_time(took: Duration, keys: usize) -> Metrics {
    record().property("PrefetchedKeys", keys.to_string()).duration(
        "SecretsCachePrefetchDuration",
        Unit::Milliseconds,
        took,
    )
}

fn record() -> Metrics {
    Metrics::for_this_function().property("Extension", "secrets-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once() {
        let stats = Stats::default();
        assert!(stats.take().is_none());
        Stats::add(&stats.hits);
        Stats::add(&stats.hits);
        Stats::add(&stats.stale_served);
        let line = stats.take().expect("a record").to_line(0);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (value["SecretsCacheHits"].as_f64(), value["SecretsCacheStaleServed"].as_f64()),
            (Some(2.0), Some(1.0))
        );
        assert!(stats.take().is_none());
    }
}
