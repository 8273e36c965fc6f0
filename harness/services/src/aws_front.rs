//! A front for moto that behaves more like AWS where the benchmarks need it: every request waits
//! a network latency before it is forwarded, and operations can be metered by token buckets, as
//! AWS throttles its APIs, answering `Throttling` beyond them. It counts requests per operation,
//! forwarded and throttled, as the service sees them (the SDK's retries included).
//!
//! HTTP/1.1 only, as the SDK speaks to a plain-HTTP endpoint: each request (Content-Length
//! bodies) is forwarded on a fresh connection to moto, and the answer relayed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// AWS's kind of token bucket: `burst` tokens, refilled at `per_second`; a request without a
/// token is refused, not queued.
#[derive(Debug)]
pub struct ApiBucket {
    pub name: &'static str,
    /// Which operations draw on it.
    pub operations: Vec<&'static str>,
    pub burst: f64,
    pub per_second: f64,
    tokens: f64,
    refilled: Instant,
}

impl ApiBucket {
    pub fn new(name: &'static str, operations: &[&'static str], burst: u32, per_second: u32) -> ApiBucket {
        ApiBucket {
            name,
            operations: operations.to_vec(),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            tokens: f64::from(burst),
            refilled: Instant::now(),
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        self.tokens = (self.tokens + (now - self.refilled).as_secs_f64() * self.per_second).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill_fully(&mut self) {
        self.tokens = self.burst;
        self.refilled = Instant::now();
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrontCounts {
    /// Requests forwarded to moto, per operation.
    pub forwarded: BTreeMap<String, usize>,
    /// Requests answered `Throttling`, per operation.
    pub throttled: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
struct State {
    buckets: Vec<ApiBucket>,
    counts: FrontCounts,
    /// When each forwarded request of an operation was answered, since the last reset.
    answered_at: BTreeMap<String, Vec<Instant>>,
}

pub struct AwsFront {
    pub port: u16,
    state: Arc<Mutex<State>>,
    /// While set, the service is gone: connections are dropped unanswered.
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl AwsFront {
    /// Fronts moto on `backend_port`: `latency` before each request is forwarded, and `buckets`
    /// metering the operations they name (others pass unmetered).
    pub async fn start(backend_port: u16, latency: Duration, buckets: Vec<ApiBucket>) -> AwsFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the AWS front");
        let port = listener.local_addr().expect("front address").port();
        let state = Arc::new(Mutex::new(State { buckets, ..State::default() }));
        let down = Arc::new(AtomicBool::new(false));
        let (shared, gone) = (state.clone(), down.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if gone.load(Ordering::SeqCst) {
                    continue;
                }
                let (state, gone) = (shared.clone(), gone.clone());
                tokio::spawn(async move {
                    let _ = serve(client, backend_port, latency, state, gone).await;
                });
            }
        });
        AwsFront { port, state, down, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn counts(&self) -> FrontCounts {
        self.state.lock().map(|s| s.counts.clone()).unwrap_or_default()
    }

    /// When the forwarded requests of `operation` were answered since the last reset.
    pub fn answered_at(&self, operation: &str) -> Vec<Instant> {
        self.state.lock().map(|s| s.answered_at.get(operation).cloned().unwrap_or_default()).unwrap_or_default()
    }

    /// The service goes away, mid-request or not: every request from now on is dropped
    /// unanswered (the SDK sees a reset connection), until [`AwsFront::restore`].
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Clears the counts and fills every bucket, as after a quiet minute.
    pub fn reset(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.counts = FrontCounts::default();
            state.answered_at.clear();
            state.buckets.iter_mut().for_each(ApiBucket::refill_fully);
        }
    }
}

impl Drop for AwsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct Request {
    pub(crate) head: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = String::from_utf8_lossy(&self.head);
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }

    /// The operation: `X-Amz-Target` for JSON protocols (DynamoDB), `Action=` for query ones
    /// (ELBv2, EC2, Auto Scaling), else the method and path (S3).
    fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or_default().to_owned();
        }
        let body = String::from_utf8_lossy(&self.body);
        if let Some(action) = body.split('&').find_map(|pair| pair.strip_prefix("Action=")) {
            return action.to_owned();
        }
        String::from_utf8_lossy(&self.head)
            .lines()
            .next()
            .unwrap_or_default()
            .rsplit_once(' ')
            .map(|(m, _)| m.to_owned())
            .unwrap_or_default()
    }
}

/// Reads up to the end of the head, then the Content-Length body; `None` at a clean end.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head: Vec<u8> = buffer.drain(..head_end).collect();
    let mut request = Request { head, body: Vec::new() };
    let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buffer.len() < length {
        let mut chunk = [0u8; 64 * 1024];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    request.body = buffer.drain(..length).collect();
    Ok(Some(request))
}

fn throttled_answer(operation: &str) -> Vec<u8> {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded ({operation})</Message></Error><RequestId>front</RequestId></ErrorResponse>"
    );
    format!("HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

async fn serve(
    mut client: TcpStream,
    backend_port: u16,
    latency: Duration,
    state: Arc<Mutex<State>>,
    down: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    while let Some(request) = read_message(&mut client, &mut buffer).await? {
        tokio::time::sleep(latency).await;
        if down.load(Ordering::SeqCst) {
            return Err(std::io::ErrorKind::ConnectionReset.into());
        }
        let operation = request.operation();
        let allowed = {
            let mut state = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            let now = Instant::now();
            let allowed = state
                .buckets
                .iter_mut()
                .filter(|b| b.operations.contains(&operation.as_str()))
                .all(|b| b.try_take(now));
            let counts = if allowed { &mut state.counts.forwarded } else { &mut state.counts.throttled };
            *counts.entry(operation.clone()).or_default() += 1;
            allowed
        };
        if !allowed {
            client.write_all(&throttled_answer(&operation)).await?;
            continue;
        }
        let mut backend = TcpStream::connect(("127.0.0.1", backend_port)).await?;
        backend.write_all(&request.head).await?;
        backend.write_all(&request.body).await?;
        let mut answer_buffer = Vec::new();
        let answer = read_message(&mut backend, &mut answer_buffer)
            .await?
            .ok_or_else(|| std::io::Error::other("moto closed without answering"))?;
        if down.load(Ordering::SeqCst) {
            // Done, but the answer is lost on the way: the caller cannot know it was stored.
            return Err(std::io::ErrorKind::ConnectionReset.into());
        }
        if let Ok(mut state) = state.lock() {
            state.answered_at.entry(operation).or_default().push(Instant::now());
        }
        client.write_all(&answer.head).await?;
        client.write_all(&answer.body).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = ApiBucket::new("describe", &["DescribeTargetHealth"], 3, 10);
        let start = bucket.refilled;
        assert_eq!((0..5).filter(|_| bucket.try_take(start)).count(), 3);
        // A tenth of a second refills one token.
        assert!(bucket.try_take(start + Duration::from_millis(100)));
        assert!(!bucket.try_take(start + Duration::from_millis(100)));
    }
}
