//! The invocation's deadline as a point on the process's clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time left before an invocation's deadline. Lambda sends the deadline in epoch
/// milliseconds; cargo-lambda's local runtime sends the timeout itself (600000), so a value too
/// small to be an epoch time (before 2001) is read as the time left.
pub fn time_left(deadline_ms: u64, now_ms: u64) -> Duration {
    const EPOCH_MS_2001: u64 = 978_307_200_000;
    let left = if deadline_ms < EPOCH_MS_2001 { deadline_ms } else { deadline_ms.saturating_sub(now_ms) };
    Duration::from_millis(left)
}

/// The deadline Lambda gave an invocation (`Context::deadline`), on tokio's clock.
pub fn invocation_deadline(deadline_ms: u64) -> tokio::time::Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
    tokio::time::Instant::now() + time_left(deadline_ms, now_ms)
}

#[cfg(test)]
mod tests {
    use super::time_left;
    use std::time::Duration;

    #[test]
    fn deadlines_as_lambda_and_as_cargo_lambda_send_them() {
        let now = 1_795_432_190_842;
        assert_eq!(time_left(now + 90_000, now), Duration::from_secs(90));
        assert_eq!(time_left(now - 5, now), Duration::ZERO);
        assert_eq!(time_left(600_000, now), Duration::from_secs(600));
    }
}
