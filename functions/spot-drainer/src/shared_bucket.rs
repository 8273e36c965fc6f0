//! A token bucket held in a DynamoDB item, so that every invocation (the warnings queue's two
//! pollers, and the lifecycle twin's invocations) draws on one budget for the account instead of
//! one each. A take reads the item's tokens and stamp, refills them by the time since, and
//! writes the result back on the condition that nobody wrote in between (a sequence number);
//! a lost race re-reads and tries again. Reserved concurrency cannot do this: a throttled SQS
//! poller hands the batch back only after the visibility timeout.
//!
//! The stamp is each writer's wall clock. Lambda hosts keep theirs in sync; a stamp more than
//! `MAX_SKEW_MS` ahead of this clock would stall every refill until this clock caught up, so it
//! counts as a failure of the table.
//!
//! A table that fails (an error, an answer slower than the call timeout, a stamp from the future)
//! fails the bucket for the rest of the invocation: every take from then on, the ones already
//! queued included, goes to the invocation's own bucket at once. The table is a courtesy to the
//! other callers; the drain inside the notice comes first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The key attribute of the budget table (`ELB_BUDGET_TABLE`).
pub const KEY: &str = "id";
/// Thousandths of a token, so the item holds whole numbers.
const MILLI: u64 = 1000;
/// How far ahead of this clock another writer's stamp may be (it stalls refills that long).
const MAX_SKEW_MS: u64 = 500;

/// Why a take could not use the table.
#[derive(Debug)]
pub enum TableFailure {
    /// It failed now, for this reason (logged once by the caller); `tokens` is what the item held
    /// when last seen, refilled to now (0 when never read), for the invocation's own bucket to
    /// start from: a full burst for every invocation that falls back would overspend.
    Now { reason: String, tokens: f64 },
    /// It failed earlier in this invocation.
    Earlier,
}

/// The table the budget lives in, and the client that reaches it.
#[derive(Clone, Copy)]
pub struct BudgetTable<'a> {
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

/// What the item said when last read or written: `seq` 0 means there is no item yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    seq: u64,
    milli_tokens: u64,
    at_ms: u64,
}

/// One bucket of the table (`elb-describe`, `elb-deregister`).
#[derive(Debug)]
pub struct SharedBucket {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    name: &'static str,
    /// The item as this invocation last saw it; a write that finds it changed starts again
    /// from the item DynamoDB returns with the refusal (or reads it).
    known: Mutex<Option<Stored>>,
    failed: AtomicBool,
    /// A call slower than this fails the table (`ELB_BUDGET_TABLE_TIMEOUT_MS`). DynamoDB answers
    /// in milliseconds; a table much slower would pace the drain at a few tokens a second, since
    /// this invocation's takes are made one at a time.
    call_timeout: Duration,
}

