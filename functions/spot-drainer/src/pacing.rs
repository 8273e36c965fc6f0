//! The function's own pacing of ELB calls. ELBv2 draws every caller in the account and region
//! from shared token buckets (describe calls from one, mutating calls such as DeregisterTargets
//! from others), so a drain that spends them all throttles the console, the CLI and the load
//! balancer controller too. `SCAN_CONCURRENCY` bounds calls in flight; these buckets bound calls
//! per second, below the API's own, leaving headroom for everyone else. With a budget table
//! (`ELB_BUDGET_TABLE`) the buckets are the account's, shared by every invocation through
//! DynamoDB (`shared_bucket`); without one, or when the table fails, each invocation's own.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::shared_bucket::{BudgetTable, SharedBucket, TableFailure};

/// A token bucket: `burst` calls at once, then `rate` a second.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
    /// The account's bucket in the budget table; once it fails, this invocation paces itself
    /// for the rest of it rather than wait on a table that is not answering.
    shared: Option<SharedBucket>,
}

impl TokenBucket {
    pub fn new(rate_per_second: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate_per_second.max(1)),
            burst,
            state: Mutex::new((burst, Instant::now())),
            shared: None,
        }
    }

    /// A bucket kept in the budget table's item `name`, with this one's rate and burst; a call to
    /// the table slower than `call_timeout` fails it. Its own bucket, used only once the table
    /// failed, starts empty and takes what the item last held.
    pub fn shared(
        rate_per_second: u32,
        burst: u32,
        table: BudgetTable<'_>,
        name: &'static str,
        call_timeout: Duration,
    ) -> TokenBucket {
        TokenBucket {
            shared: Some(SharedBucket::new(table, name, call_timeout)),
            state: Mutex::new((0.0, Instant::now())),
            ..TokenBucket::new(rate_per_second, burst)
        }
    }

    /// Waits for a token, then takes it.
    pub async fn take(&self) {
        self.take_by(None).await;
    }

    /// As [`take`](Self::take), unless the token would come after `deadline`: then `false` at
    /// once, and no token is taken.
    pub async fn take_by(&self, deadline: Option<Instant>) -> bool {
        if let Some(shared) = self.shared.as_ref().filter(|shared| !shared.has_failed()) {
            match shared.take_by(self.rate, self.burst, deadline).await {
                Ok(taken) => return taken,
                Err(TableFailure::Now { reason, tokens }) => {
                    tracing::warn!(bucket = shared.name(), error = %reason, "the shared ELB budget failed; pacing this invocation alone");
                    let mut state = self.state.lock().await;
                    let now = Instant::now();
                    // What the account's bucket held, not a fresh burst of this invocation's own.
                    *state = (tokens.min(self.burst), now);
                }
                Err(TableFailure::Earlier) => {}
            }
        }
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let (tokens, last) = *state;
                let now = Instant::now();
                let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
                *state = (tokens, now);
                if tokens >= 1.0 {
                    *state = (tokens - 1.0, now);
                    return true;
                }
                let wait = Duration::from_secs_f64((1.0 - tokens) / self.rate);
                if deadline.is_some_and(|deadline| now + wait > deadline) {
                    return false;
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The two budgets a drain draws on.
#[derive(Debug)]
pub struct ElbBudget {
    pub describe: TokenBucket,
    pub deregister: TokenBucket,
}

impl ElbBudget {
    /// The account's budgets when there is a budget table, else this invocation's own.
    pub fn new(settings: &crate::settings::Pacing, table: Option<BudgetTable<'_>>) -> ElbBudget {
        let bucket = |rate, burst, name| match table {
            Some(table) => TokenBucket::shared(rate, burst, table, name, settings.budget_table_timeout),
            None => TokenBucket::new(rate, burst),
        };
        ElbBudget {
            describe: bucket(settings.describe_rate, settings.describe_burst, "elb-describe"),
            deregister: bucket(settings.deregister_rate, settings.deregister_burst, "elb-deregister"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_lets_its_burst_through_then_its_rate() {
        let bucket = TokenBucket::new(2, 3);
        let start = Instant::now();
        for _ in 0..3 {
            bucket.take().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst goes at once");
        for _ in 0..4 {
            bucket.take().await;
        }
        // Four more at two a second: two seconds of the (paused, so exact) clock.
        let spent = start.elapsed();
        assert!(spent >= Duration::from_millis(1999) && spent < Duration::from_millis(2100), "{spent:?}");
        // A token that would come after the deadline is refused at once.
        let now = Instant::now();
        assert!(!bucket.take_by(Some(now + Duration::from_millis(100))).await);
        assert_eq!(now.elapsed(), Duration::ZERO);
        assert!(bucket.take_by(Some(now + Duration::from_secs(1))).await);
    }
}
