//! RabbitMQ over AMQP 0-9-1 (lapin): manual acknowledgements with a bounded prefetch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPUri, AMQPUserInfo};
use lapin::Acker;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};

use super::ConnectOptions;
use super::{Endpoint, QueueConsumer, Received};
use crate::credentials::BrokerCredentials;
use crate::error::BrokerError;
use crate::header::{nested_map, set_property, HeaderValue, Headers};
use crate::message::{now_ms, BrokerMessage, MessageId};

pub struct AmqpConsumer {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    /// Consumers cancelled to change the window: what the broker sent them before its cancel-ok
    /// is read, in order, before anything of the current one.
    retired: VecDeque<Consumer>,
    window: Window,
    queue: String,
    endpoint: String,
}

pub struct AmqpHandle {
    acker: Acker,
    /// The window (`Window::generation`) it was delivered under.
    generation: u32,
}

/// The largest body the last poll of this process received over AMQP: a warm environment's next
/// poll starts with a window that fits it (a cold one with one message). Only the last poll's, so
/// one large message narrows the window of the next poll, not of every poll after it.
static LAST_POLL_LARGEST_BODY: AtomicUsize = AtomicUsize::new(0);

/// The delivery window, kept within the byte budget. RabbitMQ sends up to `prefetch_count`
/// messages ahead, and lapin reads them all into memory, so the count is the only bound; it never
/// takes a byte `prefetch_size` (RabbitMQ answers it by closing the connection), and a new
/// `basic.qos` applies only to consumers started after it. So a window is changed by cancelling
/// the consumer and consuming again under the new count, and it is sized so that two windows, the
/// one being read and a retired one still unacknowledged, hold at most the budget in bodies the
/// size of the largest seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    count: u16,
    /// Counts the windows of this connection (the consumers' tags).
    generation: u32,
    /// Handed out under the current window and not yet settled.
    unsettled_current: usize,
    /// Handed out under earlier windows and not yet settled.
    unsettled_earlier: usize,
    budget: usize,
    most: u16,
    fixed: bool,
    /// The largest body of this poll so far.
    largest: usize,
}

/// How much a window may grow at once: bodies larger than any seen may still come, so the
/// window opens over a few batches (1, 4, 16, ...) rather than at once.
const GROWTH: u16 = 4;

impl Window {
    fn new(options: &ConnectOptions) -> Window {
        let mut window = Window {
            count: 1,
            generation: 0,
            unsettled_current: 0,
            unsettled_earlier: 0,
            budget: options.byte_budget,
            most: options.prefetch.max(1),
            fixed: options.window_fixed,
            largest: 0,
        };
        window.count = match (window.fixed, LAST_POLL_LARGEST_BODY.load(Ordering::Relaxed)) {
            // One window for the whole poll: sized by what is known, or for bodies of up to
            // 256 KiB (those that fit a DynamoDB item, with room).
            (true, largest) => window.fitting(largest.max(256 * 1024)),
            (false, 0) => 1,
            (false, largest) => window.fitting(largest),
        };
        window
    }

    /// The count that keeps two windows of `largest`-byte bodies within the budget.
    fn fitting(&self, largest: usize) -> u16 {
        let count = self.budget / largest.max(1).saturating_mul(2);
        u16::try_from(count).unwrap_or(u16::MAX).clamp(1, self.most)
    }

    /// The window to change to now, if any: smaller when bodies grew, larger (by at most
    /// `GROWTH`) when they leave room for twice the window; never while an earlier window's
    /// messages are still held, so at most two windows are ever outstanding.
    fn refit(&self, retired: bool) -> Option<u16> {
        if self.fixed || retired || self.unsettled_earlier > 0 || self.largest == 0 {
            return None;
        }
        let target = self.fitting(self.largest).min(self.count.saturating_mul(GROWTH));
        (target < self.count || target >= self.count.saturating_mul(2)).then_some(target)
    }

    fn moved_to(&mut self, count: u16) {
        self.count = count;
        self.generation += 1;
        self.unsettled_earlier += std::mem::take(&mut self.unsettled_current);
    }

    fn received(&mut self, generation: u32, bytes: usize) {
        self.largest = self.largest.max(bytes);
        LAST_POLL_LARGEST_BODY.store(self.largest, Ordering::Relaxed);
        if generation == self.generation {
            self.unsettled_current += 1;
        } else {
            self.unsettled_earlier += 1;
        }
    }