impl SharedBucket {
    pub fn new(table: BudgetTable<'_>, name: &'static str, call_timeout: Duration) -> SharedBucket {
        SharedBucket {
            dynamodb: table.dynamodb.clone(),
            table: table.table.to_owned(),
            name,
            known: Mutex::new(None),
            failed: AtomicBool::new(false),
            call_timeout,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Takes a token at `rate` a second and at most `burst` saved, waiting for one unless it would
    /// come after `deadline` (then `Ok(false)`, nothing taken). An error means the table cannot
    /// be used (missing, refused, throttled, too slow); the caller paces itself instead.
    pub async fn take_by(&self, rate: f64, burst: f64, deadline: Option<Instant>) -> Result<bool, TableFailure> {
        let take = self.take_in_turn(rate, burst, deadline);
        match deadline {
            // Waiting for this invocation's turn, or for DynamoDB, counts against the deadline too.
            Some(deadline) => tokio::time::timeout_at(deadline, take).await.unwrap_or(Ok(false)),
            None => take.await,
        }
    }

    async fn take_in_turn(&self, rate: f64, burst: f64, deadline: Option<Instant>) -> Result<bool, TableFailure> {
        // Held for the whole take: this invocation's takes never race one another on the item.
        let mut known = self.known.lock().await;
        // Takes queued behind one that found the table failing go to the own bucket at once.
        if self.has_failed() {
            return Err(TableFailure::Earlier);
        }
        let result = self.take_from_item(&mut known, rate, burst, deadline).await;
        match result {
            Err(TableFailure::Now { reason, .. }) => {
                // Marked while this take still holds the turn, so no queued take tries the table.
                self.failed.store(true, Ordering::Relaxed);
                let tokens = known.map_or(0.0, |stored| refilled(stored, wall_ms(), rate, burst) as f64 / MILLI as f64);
                Err(TableFailure::Now { reason, tokens })
            }
            other => other,
        }
    }

    async fn take_from_item(
        &self,
        known: &mut Option<Stored>,
        rate: f64,
        burst: f64,
        deadline: Option<Instant>,
    ) -> Result<bool, TableFailure> {
        let failed = |reason: String| TableFailure::Now { reason, tokens: 0.0 };
        loop {
            let stored = match *known {
                Some(stored) => stored,
                None => self.read().await.map_err(failed)?,
            };
            let now_ms = wall_ms();
            if stored.at_ms > now_ms + MAX_SKEW_MS {
                // Forgotten, so the own bucket does not start from a count that cannot be trusted.
                *known = None;
                return Err(failed(format!(
                    "{} was stamped {} ms ahead of this clock",
                    self.name,
                    stored.at_ms - now_ms
                )));
            }
            let milli_tokens = refilled(stored, now_ms, rate, burst);
            if milli_tokens >= MILLI {
                let next =
                    Stored { seq: stored.seq + 1, milli_tokens: milli_tokens - MILLI, at_ms: now_ms.max(stored.at_ms) };
                match self.write(stored, next).await.map_err(failed)? {
                    None => {
                        *known = Some(next);
                        return Ok(true);
                    }
                    // Another invocation wrote first: start again from what it wrote.
                    Some(current) => {
                        *known = current;
                        continue;
                    }
                }
            }
            let wait = Duration::from_secs_f64((MILLI - milli_tokens) as f64 / MILLI as f64 / rate);
            if deadline.is_some_and(|deadline| Instant::now() + wait > deadline) {
                *known = Some(stored);
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
            // The refill is counted again from the stamp; if someone took meanwhile, the write
            // finds out.
            *known = Some(stored);
        }
    }

    async fn read(&self) -> Result<Stored, String> {
        let call = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.name.to_owned()))
            .consistent_read(true)
            .send();
        let answer = tokio::time::timeout(self.call_timeout, call)
            .await
            .map_err(|_| format!("reading {} took over {:?}", self.name, self.call_timeout))?
            .map_err(|e| format!("reading {}: {}", self.name, DisplayErrorContext(&e)))?;
        answer.item().map_or(Ok(Stored { seq: 0, milli_tokens: 0, at_ms: 0 }), stored_from)
    }

    /// Writes `next` if the item is still `seen`: `Ok(None)` when written, `Ok(Some(current))`
    /// when someone else wrote first (`current` is their item when DynamoDB returned it).
    async fn write(&self, seen: Stored, next: Stored) -> Result<Option<Option<Stored>>, String> {
        let number = |n: u64| AttributeValue::N(n.to_string());
        let mut call = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.name.to_owned()))
            .update_expression("SET #tokens = :tokens, #at = :at, #seq = :next")
            .expression_attribute_names("#tokens", "milliTokens")
            .expression_attribute_names("#at", "atMs")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":tokens", number(next.milli_tokens))
            .expression_attribute_values(":at", number(next.at_ms))
            .expression_attribute_values(":next", number(next.seq))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        call = if seen.seq == 0 {
            call.condition_expression("attribute_not_exists(#seq)")
        } else {
            call.condition_expression("#seq = :seen").expression_attribute_values(":seen", number(seen.seq))
        };
        let answer = tokio::time::timeout(self.call_timeout, call.send())
            .await
            .map_err(|_| format!("writing {} took over {:?}", self.name, self.call_timeout))?;
        match answer {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(failure)) => match failure.into_err() {
                UpdateItemError::ConditionalCheckFailedException(lost) => {
                    Ok(Some(lost.item().map(stored_from).transpose()?))
                }
                other => Err(format!("writing {}: {}", self.name, DisplayErrorContext(&other))),
            },
            Err(other) => Err(format!("writing {}: {}", self.name, DisplayErrorContext(&other))),
        }
    }
}

/// The item's three numbers; an item someone else shaped is an error (the table is not ours).
fn stored_from(item: &HashMap<String, AttributeValue>) -> Result<Stored, String> {
    let number = |name: &str| {
        item.get(name)
            .and_then(|value| value.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("the budget item has no whole number {name}"))
    };
    Ok(Stored { seq: number("seq")?, milli_tokens: number("milliTokens")?, at_ms: number("atMs")? })
}

/// Thousandths of a token the item holds at `now_ms`: what it held, refilled at `rate` a second
/// since its stamp, at most `burst`; a new bucket (no item yet) is full.
fn refilled(stored: Stored, now_ms: u64, rate: f64, burst: f64) -> u64 {
    let burst_milli = (burst * MILLI as f64) as u64;
    if stored.seq == 0 {
        return burst_milli;
    }
    // `rate` tokens a second is `rate` thousandths a millisecond.
    let elapsed_ms = now_ms.saturating_sub(stored.at_ms);
    (stored.milli_tokens as f64 + elapsed_ms as f64 * rate).min(burst_milli as f64) as u64
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
