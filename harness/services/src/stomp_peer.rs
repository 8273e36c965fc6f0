//! A scripted STOMP 1.2 server on a free loopback port: it logs anyone in, answers a SUBSCRIBE
//! with the frames a test gives as raw bytes (so a frame can carry what ActiveMQ never sends, such
//! as a header value that is not UTF-8: ActiveMQ re-encodes headers), records the ACKs and NACKs
//! the client sends back, and answers DISCONNECT's receipt. One connection at a time.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct StompPeer {
    pub port: u16,
    settled: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A MESSAGE frame for the subscription `mq-poller` with the id `ID:<id>`, which is also what
/// acknowledges it, escaped as ActiveMQ writes it (`ID\c<id>`), with `headers` given as raw bytes
/// and a `content-length`.
pub fn message_frame(id: &str, headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
    let mut frame = b"MESSAGE\n".to_vec();
    let fixed = format!(
        "destination:/queue/scripted\nsubscription:mq-poller\nmessage-id:ID\\c{id}\nack:ID\\c{id}\ncontent-length:{}\n",
        body.len()
    );
    frame.extend_from_slice(fixed.as_bytes());
    for (name, value) in headers {
        frame.extend_from_slice(name);
        frame.push(b':');
        frame.extend_from_slice(value);
        frame.push(b'\n');
    }
    frame.push(b'\n');
    frame.extend_from_slice(body);
    frame.push(0);
    frame
}

impl StompPeer {
    /// Starts the peer; each SUBSCRIBE is answered with `frames`, in order.
    pub async fn start(frames: Vec<Vec<u8>>) -> StompPeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the STOMP peer");
        let port = listener.local_addr().expect("its address").port();
        let settled = Arc::new(Mutex::new(Vec::new()));
        let record = settled.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serve(stream, &frames, &record).await;
            }
        });
        StompPeer { port, settled, task }
    }

    pub fn url(&self) -> String {
        format!("stomp://127.0.0.1:{}", self.port)
    }

    /// What the client settled, in order: (`ACK` or `NACK`, the `id` header, unescaped).
    pub fn settled(&self) -> Vec<(String, String)> {
        self.settled.lock().expect("the record").clone()
    }
}

impl Drop for StompPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of header `name` in a client frame's text.
fn header<'f>(frame: &'f str, name: &str) -> Option<&'f str> {
    frame.lines().skip(1).take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
}

async fn serve(mut stream: TcpStream, frames: &[Vec<u8>], settled: &Mutex<Vec<(String, String)>>) {
    let mut pending = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let Ok(read) = stream.read(&mut buffer).await else { return };
        if read == 0 {
            return;
        }
        pending.extend_from_slice(&buffer[..read]);
        // The client's frames carry no body with a NUL in it: a NUL ends each.
        while let Some(end) = pending.iter().position(|b| *b == 0) {
            let frame: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&frame[..end]);
            let text = text.trim_start_matches(['\r', '\n']);
            let command = text.lines().next().unwrap_or_default();
            let answer: Vec<u8> = match command {
                "CONNECT" | "STOMP" => b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0".to_vec(),
                "SUBSCRIBE" => frames.concat(),
                "ACK" | "NACK" => {
                    let id = header(text, "id").unwrap_or_default().replace("\\c", ":");
                    settled.lock().expect("the record").push((command.to_owned(), id));
                    Vec::new()
                }
                "DISCONNECT" => {
                    let receipt = header(text, "receipt").unwrap_or_default();
                    let _ = stream.write_all(format!("RECEIPT\nreceipt-id:{receipt}\n\n\0").as_bytes()).await;
                    return;
                }
                _ => Vec::new(),
            };
            if !answer.is_empty() && stream.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
}
