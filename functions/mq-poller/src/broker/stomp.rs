//! ActiveMQ over STOMP 1.2 with client-individual acknowledgement. Frames are async-stomp's
//! codec; the connection (TCP, and TLS through tokio-rustls with our own trust roots) is ours,
//! since the crate's own TLS trusts a fixed root set only, and so are its heart-beats (see
//! `stomp_writer`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_stomp::client::{ClientCodec, Connector, Subscriber};
use async_stomp::{AckMode, FromServer, Message, ToServer};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{Framed, FramedRead};

use super::stomp_frames::{FrameCodec, Incoming, Undecodable};
use super::stomp_writer::{negotiated_interval, StompWriter};
use super::ConnectOptions;
use super::{Endpoint, QueueConsumer, Received};
use crate::credentials::BrokerCredentials;
use crate::error::BrokerError;
use crate::header::{HeaderValue, Headers};
use crate::message::{now_ms, BrokerMessage, MessageId};

/// The receipt asked for with DISCONNECT, and how long to wait for it.
const DISCONNECT_RECEIPT: &str = "mq-poller-disconnect";
const RECEIPT_WAIT: Duration = Duration::from_secs(2);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct StompConsumer {
    frames: FramedRead<ReadHalf<Box<dyn Io>>, FrameCodec>,
    prefetch: u16,
    writer: StompWriter,
    /// How often we beat, as negotiated (none when the broker asked for none).
    pub heartbeat: Option<Duration>,
    queue: String,
    endpoint: String,
}

/// STOMP's headers are all text; those ActiveMQ writes as numbers or booleans (`priority`,
/// `timestamp`, `expires`, `content-length`; `persistent`, `redelivered`) get those types. The
/// names are STOMP's own, which the other sources' properties follow.
fn typed_headers(text: &BTreeMap<String, String>) -> Headers {
    text.iter()
        .map(|(name, value)| {
            let typed = match name.as_str() {
                "priority" | "timestamp" | "expires" | "content-length" if value.parse::<i64>().is_ok() => {
                    HeaderValue::number(value.clone())
                }
                "persistent" | "redelivered" if value == "true" || value == "false" => {
                    HeaderValue::Bool(value == "true")
                }
                _ => HeaderValue::Text(value.clone()),
            };
            (name.clone(), typed)
        })
        .collect()
}

/// The `ack` header of a MESSAGE: what ACK and NACK name.
pub struct StompHandle {
    ack_id: String,
}

/// The SUBSCRIBE frame's extra headers: ActiveMQ's prefetch window, and the selector if set.
fn subscription_headers(options: &ConnectOptions) -> Vec<(String, String)> {
    let mut headers = vec![("activemq.prefetchSize".to_owned(), options.prefetch.to_string())];
    if let Some(selector) = &options.selector {
        headers.push(("selector".to_owned(), selector.clone()));
    }
    headers
}

