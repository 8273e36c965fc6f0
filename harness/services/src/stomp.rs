//! A STOMP 1.2 test client over plain TCP: publishes test messages, and drains or counts what a
//! queue still holds.

use std::collections::HashMap;
use std::time::Duration;

use async_stomp::client::{ClientCodec, Connector, Subscriber};
use async_stomp::{AckMode, FromServer, Message, ToServer};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub struct StompClient {
    frames: Framed<TcpStream, ClientCodec>,
}

impl StompClient {
    pub async fn connect(port: u16, user: &str, password: &str) -> StompClient {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connecting to STOMP");
        let mut frames = Framed::new(tcp, ClientCodec::new());
        let connect = Connector::builder()
            .server(format!("127.0.0.1:{port}"))
            .virtualhost("127.0.0.1")
            .login(user.to_owned())
            .passcode(password.to_owned())
            .msg();
        frames.send(connect).await.expect("CONNECT");
        match frames.next().await {
            Some(Ok(Message { content: FromServer::Connected { .. }, .. })) => {}
            other => panic!("STOMP login failed: {:?}", other.map(|m| m.map(|m| format!("{:?}", m.content)))),
        }
        StompClient { frames }
    }

    /// Sends one persistent message, with `headers` as message properties.
    pub async fn send(&mut self, queue: &str, body: &[u8], headers: &[(&str, &str)]) {
        let mut all = vec![("persistent".to_owned(), "true".to_owned())];
        all.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let message = Message {
            content: ToServer::Send {
                destination: format!("/queue/{queue}"),
                transaction: None,
                headers: Some(all),
                body: Some(body.to_vec()),
            },
            extra_headers: Vec::new(),
        };
        self.frames.send(message).await.expect("SEND");
    }

    /// Takes (and acknowledges) every message on the queue until it has been idle for `idle`.
    pub async fn drain(mut self, queue: &str, idle: Duration) -> Vec<(HashMap<String, String>, Vec<u8>)> {
        self.subscribe_auto(queue).await;
        let mut taken = Vec::new();
        while let Some((_, headers, body)) = self.next_message(idle).await {
            taken.push((headers, body));
        }
        taken
    }

    /// Subscribes with automatic acknowledgement (the broker forgets a message once delivered).
    pub async fn subscribe_auto(&mut self, queue: &str) {
        let subscribe =
            Subscriber::builder().destination(format!("/queue/{queue}")).id("test-auto").ack(AckMode::Auto).subscribe();
        self.frames.send(subscribe).await.expect("SUBSCRIBE");
    }

    /// The next message (message id, headers, body), or `None` after `wait` without one.
    pub async fn next_message(&mut self, wait: Duration) -> Option<(String, HashMap<String, String>, Vec<u8>)> {
        loop {
            match tokio::time::timeout(wait, self.frames.next()).await {
                Ok(Some(Ok(frame))) => {
                    if let FromServer::Message { message_id, headers, body, .. } = frame.content {
                        return Some((message_id, headers.into_iter().collect(), body.unwrap_or_default()));
                    }
                }
                _ => return None,
            }
        }
    }

    /// A receipt for everything sent so far: the broker has it all once this returns.
    pub async fn flush(&mut self) {
        let message =
            Message { content: ToServer::Disconnect { receipt: Some("flush".into()) }, extra_headers: Vec::new() };
        self.frames.send(message).await.expect("DISCONNECT");
        let _ = tokio::time::timeout(Duration::from_secs(30), self.frames.next()).await;
    }
}
