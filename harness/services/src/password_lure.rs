//! A hostile stand-in for a database: it speaks just enough of PostgreSQL's protocol to ask
//! every client for its password in clear text, records what it is sent, and refuses the login.
//! Tests point a secret at it to show which credentials a function would hand to a host the
//! secret names.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// PostgreSQL's code for a client asking to switch to TLS.
const SSL_REQUEST: i32 = 80_877_103;

pub struct PasswordLure {
    pub port: u16,
    received: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PasswordLure {
    pub async fn start() -> PasswordLure {
        PasswordLure::start_accepting(None).await
    }

    /// As [`start`](Self::start), but the login of `user` (any password) is accepted and its
    /// simple queries answered, as a proxy on the path to a real server would let them through:
    /// so a client gets past its checks of that user and shows what it sends next.
    pub async fn accepting(user: &str) -> PasswordLure {
        PasswordLure::start_accepting(Some(user.to_owned())).await
    }

    async fn start_accepting(accepted: Option<String>) -> PasswordLure {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the lure");
        let port = listener.local_addr().expect("lure address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (record, accepted) = (record.clone(), accepted.clone());
                tokio::spawn(async move {
                    let _ = ask_for_password(stream, accepted.as_deref(), &record).await;
                });
            }
        });
        PasswordLure { port, received, task }
    }

    /// Every password a client sent, in order.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for PasswordLure {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Declines TLS, asks for a clear-text password and records it; refuses the login, unless the
/// user is `accepted`, whose simple queries then get an empty answer until the client leaves.
async fn ask_for_password(mut stream: TcpStream, accepted: Option<&str>, record: &Mutex<Vec<String>>) -> Option<()> {
    let startup = loop {
        let length = stream.read_i32().await.ok()?;
        let code = stream.read_i32().await.ok()?;
        let mut rest = vec![0; usize::try_from(length).ok()?.checked_sub(8)?];
        stream.read_exact(&mut rest).await.ok()?;
        if code == SSL_REQUEST {
            stream.write_all(b"N").await.ok()?;
            continue;
        }
        break rest;
    };
    // The startup parameters: key\0value\0 pairs.
    let words: Vec<&[u8]> = startup.split(|b| *b == 0).collect();
    let user = words.windows(2).find(|w| w[0] == b"user").map(|w| String::from_utf8_lossy(w[1]).into_owned());
    // AuthenticationCleartextPassword.
    stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.ok()?;
    let (tag, body) = read_message(&mut stream).await?;
    if tag != b'p' {
        return None;
    }
    let password = String::from_utf8_lossy(body.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
    record.lock().unwrap_or_else(|p| p.into_inner()).push(password);
    if user.is_some() && user.as_deref() == accepted {
        // AuthenticationOk, ReadyForQuery; then each query: CommandComplete, ReadyForQuery.
        stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I']).await.ok()?;
        while let Some((tag, _)) = read_message(&mut stream).await {
            if tag != b'Q' {
                return Some(());
            }
            let done = b"SELECT 0\0";
            let mut answer = vec![b'C'];
            answer.extend_from_slice(&i32::try_from(done.len() + 4).ok()?.to_be_bytes());
            answer.extend_from_slice(done);
            answer.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
            stream.write_all(&answer).await.ok()?;
        }
        return Some(());
    }
    // ErrorResponse: FATAL 28P01 invalid_password.
    let mut fields = Vec::new();
    for (kind, text) in [(b'S', "FATAL"), (b'C', "28P01"), (b'M', "password authentication failed")] {
        fields.push(kind);
        fields.extend_from_slice(text.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&i32::try_from(fields.len() + 4).ok()?.to_be_bytes());
    message.extend_from_slice(&fields);
    let _ = stream.write_all(&message).await;
    Some(())
}

/// One message of the client's: its tag and body.
async fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let tag = stream.read_u8().await.ok()?;
    let length = stream.read_i32().await.ok()?;
    let mut body = vec![0; usize::try_from(length).ok()?.checked_sub(4)?];
    stream.read_exact(&mut body).await.ok()?;
    Some((tag, body))
}
