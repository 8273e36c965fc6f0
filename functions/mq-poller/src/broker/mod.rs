//! The brokers: endpoints, TLS, failover across an active/standby pair, and the consumer
//! interface the drain loop uses.

use std::time::Duration;

use crate::credentials::BrokerCredentials;
use crate::error::BrokerError;
use crate::message::BrokerMessage;
use crate::settings::Settings;

pub mod amqp;
pub mod stomp;

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
    pub fn parse(url: &str) -> Result<Endpoint, BrokerError> {
        let bad = || BrokerError::BadUrl(strip_userinfo(url));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let (protocol, tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "stomp+ssl" | "stomp+tls" | "stomps" | "ssl" => (Protocol::Stomp, true, 61614),
            "stomp" => (Protocol::Stomp, false, 61613),
            "amqps" => (Protocol::Amqp, true, 5671),
            "amqp" => (Protocol::Amqp, false, 5672),
            _ => return Err(bad()),
        };
        if rest.contains('@') {
            // Credentials belong in BROKER_SECRET_ID, not in a URL that ends up in logs.
            return Err(bad());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
            None => (authority, default_port),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let vhost = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
        Ok(Endpoint { protocol, tls, host: host.to_owned(), port, vhost, url: url.to_owned() })
    }
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
}

/// What the drain loop needs of a broker connection.
#[allow(async_fn_in_trait)]
pub trait QueueConsumer {
    type Handle;
    /// The next message, or `None` when none came within `wait`.
    async fn next(&mut self, wait: Duration) -> Result<Option<Received<Self::Handle>>, BrokerError>;
    /// The message is stored: the broker may forget it.
    async fn ack(&mut self, handle: Self::Handle) -> Result<(), BrokerError>;
    /// The message can never be stored: to the broker's dead-letter handling, not back to us.
    async fn reject(&mut self, handle: Self::Handle) -> Result<(), BrokerError>;
    /// Closes the connection; whatever was not acknowledged is redelivered by the broker.
    async fn close(self);
}

/// A consumer on whichever endpoint answered first.
pub enum AnyConsumer {
    Stomp(stomp::StompConsumer),
    Amqp(amqp::AmqpConsumer),
}

pub enum AnyHandle {
    Stomp(stomp::StompHandle),
    Amqp(amqp::AmqpHandle),
}

impl QueueConsumer for AnyConsumer {
    type Handle = AnyHandle;

    async fn next(&mut self, wait: Duration) -> Result<Option<Received<AnyHandle>>, BrokerError> {
        Ok(match self {
            AnyConsumer::Stomp(c) => c.next(wait).await?.map(|r| Received { message: r.message, handle: AnyHandle::Stomp(r.handle) }),
            AnyConsumer::Amqp(c) => c.next(wait).await?.map(|r| Received { message: r.message, handle: AnyHandle::Amqp(r.handle) }),
        })
    }

    async fn ack(&mut self, handle: AnyHandle) -> Result<(), BrokerError> {
        match (self, handle) {
            (AnyConsumer::Stomp(c), AnyHandle::Stomp(h)) => c.ack(h).await,
            (AnyConsumer::Amqp(c), AnyHandle::Amqp(h)) => c.ack(h).await,
            _ => Ok(()),
        }
    }

    async fn reject(&mut self, handle: AnyHandle) -> Result<(), BrokerError> {
        match (self, handle) {
            (AnyConsumer::Stomp(c), AnyHandle::Stomp(h)) => c.reject(h).await,
            (AnyConsumer::Amqp(c), AnyHandle::Amqp(h)) => c.reject(h).await,
            _ => Ok(()),
        }
    }

    async fn close(self) {
        match self {
            AnyConsumer::Stomp(c) => c.close().await,
            AnyConsumer::Amqp(c) => c.close().await,
        }
    }
}

/// Connects to the first endpoint of `BROKER_URL` that answers (active/standby brokers have
/// two) and subscribes to the queue.
pub async fn connect_first_available(
    settings: &Settings,
    credentials: &BrokerCredentials,
) -> Result<(AnyConsumer, Endpoint), BrokerError> {
    if settings.broker_urls.is_empty() {
        return Err(BrokerError::NoEndpoint);
    }
    let mut failures = Vec::new();
    for url in &settings.broker_urls {
        let endpoint = Endpoint::parse(url)?;
        let attempt = match endpoint.protocol {
            Protocol::Stomp => stomp::StompConsumer::connect(&endpoint, settings, credentials).await.map(AnyConsumer::Stomp),
            Protocol::Amqp => amqp::AmqpConsumer::connect(&endpoint, settings, credentials).await.map(AnyConsumer::Amqp),
        };
        match attempt {
            Ok(consumer) => return Ok((consumer, endpoint)),
            Err(error) => {
                tracing::warn!(endpoint = %endpoint, error = %error, "broker endpoint failed; trying the next");
                failures.push(error.to_string());
            }
        }
    }
    Err(BrokerError::AllEndpointsFailed(failures.join("; ")))
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
        let err = Endpoint::parse("amqps://admin:hunter2@broker:5671").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
