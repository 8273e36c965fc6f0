//! The brokers: endpoints, TLS, failover across an active/standby pair, and the consumer
//! interface the drain loop uses.

use std::time::Duration;

use crate::credentials::BrokerCredentials;
use crate::error::BrokerError;
use crate::message::BrokerMessage;

pub mod amqp;
pub mod stomp;
mod stomp_frames;
mod stomp_writer;

/// What connecting to the broker takes, apart from the credentials: made from the settings
/// (`Settings::connect_options`), so the brokers depend on nothing of the function's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Tried in order (active/standby brokers have two).
    pub endpoints: Vec<Endpoint>,
    pub queue: String,
    /// Messages the broker may send ahead of our acknowledgements, at most.
    pub prefetch: u16,
    /// Bytes received and not yet stored stay within this (`Settings::byte_budget`).
    pub byte_budget: usize,
    /// Keep one delivery window for the whole poll (with `MAX_MESSAGES`, whose acknowledgements
    /// are held back by that window).
    pub window_fixed: bool,
    /// Extra CA certificates (PEM) to trust for the broker's TLS, besides the system's.
    pub ca_bundle: Option<shared::tls::ExtraBundle>,
    pub connect_timeout: Duration,
    /// STOMP heart-beats we offer to send, in milliseconds (0: none).
    pub heartbeat_ms: u32,
    /// A JMS selector for the STOMP subscription (`BROKER_SELECTOR`).
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Stomp,
    Amqp,
}

/// One broker endpoint, parsed from `BROKER_URL`. Credentials never live in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub protocol: Protocol,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// AMQP virtual host (`/` when the URL has no path).
    pub vhost: String,
    /// The URL as given, for AMQP, without any user information.
    pub url: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match (self.protocol, self.tls) {
            (Protocol::Stomp, true) => "stomp+ssl",
            (Protocol::Stomp, false) => "stomp",
            (Protocol::Amqp, true) => "amqps",
            (Protocol::Amqp, false) => "amqp",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl Endpoint {
    /// Parses one entry of `BROKER_URL`. Errors say what is wrong and which scheme and port to
    /// use, and never repeat credentials a URL may carry.
    pub fn parse(url: &str) -> Result<Endpoint, BrokerError> {
        let bad = |reason: &str| BrokerError::BadUrl { url: strip_userinfo(url), reason: reason.to_owned() };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("no scheme; expected stomp+ssl://, stomp://, amqps:// or amqp://"))?;
        let (protocol, tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "stomp+ssl" | "stomp+tls" | "stomps" => (Protocol::Stomp, true, 61614),
            "stomp" => (Protocol::Stomp, false, 61613),
            "amqps" => (Protocol::Amqp, true, 5671),
            "amqp" => (Protocol::Amqp, false, 5672),
            "ssl" => return Err(bad("ssl:// is ActiveMQ's OpenWire endpoint (port 61617), which mq-poller does not speak; use the broker's STOMP endpoint, stomp+ssl://<host>:61614")),
            "tcp" => return Err(bad("tcp:// is ActiveMQ's OpenWire endpoint, which mq-poller does not speak; use STOMP: stomp+ssl://<host>:61614 (or stomp://<host>:61613 without TLS)")),
            "amqp+ssl" => return Err(bad("use amqps://<host>:5671 for AMQP over TLS")),
            _ => return Err(bad("unsupported scheme; expected stomp+ssl://, stomp://, amqps:// or amqp://")),
        };
        if rest.contains('@') {
            // Credentials belong in BROKER_SECRET_ID, not in a URL that ends up in logs.
            return Err(bad("credentials in the URL; put them in the secret named by BROKER_SECRET_ID"));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let vhost = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
        Ok(Endpoint {
            protocol,
            tls,
            host: host.to_owned(),
            port: port.unwrap_or(default_port),
            vhost,
            url: url.to_owned(),
        })
    }
}

/// `host[:port]`, with IPv6 literals in brackets (`[::1]:61613`); the host comes back without
/// them. `None` when a port is given and is not a port.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port = |text: &str| text.parse::<u16>().ok().filter(|p| *p > 0);
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(port(p)?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, p)) => Some((host, Some(port(p)?))),
        None => Some((authority, None)),
    }
}

/// Parses every entry of `BROKER_URL` (at init), naming the position of a bad one.
pub fn parse_endpoints(urls: &[String]) -> Result<Vec<Endpoint>, String> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| Endpoint::parse(url).map_err(|e| format!("BROKER_URL entry {} of {}: {e}", i + 1, urls.len())))
        .collect()
}

