//! The scheduled poll: connect, take messages in batches, store each batch, and only then
//! acknowledge its messages. Stops when the queue is idle, at MAX_MESSAGES, or before the
//! invocation's deadline, whichever comes first.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::broker::{connect_first_available, QueueConsumer, Received};
use crate::credentials::BrokerCredentials;
use crate::error::PollError;
use crate::message::BrokerMessage;
use crate::settings::Settings;
use crate::store::{park, store_setting_aside_refused, Table};

/// How long a batch waits for more messages once it has one (prefetched ones arrive at once).
const BATCH_LINGER: Duration = Duration::from_millis(20);

/// A batch closes once its bodies reach half the byte budget, so at most two batches (one being
/// written, one being received) are held, each within that plus its last message.
fn batch_bytes(settings: &Settings) -> usize {
    (settings.byte_budget() / 2).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Idle,
    MaxMessages,
    Deadline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollSummary {
    pub endpoint: String,
    pub queue: String,
    pub received: u64,
    pub stored: u64,
    /// Could never be stored in the table (too large for an item without a body bucket, or
    /// refused by DynamoDB): parked in the body bucket, or handed to the broker's dead-letter
    /// handling without one.
    pub rejected: u64,
    /// Of `stored`, those whose body went to the body bucket (too large for an item).
    pub bodies_in_bucket: u64,
    pub stop_reason: StopReason,
}

/// Connects to the first endpoint that answers and drains the queue into `table`, taking
/// messages until `stop_at`.
pub async fn poll_broker(
    table: &Table<'_>,
    settings: &Settings,
    credentials: &BrokerCredentials,
    stop_at: Instant,
) -> Result<PollSummary, PollError> {
    let (mut consumer, endpoint) = connect_first_available(&settings.connect_options(), credentials).await?;
    let mut summary = PollSummary {
        endpoint: endpoint.to_string(),
        queue: settings.queue_name.clone(),
        received: 0,
        stored: 0,
        rejected: 0,
        bodies_in_bucket: 0,
        stop_reason: StopReason::Idle,
    };
    let result = drain_queue(&mut consumer, table, settings, stop_at, &mut summary).await;
    // Whatever is unacknowledged now goes back to the queue when the connection closes.
    if !consumer.close().await {
        tracing::warn!(endpoint = %summary.endpoint, "the broker did not confirm the close; unconfirmed acknowledgements mean redeliveries, which overwrite their own items");
    }
    result.map(|()| summary)
}

/// The loop itself, over any consumer. Two stages: while one batch is written, the next one is
/// received, so the broker and DynamoDB work at the same time; a batch is acknowledged only once
/// it is stored, in the order received.
pub async fn drain_queue<C: QueueConsumer>(
    consumer: &mut C,
    table: &Table<'_>,
    settings: &Settings,
    stop_at: Instant,
    summary: &mut PollSummary,
) -> Result<(), PollError> {
    // Receiving ahead needs room for the next batch in the delivery window while this one is
    // unacknowledged; a batch takes at most half the window, so two messages of window do.
    let mut window = 0;
    let mut batch = next_batch(consumer, settings, stop_at, summary, &mut window).await?;
    // The window is the broker's, after the first fit (fixed for a poll with MAX_MESSAGES).
    let mut acks = Acks::new(settings, window);
    while !batch.is_empty() {
        let overlap = window >= 2;
        let last = summary.stop_reason != StopReason::Idle;
        if last {
            // Nothing more is taken, so nothing more should be sent.
            acks.stop_deliveries(consumer).await?;
        }
        let (undecodable, decoded): (Vec<_>, Vec<_>) = batch.into_iter().partition(|r| r.undecodable.is_some());
        for received in undecodable {
            set_aside_undecodable(consumer, table, &mut acks, received).await?;
            summary.rejected += 1;
        }
        let (fits, too_large): (Vec<_>, Vec<_>) = decoded.into_iter().partition(|r| table.can_store(&r.message));
        let messages: Vec<&BrokerMessage> = fits.iter().map(|r| &r.message).collect();
        let (refused, next) = if overlap && !last {
            tokio::join!(
                store_setting_aside_refused(table, &messages),
                next_batch(consumer, settings, stop_at, summary, &mut window)
            )
        } else {
            (store_setting_aside_refused(table, &messages).await, Ok(Vec::new()))
        };
        // A failed write leaves this batch, and the one received meanwhile, unacknowledged.
        let refused = refused?;
        for received in too_large {
            tracing::error!(
                message_id = %received.message.id,
                bytes = received.message.body.len(),
                "message too large for a DynamoDB item and BODY_BUCKET is not set; rejected to the broker's dead-letter handling"
            );
            consumer.reject(received.handle).await?;
            acks.settled_otherwise();
            summary.rejected += 1;
        }
        let mut refused = refused.into_iter().peekable();
        for (index, received) in fits.into_iter().enumerate() {
            match refused.next_if(|r| r.index == index) {
                // Parked, so the queue keeps moving: no retry could ever store it. In the bucket
                // when there is one (a queue without a dead-letter exchange would drop it).
                Some(refusal) => {
                    match table.bodies {
                        Some(bucket) => {
                            park(table, bucket, &received.message, &refusal.reason).await?;
                            acks.ack(consumer, received.handle).await?;
                        }
                        None => {
                            tracing::error!(message_id = %received.message.id, reason = %refusal.reason, "DynamoDB refused the message; rejected to the broker's dead-letter handling");
                            consumer.reject(received.handle).await?;
                            acks.settled_otherwise();
                        }
                    }
                    summary.rejected += 1;
                }
                None => {
                    acks.ack(consumer, received.handle).await?;
                    summary.stored += 1;
                    summary.bodies_in_bucket += u64::from(!received.message.fits_in_an_item());
                }
            }
        }
        batch =
            if overlap || last { next? } else { next_batch(consumer, settings, stop_at, summary, &mut window).await? };
    }
    if acks.holding() {
        acks.stop_deliveries(consumer).await?;
    }
    Ok(())
}

/// A frame that could not be decoded can never be stored as a message: parked whole in the bucket
/// and acknowledged, so the queue moves on, or without a bucket handed to the broker's dead-letter
/// handling.
async fn set_aside_undecodable<C: QueueConsumer>(
    consumer: &mut C,
    table: &Table<'_>,
    acks: &mut Acks<C::Handle>,
    received: Received<C::Handle>,
) -> Result<(), PollError> {
    let reason = received.undecodable.unwrap_or_default();
    match table.bodies {
        Some(bucket) => {
            park(table, bucket, &received.message, &reason).await?;
            acks.ack(consumer, received.handle).await?;
        }
        None => {
            tracing::error!(message_id = %received.message.id, %reason, "a frame that cannot be decoded and BODY_BUCKET is not set; rejected to the broker's dead-letter handling");
            consumer.reject(received.handle).await?;
            acks.settled_otherwise();
        }
    }
    Ok(())
}

/// Acknowledgements, held back where one would let the broker send more than `MAX_MESSAGES`
/// (it sends up to the prefetch window beyond what is acknowledged) until deliveries are stopped:
/// so no message the poll will not take is delivered, to come back marked redelivered.
struct Acks<H> {
    /// Messages that may be settled while deliveries go on: `MAX_MESSAGES` less the window.
    room: Option<u64>,
    settled: u64,
    held: Vec<H>,
    stopped: bool,
}

impl<H> Acks<H> {
    fn new(settings: &Settings, window: usize) -> Acks<H> {
        let room = settings.max_messages.map(|max| max.saturating_sub(window as u64));
        Acks { room, settled: 0, held: Vec::new(), stopped: false }
    }

    async fn ack<C: QueueConsumer<Handle = H>>(&mut self, consumer: &mut C, handle: H) -> Result<(), PollError> {
        if !self.stopped && self.room.is_some_and(|room| self.settled >= room) {
            self.held.push(handle);
            return Ok(());
        }
        consumer.ack(handle).await?;
        self.settled += 1;
        Ok(())
    }

    /// A reject frees the window as an ack does.
    fn settled_otherwise(&mut self) {
        self.settled += 1;
    }

    fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Stops deliveries (once), then sends the acknowledgements held back, in order.
    async fn stop_deliveries<C: QueueConsumer<Handle = H>>(&mut self, consumer: &mut C) -> Result<(), PollError> {
        if !self.stopped {
            consumer.stop_deliveries().await;
            self.stopped = true;
        }
        for handle in std::mem::take(&mut self.held) {
            consumer.ack(handle).await?;
            self.settled += 1;
        }
        Ok(())
    }
}

/// Up to a batch of messages: stops early when the queue is idle, at `MAX_MESSAGES` or at
/// `stop_at`, saying which in `summary.stop_reason`. First fits the delivery window to the
/// budget, answering it in `window`; the batch takes at most half of it, and half the budget.
async fn next_batch<C: QueueConsumer>(
    consumer: &mut C,
    settings: &Settings,
    stop_at: Instant,
    summary: &mut PollSummary,
    window: &mut usize,
) -> Result<Vec<Received<C::Handle>>, PollError> {
    if summary.stop_reason != StopReason::Idle {
        return Ok(Vec::new());
    }
    *window = consumer.fit_window().await?;
    let size = settings.poll_batch().min((*window / 2).max(1));
    let mut batch = Vec::with_capacity(size);
    let most_bytes = batch_bytes(settings);
    let mut bytes = 0;
    while batch.len() < size && bytes < most_bytes {
        if settings.max_messages.is_some_and(|max| summary.received >= max) {
            summary.stop_reason = StopReason::MaxMessages;
            break;
        }
        let now = Instant::now();
        if now >= stop_at {
            summary.stop_reason = StopReason::Deadline;
            break;
        }
        let left = stop_at - now;
        let wait = if batch.is_empty() { settings.idle_timeout.min(left) } else { BATCH_LINGER.min(left) };
        match consumer.next(wait).await? {
            Some(received) => {
                summary.received += 1;
                bytes += received.message.body.len();
                batch.push(received);
            }
            None if batch.is_empty() => {
                summary.stop_reason =
                    if wait < settings.idle_timeout { StopReason::Deadline } else { StopReason::Idle };
                break;
            }
            None => break,
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use super::*;
    use crate::error::BrokerError;
    use crate::message::{MessageId, MAX_ITEM_BYTES};

    /// A queue of messages that counts the bytes handed out and not yet settled.
    struct CountingConsumer {
        queue: VecDeque<Vec<u8>>,
        outstanding: usize,
        most_outstanding: usize,
    }

    impl QueueConsumer for CountingConsumer {
        type Handle = usize;

        async fn fit_window(&mut self) -> Result<usize, BrokerError> {
            Ok(200)
        }

        async fn next(&mut self, _wait: Duration) -> Result<Option<Received<usize>>, BrokerError> {
            let Some(body) = self.queue.pop_front() else { return Ok(None) };
            let size = body.len();
            self.outstanding += size;
            self.most_outstanding = self.most_outstanding.max(self.outstanding);
            let message = BrokerMessage {
                id: String::new(),
                body: body.into(),
                headers: BTreeMap::new(),
                redelivered: false,
                queue: "q".into(),
                received_at_ms: 1,
            }
            .keyed(MessageId::Missing(BTreeMap::new()));
            Ok(Some(Received::decoded(message, size)))
        }

        async fn ack(&mut self, size: usize) -> Result<(), BrokerError> {
            self.outstanding -= size;
            Ok(())
        }

        async fn reject(&mut self, size: usize) -> Result<(), BrokerError> {
            self.outstanding -= size;
            Ok(())
        }

        async fn stop_deliveries(&mut self) {}

        async fn close(self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn large_messages_never_pile_up_in_memory() {
        // Forty 1 MiB messages, each too large for an item (rejected, never written), with a budget
        // of 16 MiB: unbounded, two batches of 25 would hold 50 MiB at once.
        let mut consumer = CountingConsumer {
            queue: (0..40).map(|_| vec![b'x'; 1024 * 1024]).collect(),
            outstanding: 0,
            most_outstanding: 0,
        };
        let dynamo = aws_smithy_mocks::mock_client!(aws_sdk_dynamodb, []);
        let table = Table {
            dynamo: &dynamo,
            name: "t",
            ttl_days: None,
            write_by: Instant::now() + Duration::from_secs(60),
            bodies: None,
        };
        let settings = Settings::from_lookup(|n| match n {
            "TABLE_NAME" => Some("t".into()),
            "MAX_BYTES_IN_FLIGHT" => Some((16 * 1024 * 1024).to_string()),
            _ => None,
        })
        .unwrap();
        let mut summary = PollSummary {
            endpoint: "-".into(),
            queue: "q".into(),
            received: 0,
            stored: 0,
            rejected: 0,
            bodies_in_bucket: 0,
            stop_reason: StopReason::Idle,
        };
        drain_queue(&mut consumer, &table, &settings, Instant::now() + Duration::from_secs(60), &mut summary)
            .await
            .expect("drained");
        assert_eq!((summary.received, summary.rejected, consumer.outstanding), (40, 40, 0));
        const { assert!(1024 * 1024 > MAX_ITEM_BYTES) };
        // The budget, plus the last message of each of the two batches held: 18 MiB.
        assert!(consumer.most_outstanding <= 18 * 1024 * 1024, "{} bytes held at once", consumer.most_outstanding);
    }
}