impl StompConsumer {
    pub async fn connect(
        endpoint: &Endpoint,
        options: &ConnectOptions,
        credentials: &BrokerCredentials,
    ) -> Result<StompConsumer, BrokerError> {
        let name = endpoint.to_string();
        let unreachable = |message: String| BrokerError::Unreachable { endpoint: name.clone(), message };
        let within = options.connect_timeout;
        let tcp = tokio::time::timeout(within, TcpStream::connect((endpoint.host.as_str(), endpoint.port)))
            .await
            .map_err(|_| unreachable(format!("no answer within {within:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let io: Box<dyn Io> = if endpoint.tls {
            let tls_error = |message: String| BrokerError::Tls { endpoint: name.clone(), message };
            let trust = shared::tls::peer_trust(&shared::tls::ShippedRoots::NONE, options.ca_bundle.as_ref())?;
            let server_name =
                rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| tls_error(e.to_string()))?;
            let stream =
                tokio::time::timeout(within, TlsConnector::from(trust.config.clone()).connect(server_name, tcp))
                    .await
                    .map_err(|_| tls_error(format!("no TLS handshake within {within:?}")))?
                    .map_err(|e| tls_error(e.to_string()))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let mut frames = Framed::new(io, ClientCodec::new());
        let protocol = |message: String| BrokerError::Protocol { endpoint: name.clone(), message };

        // The CONNECT frame carries the passcode: it is sent, never logged or printed.
        let connect = Connector::builder()
            .server(format!("{}:{}", endpoint.host, endpoint.port))
            .virtualhost(endpoint.host.clone())
            .login(credentials.username.clone())
            .passcode(credentials.password().to_owned())
            // We offer beats, and ask for none: an idle queue is the idle timeout's to notice.
            .heartbeat(options.heartbeat_ms, 0)
            .msg();
        frames.send(connect).await.map_err(|e| protocol(e.to_string()))?;
        let heartbeat = match tokio::time::timeout(within, frames.next()).await {
            Ok(Some(Ok(Message { content: FromServer::Connected { heartbeat, .. }, .. }))) => {
                negotiated_interval(options.heartbeat_ms, heartbeat.as_deref())
            }
            Ok(Some(Ok(Message { content: FromServer::Error { message, .. }, .. }))) => {
                return Err(BrokerError::AuthFailed {
                    endpoint: name.clone(),
                    user: credentials.username.clone(),
                    message: message.unwrap_or_default(),
                })
            }
            Ok(Some(Ok(_))) => return Err(protocol("unexpected frame instead of CONNECTED".into())),
            Ok(Some(Err(e))) => return Err(protocol(e.to_string())),
            Ok(None) => return Err(protocol("connection closed during login".into())),
            Err(_) => return Err(protocol(format!("no CONNECTED within {within:?}"))),
        };
        // The broker sends nothing more before SUBSCRIBE, so no frame is left in the read
        // buffer (at most a heart-beat's end-of-line) when the connection is split.
        let (read, write) = tokio::io::split(frames.into_inner());
        let writer = StompWriter::spawn(write, heartbeat);
        let frames = FramedRead::new(read, FrameCodec::default());

        let subscribe = Subscriber::builder()
            .destination(format!("/queue/{}", options.queue))
            .id("mq-poller")
            .ack(AckMode::ClientIndividual)
            .headers(subscription_headers(options))
            .subscribe();
        // The prefetch window and the selector travel as extra headers of the SUBSCRIBE frame.
        writer.send(subscribe).await.map_err(protocol)?;
        Ok(StompConsumer {
            frames,
            prefetch: options.prefetch,
            writer,
            heartbeat,
            queue: options.queue.clone(),
            endpoint: name,
        })
    }

    /// A frame the codec refused, as a message to park: its raw bytes as the body, keyed by its
    /// `message-id` as it came (a redelivery, whose headers differ, parks over the same object),
    /// or by the frame's digest without one. Without an id to acknowledge it by, nothing can
    /// settle it: the poll fails, as before.
    fn undecodable(&self, refused: Undecodable) -> Result<Received<StompHandle>, BrokerError> {
        let Undecodable { raw, ack_id, message_id, redelivered, reason } = refused;
        let Some(ack_id) = ack_id else {
            return Err(self.protocol(format!("a frame that cannot be decoded nor acknowledged: {reason}")));
        };
        tracing::warn!(endpoint = %self.endpoint, %reason, bytes = raw.len(), "a frame that cannot be decoded; parking it");
        let id = match message_id {
            Some(id) => MessageId::Broker(format!("undecodable:{}", crate::message::digest(&[&id]))),
            None => MessageId::Missing(BTreeMap::new()),
        };
        let message = BrokerMessage {
            id: String::new(),
            body: raw,
            headers: BTreeMap::new(),
            redelivered,
            queue: self.queue.clone(),
            received_at_ms: now_ms(),
        }
        .keyed(id);
        Ok(Received { message, handle: StompHandle { ack_id }, undecodable: Some(reason) })
    }

    fn protocol(&self, message: String) -> BrokerError {
        BrokerError::Protocol { endpoint: self.endpoint.clone(), message }
    }

    async fn send(&mut self, content: ToServer) -> Result<(), BrokerError> {
        let result = self.writer.send(Message { content, extra_headers: Vec::new() }).await;
        result.map_err(|e| self.protocol(e))
    }
}

impl QueueConsumer for StompConsumer {
    type Handle = StompHandle;

    async fn fit_window(&mut self) -> Result<usize, BrokerError> {
        // Frames are read only as the poll takes them: what ActiveMQ sends ahead waits in the
        // socket's buffers (TCP holds the broker back), not in this process, so the budget is the
        // poll's batches alone and the window stays as subscribed.
        Ok(usize::from(self.prefetch))
    }

    async fn next(&mut self, wait: Duration) -> Result<Option<Received<StompHandle>>, BrokerError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Framed keeps partial frames across a timed-out poll, so this is cancel-safe.
            let frame = match tokio::time::timeout_at(deadline, self.frames.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(self.protocol("the broker closed the connection".into())),
                Ok(Some(Err(e))) => return Err(self.protocol(e.to_string())),
                Ok(Some(Ok(Incoming::Frame(frame)))) => frame,
                Ok(Some(Ok(Incoming::Undecodable(refused)))) => return self.undecodable(refused).map(Some),
            };
            match frame.content {
                FromServer::Message { message_id, ack, headers, body, .. } => {
                    let text: BTreeMap<String, String> = headers.into_iter().collect();
                    let redelivered = text.get("redelivered").is_some_and(|v| v == "true");
                    let ack_id = ack.unwrap_or_else(|| message_id.clone());
                    let message = BrokerMessage {
                        id: String::new(),
                        body: body.unwrap_or_default().into(),
                        headers: typed_headers(&text),
                        redelivered,
                        queue: self.queue.clone(),
                        received_at_ms: now_ms(),
                    }
                    .keyed(MessageId::broker(Some(message_id), text));
                    return Ok(Some(Received::decoded(message, StompHandle { ack_id })));
                }
                FromServer::Error { message, .. } => return Err(self.protocol(message.unwrap_or_default())),
                // Receipts and the like: nothing to do with them here.
                _ => continue,
            }
        }
    }

    async fn ack(&mut self, handle: StompHandle) -> Result<(), BrokerError> {
        self.send(ToServer::Ack { id: handle.ack_id, transaction: None }).await
    }

    async fn reject(&mut self, handle: StompHandle) -> Result<(), BrokerError> {
        self.send(ToServer::Nack { id: handle.ack_id, transaction: None }).await
    }

    async fn stop_deliveries(&mut self) {
        // Left to the prefetch window (never more than the poll takes): STOMP 1.2 does not say
        // whether a message may still be acknowledged once its subscription is gone.
    }

    async fn close(mut self) -> bool {
        // DISCONNECT with a receipt, awaited: the broker answers it only once it has processed
        // every frame before it, so the last ACKs are not lost to a closing socket.
        let mut confirmed = false;
        if self.send(ToServer::Disconnect { receipt: Some(DISCONNECT_RECEIPT.into()) }).await.is_ok() {
            let receipt = async {
                while let Some(Ok(incoming)) = self.frames.next().await {
                    let Incoming::Frame(frame) = incoming else { continue };
                    if matches!(&frame.content, FromServer::Receipt { receipt_id } if receipt_id == DISCONNECT_RECEIPT)
                    {
                        return true;
                    }
                }
                false
            };
            confirmed = tokio::time::timeout(RECEIPT_WAIT, receipt).await.unwrap_or(false);
        }
        self.writer.close().await;
        confirmed
    }
}