fn strip_userinfo(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…{}", &url[at..]),
        _ => url.to_owned(),
    }
}

/// A received message and what acknowledging it takes.
pub struct Received<H> {
    pub message: BrokerMessage,
    pub handle: H,
    /// Set when the broker's frame could not be decoded: why. The message's body is then the
    /// frame's raw bytes, to be parked whole; it has no headers.
    pub undecodable: Option<String>,
}

impl<H> Received<H> {
    pub fn decoded(message: BrokerMessage, handle: H) -> Received<H> {
        Received { message, handle, undecodable: None }
    }

    fn map_handle<G>(self, f: impl FnOnce(H) -> G) -> Received<G> {
        Received { message: self.message, handle: f(self.handle), undecodable: self.undecodable }
    }
}

/// What the drain loop needs of a broker connection.
#[allow(async_fn_in_trait)]
pub trait QueueConsumer {
    type Handle;
    /// Called before each batch: fits the broker's delivery window to the byte budget and the
    /// bodies seen, and answers it (the messages the broker may have sent and not yet had
    /// acknowledged), so a batch never waits for messages the window holds back.
    async fn fit_window(&mut self) -> Result<usize, BrokerError>;
    /// The next message, or `None` when none came within `wait`.
    async fn next(&mut self, wait: Duration) -> Result<Option<Received<Self::Handle>>, BrokerError>;
    /// The message is stored: the broker may forget it.
    async fn ack(&mut self, handle: Self::Handle) -> Result<(), BrokerError>;
    /// The message can never be stored: to the broker's dead-letter handling, not back to us.
    async fn reject(&mut self, handle: Self::Handle) -> Result<(), BrokerError>;
    /// The poll takes no more: the broker may stop sending (what it already sent is still
    /// acknowledged). Messages it would send now would only go back unprocessed, as redeliveries.
    async fn stop_deliveries(&mut self);
    /// Closes the connection; whatever was not acknowledged is redelivered by the broker. True
    /// when the broker confirmed it had processed everything sent before (STOMP's DISCONNECT
    /// receipt, AMQP's close-ok).
    async fn close(self) -> bool;
}

/// A consumer on whichever endpoint answered first.
pub enum AnyConsumer {
    Stomp(stomp::StompConsumer),
    /// Boxed: lapin's consumer is several times the size of the STOMP one.
    Amqp(Box<amqp::AmqpConsumer>),
}

pub enum AnyHandle {
    Stomp(stomp::StompHandle),
    Amqp(amqp::AmqpHandle),
}

impl QueueConsumer for AnyConsumer {
    type Handle = AnyHandle;

    async fn fit_window(&mut self) -> Result<usize, BrokerError> {
        match self {
            AnyConsumer::Stomp(c) => c.fit_window().await,
            AnyConsumer::Amqp(c) => c.fit_window().await,
        }
    }

    async fn next(&mut self, wait: Duration) -> Result<Option<Received<AnyHandle>>, BrokerError> {
        Ok(match self {
            AnyConsumer::Stomp(c) => c.next(wait).await?.map(|r| r.map_handle(AnyHandle::Stomp)),
            AnyConsumer::Amqp(c) => c.next(wait).await?.map(|r| r.map_handle(AnyHandle::Amqp)),
        })
    }

    async fn ack(&mut self, handle: AnyHandle) -> Result<(), BrokerError> {
        match (self, handle) {
            (AnyConsumer::Stomp(c), AnyHandle::Stomp(h)) => c.ack(h).await,
            (AnyConsumer::Amqp(c), AnyHandle::Amqp(h)) => c.ack(h).await,
            // A handle from another connection: claiming success would lose the message.
            _ => Err(mismatched_handle()),
        }
    }

    async fn reject(&mut self, handle: AnyHandle) -> Result<(), BrokerError> {
        match (self, handle) {
            (AnyConsumer::Stomp(c), AnyHandle::Stomp(h)) => c.reject(h).await,
            (AnyConsumer::Amqp(c), AnyHandle::Amqp(h)) => c.reject(h).await,
            _ => Err(mismatched_handle()),
        }
    }

    async fn stop_deliveries(&mut self) {
        match self {
            AnyConsumer::Stomp(c) => c.stop_deliveries().await,
            AnyConsumer::Amqp(c) => c.stop_deliveries().await,
        }
    }

    async fn close(self) -> bool {
        match self {
            AnyConsumer::Stomp(c) => c.close().await,
            AnyConsumer::Amqp(c) => (*c).close().await,
        }
    }
}

