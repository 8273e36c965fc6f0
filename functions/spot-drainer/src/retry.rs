//! Retries inside the drain. The SDK retries a throttled or failing call a few times within a
//! second or two; a group still throttled after that would otherwise be reported failed, and
//! the record come back only after the queue's visibility timeout, when the instance is gone.
//! So a transient failure (throttling, a 5xx, a timeout, a broken connection) is tried again
//! with jittered, growing waits until the drain's stop time, each attempt drawing a token from
//! the same budget as the first, so retries never spend more than the function's ELB budget.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::config::http::HttpResponse;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use tokio::time::Instant;

use crate::pacing::TokenBucket;

const FIRST_WAIT: Duration = Duration::from_millis(200);
const LONGEST_WAIT: Duration = Duration::from_secs(5);
/// Without a stop time (a caller outside Lambda), the retries a call gets.
const RETRIES_WITHOUT_STOP_TIME: u32 = 5;

/// For the calls retried here: the SDK's own attempts off, so every attempt that reaches ELB
/// has taken a token (with them on, each token would buy up to three calls).
pub fn one_attempt() -> aws_sdk_elasticloadbalancingv2::config::Builder {
    aws_sdk_elasticloadbalancingv2::config::Builder::default()
        .retry_config(aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig::disabled())
}

/// Where a call's retries draw their tokens, and when they must stop.
#[derive(Clone, Copy)]
pub struct Retry<'a> {
    pub budget: &'a TokenBucket,
    pub stop_by: Option<Instant>,
}

impl Retry<'_> {
    /// Waits before retry number `retry` (from 1) and takes its token; `false`, having waited
    /// for nothing, when it would end past the stop time.
    pub async fn before(&self, retry: u32) -> bool {
        if self.stop_by.is_none() && retry > RETRIES_WITHOUT_STOP_TIME {
            return false;
        }
        let wait = jittered(retry);
        if self.stop_by.is_some_and(|stop_by| Instant::now() + wait >= stop_by) {
            return false;
        }
        tokio::time::sleep(wait).await;
        self.budget.take_by(self.stop_by).await
    }
}

/// Between half and all of an exponential wait, so callers throttled together spread out.
fn jittered(retry: u32) -> Duration {
    let full = FIRST_WAIT.saturating_mul(1 << retry.saturating_sub(1).min(8)).min(LONGEST_WAIT);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(retry);
    let fraction = (hasher.finish() % 1000) as f64 / 1000.0;
    full.mul_f64(0.5 + fraction / 2.0)
}

/// Whether another attempt may succeed: throttling, a server error, a timeout or a failure to
/// reach the endpoint; never a refusal of the request itself.
pub fn is_transient<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            let throttled = matches!(
                e.err().code(),
                Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException")
            );
            throttled || status == 429 || status >= 500
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_a_bound_with_jitter() {
        for retry in 1..20 {
            let full = FIRST_WAIT.saturating_mul(1 << (retry - 1).min(8)).min(LONGEST_WAIT);
            let wait = jittered(retry);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
    }
}
