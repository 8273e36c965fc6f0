//! The Extensions API half of the local Runtime API, with Lambda's semantics: an extension
//! registers (`POST /2020-01-01/extension/register`, `Lambda-Extension-Name`, the events it
//! wants) and gets its `Lambda-Extension-Identifier`; it then long-polls
//! `GET /2020-01-01/extension/event/next` for `INVOKE` and `SHUTDOWN` events, and may report
//! `POST .../init/error` or `.../exit/error`. Its calls to `next` are what Lambda waits on: init
//! ends, and an invoke ends, once every extension is polling again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Notify;

/// One registered extension, as the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionView {
    pub name: String,
    pub events: Vec<String>,
    /// How many times it called `next`, and when it first did (the end of its init).
    pub nexts: usize,
    pub first_next_at: Option<std::time::Instant>,
    /// What it reported through `init/error` and `exit/error`: the error type header, the body.
    pub init_error: Option<(String, serde_json::Value)>,
    pub exit_error: Option<(String, serde_json::Value)>,
}

struct Registered {
    view: ExtensionView,
    id: String,
    queue: VecDeque<serde_json::Value>,
    /// Blocked in `next` with nothing queued: done with the current phase.
    polling: bool,
}

#[derive(Default)]
struct State {
    registered: Vec<Registered>,
    next_id: u64,
}

/// The extensions' side of one Runtime API.
#[derive(Clone, Default)]
pub struct Extensions {
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    /// Told whenever an extension registers or calls `next`.
    changed: Arc<Notify>,
}

impl Extensions {
    pub fn list(&self) -> Vec<ExtensionView> {
        self.lock().registered.iter().map(|r| r.view.clone()).collect()
    }

    /// Whether every registered extension is polling `next` with nothing left to take.
    pub fn all_idle(&self) -> bool {
        self.lock().registered.iter().all(|r| r.polling && r.queue.is_empty())
    }

    /// Queues `event` (with `eventType` set) for every extension registered for its type.
    pub fn deliver(&self, event: serde_json::Value) {
        let kind = event["eventType"].as_str().unwrap_or_default().to_owned();
        for extension in self.lock().registered.iter_mut().filter(|r| r.view.events.contains(&kind)) {
            extension.queue.push_back(event.clone());
        }
        self.queued.notify_waiters();
    }

    /// Waits until `done` holds of the extensions, or `limit` passes; returns whether it held.
    pub async fn wait_for(&self, limit: std::time::Duration, done: impl Fn(&[ExtensionView]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            if done(&self.list()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.list());
            }
        }
    }

    /// Waits until every extension is back in `next` with nothing queued, or `limit` passes.
    pub async fn wait_idle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            if self.all_idle() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.all_idle();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers `/2020-01-01/extension/...`; `None` for another path.
    pub async fn route(&self, request: Request<Incoming>, rest: &[&str]) -> Option<Response<Full<Bytes>>> {
        let method = request.method().clone();
        let header = |name: &str| {
            request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).filter(|v| !v.is_empty())
        };
        let (name, id, error_type) = (
            header("Lambda-Extension-Name"),
            header("Lambda-Extension-Identifier"),
            header("Lambda-Extension-Function-Error-Type"),
        );
        let answer = match (method, rest) {
            (Method::POST, ["register"]) => {
                let body = read_body(request).await;
                self.register(name, &body)
            }
            (Method::GET, ["event", "next"]) => self.next(id).await,
            (Method::POST, [phase @ ("init" | "exit"), "error"]) => {
                let body = read_body(request).await;
                let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                self.report(id, phase, error_type.unwrap_or_default(), value)
            }
            _ => return None,
        };
        Some(answer)
    }

    fn register(&self, name: Option<String>, body: &[u8]) -> Response<Full<Bytes>> {
        let Some(name) = name else { return reply(StatusCode::BAD_REQUEST, "missing Lambda-Extension-Name") };
        let events: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["events"].as_array().cloned())
            .map(|events| events.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if events.iter().any(|e| e != "INVOKE" && e != "SHUTDOWN") {
            return reply(StatusCode::BAD_REQUEST, "events are INVOKE and SHUTDOWN");
        }
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            let id = format!("e0000000-0000-4000-8000-{:012}", state.next_id);
            let view =
                ExtensionView { name, events, nexts: 0, first_next_at: None, init_error: None, exit_error: None };
            state.registered.push(Registered { view, id: id.clone(), queue: VecDeque::new(), polling: false });
            id
        };
        self.changed.notify_waiters();
        let body = serde_json::json!({
            "functionName": "local", "functionVersion": "$LATEST", "handler": "bootstrap", "accountId": "123456789012"
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("Lambda-Extension-Identifier", id)
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_default()
    }

    async fn next(&self, id: Option<String>) -> Response<Full<Bytes>> {
        let found = self.with(&id, |r| {
            r.view.nexts += 1;
            r.view.first_next_at.get_or_insert_with(std::time::Instant::now);
            r.polling = true;
        });
        if found.is_none() {
            return reply(StatusCode::FORBIDDEN, "unknown Lambda-Extension-Identifier");
        }
        self.changed.notify_waiters();
        loop {
            let queued = self.queued.notified();
            let event = self.with(&id, |r| {
                let event = r.queue.pop_front();
                r.polling = event.is_none();
                event
            });
            if let Some(Some(event)) = event {
                self.changed.notify_waiters();
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("Lambda-Extension-Event-Identifier", format!("ev-{}", id.as_deref().unwrap_or_default()))
                    .header("Content-Type", "application/json")
                    .body(Full::new(Bytes::from(event.to_string())))
                    .unwrap_or_default();
            }
            queued.await;
        }
    }

    fn report(
        &self,
        id: Option<String>,
        phase: &str,
        error_type: String,
        body: serde_json::Value,
    ) -> Response<Full<Bytes>> {
        let found = self.with(&id, |r| {
            let slot = if phase == "init" { &mut r.view.init_error } else { &mut r.view.exit_error };
            *slot = Some((error_type, body));
        });
        self.changed.notify_waiters();
        match found {
            Some(()) => reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#),
            None => reply(StatusCode::FORBIDDEN, "unknown Lambda-Extension-Identifier"),
        }
    }

    fn with<T>(&self, id: &Option<String>, f: impl FnOnce(&mut Registered) -> T) -> Option<T> {
        let mut state = self.lock();
        state.registered.iter_mut().find(|r| Some(&r.id) == id.as_ref()).map(f)
    }
}

async fn read_body(request: Request<Incoming>) -> Bytes {
    request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default()
}

fn reply(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response
}