fn mismatched_handle() -> BrokerError {
    BrokerError::Internal("a message handle of the other protocol; nothing was acknowledged".into())
}

/// Connects to the first endpoint of `BROKER_URL` that answers (active/standby brokers have
/// two) and subscribes to the queue.
pub async fn connect_first_available(
    options: &ConnectOptions,
    credentials: &BrokerCredentials,
) -> Result<(AnyConsumer, Endpoint), BrokerError> {
    if options.endpoints.is_empty() {
        return Err(BrokerError::NoEndpoint);
    }
    let mut failures = Vec::new();
    for endpoint in &options.endpoints {
        let endpoint = endpoint.clone();
        let attempt = match endpoint.protocol {
            Protocol::Stomp => {
                stomp::StompConsumer::connect(&endpoint, options, credentials).await.map(AnyConsumer::Stomp)
            }
            Protocol::Amqp => amqp::AmqpConsumer::connect(&endpoint, options, credentials)
                .await
                .map(|c| AnyConsumer::Amqp(Box::new(c))),
        };
        match attempt {
            Ok(consumer) => return Ok((consumer, endpoint)),
            Err(error) => {
                tracing::warn!(endpoint = %endpoint, error = %error, "broker endpoint failed; trying the next");
                failures.push(error);
            }
        }
    }
    Err(all_failed(failures))
}

/// One error for every endpoint having failed: a login refusal when any endpoint answered one
/// (with the active refusing a rotated password and the standby down, the credentials are still
/// the thing to read again; each endpoint's failure was logged), else the list.
fn all_failed(mut failures: Vec<BrokerError>) -> BrokerError {
    if let Some(refused) = failures.iter().position(|e| matches!(e, BrokerError::AuthFailed { .. })) {
        let others: Vec<String> =
            failures.iter().filter(|e| !matches!(e, BrokerError::AuthFailed { .. })).map(ToString::to_string).collect();
        let mut refused = failures.swap_remove(refused);
        // The other endpoints' failures stay in the answer, not only in the log.
        if let (BrokerError::AuthFailed { message, .. }, false) = (&mut refused, others.is_empty()) {
            message.push_str(&format!("; the other endpoints: {}", others.join("; ")));
        }
        return refused;
    }
    BrokerError::AllEndpointsFailed(failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_both_protocols_with_default_ports() {
        let e = Endpoint::parse("stomp+ssl://b-1234.mq.us-east-1.amazonaws.com:61614").unwrap();
        assert_eq!((e.protocol, e.tls, e.port), (Protocol::Stomp, true, 61614));
        let e = Endpoint::parse("amqps://b-1234.mq.us-east-1.amazonaws.com").unwrap();
        assert_eq!((e.protocol, e.tls, e.port, e.vhost.as_str()), (Protocol::Amqp, true, 5671, "/"));
        let e = Endpoint::parse("amqp://127.0.0.1:5672/tests").unwrap();
        assert_eq!((e.tls, e.vhost.as_str()), (false, "tests"));
    }

    #[test]
    fn bad_urls_and_urls_with_credentials_are_refused_without_echoing_them() {
        assert!(Endpoint::parse("http://broker:80").is_err());
        assert!(Endpoint::parse("stomp://").is_err());
        assert!(Endpoint::parse("stomp://broker:0").is_err());
        assert!(Endpoint::parse("stomp://broker:61613x").is_err());
        let err = Endpoint::parse("amqps://admin:hunter2@broker:5671").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn openwire_and_misspelt_tls_schemes_name_the_right_one() {
        let reason = |url: &str| Endpoint::parse(url).unwrap_err().to_string();
        assert!(reason("ssl://b-1.mq.us-east-1.amazonaws.com:61617").contains("stomp+ssl://<host>:61614"));
        assert!(reason("tcp://broker:61616").contains("stomp"));
        assert!(reason("amqp+ssl://broker:5671").contains("amqps://<host>:5671"));
    }

    #[test]
    fn ipv6_literals_parse() {
        let e = Endpoint::parse("stomp://[::1]:61613").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 61613));
        let e = Endpoint::parse("amqps://[2001:db8::7]").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("2001:db8::7", 5671));
        assert!(Endpoint::parse("stomp://[::1").is_err());
    }

    #[test]
    fn a_bad_entry_is_named_by_its_position() {
        let urls = ["stomp+ssl://a:61614".to_owned(), "ssl://b:61617".to_owned()];
        let err = parse_endpoints(&urls).unwrap_err();
        assert!(err.starts_with("BROKER_URL entry 2 of 2"), "{err}");
    }
}