    fn settled(&mut self, generation: u32) {
        let unsettled =
            if generation == self.generation { &mut self.unsettled_current } else { &mut self.unsettled_earlier };
        *unsettled = unsettled.saturating_sub(1);
    }
}

fn consumer_tag(generation: u32) -> String {
    match generation {
        0 => "mq-poller".to_owned(),
        n => format!("mq-poller-{n}"),
    }
}

impl AmqpConsumer {
    pub async fn connect(
        endpoint: &Endpoint,
        options: &ConnectOptions,
        credentials: &BrokerCredentials,
    ) -> Result<AmqpConsumer, BrokerError> {
        let name = endpoint.to_string();
        let mut uri: AMQPUri = endpoint
            .url
            .parse()
            .map_err(|_| BrokerError::BadUrl { url: name.clone(), reason: "not an AMQP URI".into() })?;
        // Credentials go into the parsed URI, never into a string that could be printed.
        uri.authority.userinfo =
            AMQPUserInfo { username: credentials.username.clone(), password: credentials.password().to_owned() };
        // lapin adds these to the system roots it loads itself (its rustls-native-certs feature).
        let cert_chain =
            shared::tls::peer_trust(&shared::tls::ShippedRoots::NONE, options.ca_bundle.as_ref())?.bundle_pem.clone();
        let tls = OwnedTLSConfig { identity: None, cert_chain };
        let runtime = lapin::runtime::default_runtime().map_err(|e| classify(&name, &credentials.username, &e))?;
        let within = options.connect_timeout;
        let connection = tokio::time::timeout(
            within,
            Connection::connect_uri_with_config(uri, ConnectionProperties::default(), tls, runtime),
        )
        .await
        .map_err(|_| BrokerError::Unreachable {
            endpoint: name.clone(),
            message: format!("no answer within {within:?}"),
        })?
        .map_err(|e| classify(&name, &credentials.username, &e))?;
        let protocol = |e: lapin::Error| BrokerError::Protocol { endpoint: name.clone(), message: e.to_string() };
        let channel = connection.create_channel().await.map_err(protocol)?;
        let window = Window::new(options);
        let consumer = consume(&channel, &options.queue, &window).await.map_err(protocol)?;
        Ok(AmqpConsumer {
            connection,
            channel,
            consumer,
            retired: VecDeque::new(),
            window,
            queue: options.queue.clone(),
            endpoint: name,
        })
    }

    fn protocol(&self, error: lapin::Error) -> BrokerError {
        BrokerError::Protocol { endpoint: self.endpoint.clone(), message: error.to_string() }
    }

    /// The next delivery of the retired consumer, then of the current one, with the window it
    /// came under.
    async fn next_delivery(&mut self, wait: Duration) -> Result<Option<(Delivery, u32)>, BrokerError> {
        while let Some(retired) = self.retired.front_mut() {
            // Cancelled and answered: everything it will yield is already in memory, and it ends.
            // Windows change only once the last retired one is gone, so it is the one before.
            match retired.next().await {
                Some(Ok(delivery)) => return Ok(Some((delivery, self.window.generation.saturating_sub(1)))),
                Some(Err(e)) => return Err(self.protocol(e)),
                None => {
                    self.retired.pop_front();
                }
            }
        }
        match tokio::time::timeout(wait, self.consumer.next()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(BrokerError::Protocol {
                endpoint: self.endpoint.clone(),
                message: "the consumer was cancelled".into(),
            }),
            Ok(Some(Err(e))) => Err(self.protocol(e)),
            Ok(Some(Ok(delivery))) => Ok(Some((delivery, self.window.generation))),
        }
    }
}

/// `basic.qos` with the window's count, then a consumer under it.
async fn consume(channel: &Channel, queue: &str, window: &Window) -> Result<Consumer, lapin::Error> {
    channel.basic_qos(window.count, BasicQosOptions::default()).await?;
    channel
        .basic_consume(
            queue.into(),
            consumer_tag(window.generation).as_str().into(),
            BasicConsumeOptions { no_ack: false, ..BasicConsumeOptions::default() },
            FieldTable::default(),
        )
        .await
}

