//! A local Lambda Runtime API: the HTTP interface a Lambda function's runtime client polls.
//!
//! It serves `GET /2018-06-01/runtime/invocation/next` (one queued event, with the request id,
//! deadline and function ARN headers), and takes `POST .../invocation/{id}/response`,
//! `.../invocation/{id}/error` and `.../init/error`, as the real one does. A test queues an event
//! with [`RuntimeApi::invoke`] and gets back what the function answered. Beside it, the
//! Extensions API ([`crate::extensions_api`]): each invoke is an `INVOKE` event for the
//! extensions too, and ends once they are all polling again; [`crate::sandbox`] runs a whole
//! execution environment's life on it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

use crate::extensions_api::Extensions;
use crate::lambda_env::{spawn_function, Output};
use crate::process::KillOnDrop;

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(serde_json::Value),
    /// The runtime's error report: `{"errorType", "errorMessage"}`.
    Error(serde_json::Value),
}

impl Answer {
    pub fn response(self) -> serde_json::Value {
        match self {
            Answer::Response(value) => value,
            Answer::Error(error) => panic!("the function returned an error: {error}"),
        }
    }
    pub fn error(self) -> serde_json::Value {
        match self {
            Answer::Error(error) => error,
            Answer::Response(value) => panic!("the function succeeded, expected an error: {value}"),
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Bytes)>,
    waiting: HashMap<String, oneshot::Sender<Answer>>,
    first_next_at: Option<Instant>,
    init_error: Option<serde_json::Value>,
    next_id: u64,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    pub extensions: Extensions,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the runtime API");
        let addr = listener.local_addr().expect("runtime API address");
        let state = Arc::new(Mutex::new(State::default()));
        let queued = Arc::new(Notify::new());
        let extensions = Extensions::default();
        let (server_state, server_queued, server_extensions) = (state.clone(), queued.clone(), extensions.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, queued, extensions) =
                    (server_state.clone(), server_queued.clone(), server_extensions.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        route(request, state.clone(), queued.clone(), extensions.clone())
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        RuntimeApi { addr, state, queued, extensions, server }
    }

    /// Queues `event` and waits for the function's answer.
    pub async fn invoke(&self, event: &serde_json::Value, limit: Duration) -> Answer {
        let body = Bytes::from(serde_json::to_vec(event).expect("serialising the event"));
        self.invoke_bytes(body, limit).await
    }

    pub async fn invoke_bytes(&self, body: Bytes, limit: Duration) -> Answer {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.lock().expect("runtime API state");
            state.next_id += 1;
            let id = request_id(state.next_id);
            state.waiting.insert(id.clone(), sender);
            state.queue.push_back((id.clone(), body));
            self.extensions.deliver(serde_json::json!({
                "eventType": "INVOKE",
                "deadlineMs": deadline_ms(),
                "requestId": id,
                "invokedFunctionArn": FUNCTION_ARN,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id(&id)},
            }));
        }
        self.queued.notify_one();
        match tokio::time::timeout(limit, receiver).await {
            Ok(Ok(answer)) => {
                // Lambda ends the invoke when the extensions are polling again, too.
                if !self.extensions.wait_idle(limit).await {
                    panic!(
                        "an extension did not call next within {limit:?} of the invoke: {:?}",
                        self.extensions.list()
                    );
                }
                answer
            }
            Ok(Err(_)) => panic!("the runtime API dropped the invocation"),
            Err(_) => panic!("no answer within {limit:?}: {:?}", self.init_error()),
        }
    }

    /// When the function first asked for an event: the end of its init phase.
    pub fn first_next_at(&self) -> Option<Instant> {
        self.state.lock().expect("runtime API state").first_next_at
    }

    pub fn init_error(&self) -> Option<serde_json::Value> {
        self.state.lock().expect("runtime API state").init_error.clone()
    }

    /// Starts a function binary against this API with `extra_env` on top of Lambda's variables.
    pub fn spawn_function(
        &self,
        binary: &Path,
        name: &str,
        extra_env: &[(String, String)],
        output: Output,
    ) -> KillOnDrop {
        spawn_function(binary, &self.addr.to_string(), name, extra_env, output)
    }
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:local";

/// Five minutes from now, in epoch milliseconds.
fn deadline_ms() -> u64 {
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(300);
    deadline.as_millis() as u64
}

async fn route(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    extensions: Extensions,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["2020-01-01", "extension", rest @ ..] = segments.as_slice() {
        let answer = extensions.route(request, rest).await;
        return Ok(answer.unwrap_or_else(|| status(StatusCode::NOT_FOUND, r#"{"errorMessage":"not found"}"#)));
    }
    let answer = match (method, segments.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => next(state, queued).await,
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
            let answer = if *kind == "response" { Answer::Response(value) } else { Answer::Error(value) };
            let sender = state.lock().expect("runtime API state").waiting.remove(*id);
            match sender {
                Some(sender) => {
                    let _ = sender.send(answer);
                    status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                None => status(StatusCode::BAD_REQUEST, r#"{"errorMessage":"unknown request id"}"#),
            }
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            state.lock().expect("runtime API state").init_error = serde_json::from_slice(&body).ok();
            status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => status(StatusCode::NOT_FOUND, r#"{"errorMessage":"not found"}"#),
    };
    Ok(answer)
}

async fn next(state: Arc<Mutex<State>>, queued: Arc<Notify>) -> Response<Full<Bytes>> {
    state.lock().expect("runtime API state").first_next_at.get_or_insert_with(Instant::now);
    loop {
        let notified = queued.notified();
        if let Some((id, body)) = state.lock().expect("runtime API state").queue.pop_front() {
            return Response::builder()
                .status(StatusCode::OK)
                .header("Lambda-Runtime-Aws-Request-Id", &id)
                .header("Lambda-Runtime-Deadline-Ms", deadline_ms().to_string())
                .header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                .header("Lambda-Runtime-Trace-Id", trace_id(&id))
                .header("Content-Type", "application/json")
                .body(Full::new(body))
                .unwrap_or_default();
        }
        notified.await;
    }
}

/// The request id of the `n`th invocation (from 1).
pub fn request_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// The X-Ray trace header Lambda would hand the invocation `request_id`: one trace per
/// invocation, so a test can tell which lines belong to which.
pub fn trace_id(request_id: &str) -> String {
    let digits: String = request_id.chars().filter(char::is_ascii_hexdigit).collect();
    let tail = &digits[digits.len().saturating_sub(24)..];
    format!("Root=1-6744c000-{tail:0>24};Sampled=1")
}

fn status(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response
}
