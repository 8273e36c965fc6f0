//! RabbitMQ over AMQP 0-9-1 (lapin): manual acknowledgements with a bounded prefetch.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPUri, AMQPUserInfo};
use lapin::Acker;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};

use super::ConnectOptions;
use super::{Endpoint, QueueConsumer, Received};
use crate::credentials::BrokerCredentials;
use crate::error::BrokerError;
use crate::message::{now_ms, BrokerMessage, MessageId};

pub struct AmqpConsumer {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    queue: String,
    endpoint: String,
}

pub struct AmqpHandle {
    acker: Acker,
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
        channel.basic_qos(options.prefetch, BasicQosOptions::default()).await.map_err(protocol)?;
        let consumer = channel
            .basic_consume(
                options.queue.as_str().into(),
                "mq-poller".into(),
                BasicConsumeOptions { no_ack: false, ..BasicConsumeOptions::default() },
                FieldTable::default(),
            )
            .await
            .map_err(protocol)?;
        Ok(AmqpConsumer { connection, channel, consumer, queue: options.queue.clone(), endpoint: name })
    }
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

    async fn next(&mut self, wait: Duration) -> Result<Option<Received<AmqpHandle>>, BrokerError> {
        let delivery = match tokio::time::timeout(wait, self.consumer.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => {
                return Err(BrokerError::Protocol {
                    endpoint: self.endpoint.clone(),
                    message: "the consumer was cancelled".into(),
                })
            }
            Ok(Some(Err(e))) => {
                return Err(BrokerError::Protocol { endpoint: self.endpoint.clone(), message: e.to_string() })
            }
            Ok(Some(Ok(delivery))) => delivery,
        };
        let properties = &delivery.properties;
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
        let id = MessageId::publisher(properties.message_id().as_ref().map(|s| s.as_str().to_owned()));
        let message = BrokerMessage {
            id: String::new(),
            body: delivery.data,
            headers,
            redelivered: delivery.redelivered,
            queue: self.queue.clone(),
            received_at_ms: now_ms(),
        }
        .keyed(id);
        Ok(Some(Received { message, handle: AmqpHandle { acker: delivery.acker } }))
    }

    async fn ack(&mut self, handle: AmqpHandle) -> Result<(), BrokerError> {
        handle
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| BrokerError::Protocol { endpoint: self.endpoint.clone(), message: e.to_string() })
    }

    async fn reject(&mut self, handle: AmqpHandle) -> Result<(), BrokerError> {
        let options = BasicRejectOptions { requeue: false };
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
        if let Err(e) = self.channel.basic_cancel(tag, lapin::options::BasicCancelOptions::default()).await {
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