/// Names the failure by lapin's error kinds. lapin's messages never include the password.
fn classify(endpoint: &str, user: &str, error: &lapin::Error) -> BrokerError {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    use lapin::ErrorKind;
    let message = error.to_string();
    let endpoint = endpoint.to_owned();
    match error.kind() {
        // RabbitMQ answers a refused login by closing the connection with 403 ACCESS_REFUSED.
        ErrorKind::ProtocolError(amqp) if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)) => {
            BrokerError::AuthFailed { endpoint, user: user.to_owned(), message }
        }
        ErrorKind::AuthProviderError(_) => BrokerError::AuthFailed { endpoint, user: user.to_owned(), message },
        ErrorKind::IOError(io) | ErrorKind::RuntimeShutdownError(io) => {
            // A failed TLS handshake reaches here as the I/O error rustls raised.
            let tls =
                std::iter::successors(io.get_ref().map(|e| e as &(dyn std::error::Error + 'static)), |e| e.source())
                    .any(|e| e.is::<rustls::Error>());
            if tls {
                BrokerError::Tls { endpoint, message }
            } else {
                BrokerError::Unreachable { endpoint, message }
            }
        }
        _ => BrokerError::Protocol { endpoint, message },
    }
}

/// The headers as mq-poller rendered them before it kept their types, which keys of messages
/// without an id digest: they must not change (tests/mq_poller/poll.rs pins them).
fn key_headers(properties: &lapin::BasicProperties) -> BTreeMap<String, String> {
    let mut headers: BTreeMap<String, String> = properties
        .headers()
        .as_ref()
        .map(|table| table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), header_text(v))).collect())
        .unwrap_or_default();
    for (name, value) in [
        ("content-type", properties.content_type().as_ref().map(|s| s.as_str().to_owned())),
        ("correlation-id", properties.correlation_id().as_ref().map(|s| s.as_str().to_owned())),
        ("type", properties.kind().as_ref().map(|s| s.as_str().to_owned())),
        ("app-id", properties.app_id().as_ref().map(|s| s.as_str().to_owned())),
        ("amqp-timestamp", properties.timestamp().map(|t| t.to_string())),
    ] {
        if let Some(value) = value {
            headers.insert(name.to_owned(), value);
        }
    }
    headers
}

/// The headers table with its types, and the properties and delivery details under the names
/// STOMP gives them (`content-type`, `correlation-id`, ...; a property wins over a header of its
/// name, which is kept as `header.<name>`): the exchange and routing key it came through,
/// priority, expiration, timestamp.
fn typed_headers(delivery: &Delivery) -> Headers {
    let properties = &delivery.properties;
    let mut headers: Headers = properties
        .headers()
        .as_ref()
        .map(|table| table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), typed(v, 1))).collect())
        .unwrap_or_default();
    let text =
        |value: &Option<lapin::types::ShortString>| value.as_ref().map(|s| HeaderValue::Text(s.as_str().to_owned()));
    for (name, value) in [
        ("content-type", text(properties.content_type())),
        ("content-encoding", text(properties.content_encoding())),
        ("correlation-id", text(properties.correlation_id())),
        ("reply-to", text(properties.reply_to())),
        ("expiration", text(properties.expiration())),
        ("message-id", text(properties.message_id())),
        ("type", text(properties.kind())),
        ("user-id", text(properties.user_id())),
        ("app-id", text(properties.app_id())),
        ("timestamp", properties.timestamp().map(|t| HeaderValue::Number(t.to_string()))),
        ("priority", properties.priority().map(|p| HeaderValue::Number(p.to_string()))),
        ("delivery-mode", properties.delivery_mode().map(|m| HeaderValue::Number(m.to_string()))),
        ("exchange", Some(HeaderValue::Text(delivery.exchange.as_str().to_owned()))),
        ("routing-key", Some(HeaderValue::Text(delivery.routing_key.as_str().to_owned()))),
    ] {
        if let Some(value) = value {
            set_property(&mut headers, name, value);
        }
    }
    headers
}

/// An AMQP field value with its type, `depth` levels under the headers map: long strings are
/// bytes on the wire (text when UTF-8); arrays and tables too deep for DynamoDB, or with an empty
/// key, become text.
fn typed(value: &AMQPValue, depth: usize) -> HeaderValue {
    match value {
        AMQPValue::Boolean(b) => HeaderValue::Bool(*b),
        AMQPValue::ShortShortInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::ShortShortUInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::ShortInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::ShortUInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::LongInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::LongUInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::LongLongInt(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::Timestamp(n) => HeaderValue::Number(n.to_string()),
        AMQPValue::Float(f) => HeaderValue::float(f64::from(*f)),
        AMQPValue::Double(f) => HeaderValue::float(*f),
        AMQPValue::DecimalValue(d) => HeaderValue::number(decimal_text(d.value, d.scale)),
        AMQPValue::ShortString(s) => HeaderValue::Text(s.as_str().to_owned()),
        AMQPValue::LongString(s) => HeaderValue::text_or_bytes(s.as_bytes().to_vec()),
        AMQPValue::ByteArray(b) => HeaderValue::Bytes(b.as_slice().to_vec()),
        AMQPValue::FieldArray(_) | AMQPValue::FieldTable(_) if depth >= crate::header::MAX_DEPTH => {
            HeaderValue::Text(header_text(value))
        }
        AMQPValue::FieldArray(items) => {
            HeaderValue::List(items.as_slice().iter().map(|v| typed(v, depth + 1)).collect())
        }
        AMQPValue::FieldTable(table) => {
            nested_map(table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), typed(v, depth + 1))).collect())
        }
        AMQPValue::Void => HeaderValue::Null,
    }
}

/// An AMQP decimal (`value` scaled down by `scale` digits) as decimal text.
fn decimal_text(value: u32, scale: u8) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{whole}.{fraction}")
}

fn header_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

impl QueueConsumer for AmqpConsumer {
    type Handle = AmqpHandle;

    async fn fit_window(&mut self) -> Result<usize, BrokerError> {
        if let Some(count) = self.window.refit(!self.retired.is_empty()) {
            // Cancel first: once the broker answers, it sends this consumer nothing more, and what
            // it sent before is read ahead of the new consumer's (`next_delivery`).
            let cancel = BasicCancelOptions::default();
            self.channel.basic_cancel(self.consumer.tag(), cancel).await.map_err(|e| self.protocol(e))?;
            self.window.moved_to(count);
            let fresh = consume(&self.channel, &self.queue, &self.window).await.map_err(|e| self.protocol(e))?;
            self.retired.push_back(std::mem::replace(&mut self.consumer, fresh));
            tracing::debug!(endpoint = %self.endpoint, window = count, largest_body = self.window.largest, "delivery window changed");
        }
        Ok(usize::from(self.window.count))
    }

    async fn next(&mut self, wait: Duration) -> Result<Option<Received<AmqpHandle>>, BrokerError> {
        let Some((delivery, generation)) = self.next_delivery(wait).await? else { return Ok(None) };
        self.window.received(generation, delivery.data.len());
        let headers = typed_headers(&delivery);
        let key_headers = key_headers(&delivery.properties);
        let id =
            MessageId::publisher(delivery.properties.message_id().as_ref().map(|s| s.as_str().to_owned()), key_headers);
        let message = BrokerMessage {
            id: String::new(),
            // Boxed first: lapin grows the body as frames come, and the spare capacity would
            // stay allocated, uncounted, as long as the message.
            body: delivery.data.into_boxed_slice().into(),
            headers,
            redelivered: delivery.redelivered,
            queue: self.queue.clone(),
            received_at_ms: now_ms(),
        }
        .keyed(id);
        Ok(Some(Received::decoded(message, AmqpHandle { acker: delivery.acker, generation })))
    }

    async fn ack(&mut self, handle: AmqpHandle) -> Result<(), BrokerError> {
        self.window.settled(handle.generation);
        handle
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| BrokerError::Protocol { endpoint: self.endpoint.clone(), message: e.to_string() })
    }

    async fn reject(&mut self, handle: AmqpHandle) -> Result<(), BrokerError> {
        let options = BasicRejectOptions { requeue: false };
        self.window.settled(handle.generation);
        handle
            .acker
            .reject(options)
            .await
            .map(|_| ())
            .map_err(|e| BrokerError::Protocol { endpoint: self.endpoint.clone(), message: e.to_string() })
    }

    async fn stop_deliveries(&mut self) {
        // basic.cancel: the broker sends no more; deliveries already made stay ackable.
        let tag = self.consumer.tag();
        if let Err(e) = self.channel.basic_cancel(tag, BasicCancelOptions::default()).await {
            tracing::warn!(endpoint = %self.endpoint, error = %e, "could not cancel the consumer; the broker may send messages the poll will not take");
        }
    }

    async fn close(self) -> bool {
        let channel = self.channel.close(200, "done".into()).await;
        let connection = self.connection.close(200, "done".into()).await;
        channel.is_ok() && connection.is_ok()
    }
}

#[cfg(test)]
mod window_tests {
    use super::Window;

    const MIB: usize = 1024 * 1024;

    /// The window's answer once a body of `bytes` was seen.
    fn refit_after(w: &mut Window, bytes: usize, retired: bool) -> Option<u16> {
        w.largest = w.largest.max(bytes);
        w.refit(retired)
    }

    fn window(budget: usize, fixed: bool) -> Window {
        Window {
            count: 1,
            generation: 0,
            unsettled_current: 0,
            unsettled_earlier: 0,
            budget,
            most: 200,
            fixed,
            largest: 0,
        }
    }

    #[test]
    fn the_window_opens_from_one_message_by_fours_up_to_what_the_budget_holds_twice() {
        let mut w = window(64 * MIB, false);
        assert_eq!(refit_after(&mut w, 0, false), None, "nothing seen: one message at a time");
        // 4 MiB bodies: two windows of 8 within 64 MiB.
        assert_eq!(refit_after(&mut w, 4 * MIB, false), Some(4));
        w.moved_to(4);
        assert_eq!(refit_after(&mut w, 4 * MIB, false), Some(8));
        w.moved_to(8);
        assert_eq!(refit_after(&mut w, 4 * MIB, false), None, "at its size");
        // Small bodies open it by fours up to PREFETCH.
        let mut w = window(64 * MIB, false);
        let mut counts = Vec::new();
        while let Some(count) = refit_after(&mut w, 1024, false) {
            w.moved_to(count);
            counts.push(count);
        }
        assert_eq!(counts, [4, 16, 64, 200]);
        // A larger body shrinks it, never below one message.
        assert_eq!(refit_after(&mut w, 16 * MIB, false), Some(2));
        assert_eq!(refit_after(&mut w, 100 * MIB, false), Some(1), "a body over the budget is taken alone");
    }

    #[test]
    fn the_window_changes_only_once_the_earlier_one_is_settled_so_two_are_held_at_most() {
        let mut w = window(64 * MIB, false);
        w.unsettled_current = 3;
        w.moved_to(4);
        assert_eq!((w.unsettled_current, w.unsettled_earlier), (0, 3));
        assert_eq!(refit_after(&mut w, MIB, false), None, "the earlier window's messages are unsettled");
        for _ in 0..3 {
            w.settled(0);
        }
        assert_eq!(refit_after(&mut w, MIB, true), None, "a retired consumer still has deliveries to give");
        assert_eq!(refit_after(&mut w, MIB, false), Some(16));
        w.unsettled_current = 1;
        w.settled(1);
        assert_eq!((w.unsettled_current, w.unsettled_earlier), (0, 0));
    }

    #[test]
    fn a_fixed_window_never_changes() {
        let mut w = window(64 * MIB, true);
        assert_eq!(refit_after(&mut w, 4 * MIB, false), None);
        assert_eq!(w.fitting(256 * 1024), 128, "bodies of 256 KiB when none was seen");
    }
}

#[cfg(test)]
mod tests {
    use super::classify;
    use crate::error::BrokerError;
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPSoftError};

    fn kind_of(error: lapin::Error) -> BrokerError {
        classify("amqps://b:5671", "u", &error)
    }

    #[test]
    fn failures_are_named_by_lapins_error_kinds() {
        let refused = AMQPError::new(
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
            "ACCESS_REFUSED - Login was refused".into(),
        );
        assert!(matches!(kind_of(lapin::ErrorKind::ProtocolError(refused).into()), BrokerError::AuthFailed { .. }));
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(matches!(
            kind_of(std::io::Error::new(std::io::ErrorKind::InvalidData, untrusted).into()),
            BrokerError::Tls { .. }
        ));
        let closed = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(kind_of(closed.into()), BrokerError::Unreachable { .. }));
        // A message that merely mentions a login is not a refused login.
        let other = AMQPError::new(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND), "NOT_FOUND - no queue 'login'".into());
        assert!(matches!(kind_of(lapin::ErrorKind::ProtocolError(other).into()), BrokerError::Protocol { .. }));
    }
}
