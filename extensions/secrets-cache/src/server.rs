//! The HTTP side, AWS's interface: `GET /secretsmanager/get`, `GET /systemsmanager/parameters/get`,
//! each with the token header, plus `GET /ping`. Bound to 127.0.0.1 only (the function is the only
//! client); more connections at once than the cap are answered 429. Errors are a small JSON body
//! naming the kind: never a value, never the token.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::cache::Cache;
use crate::key::Key;
use crate::token::{self, Token};
use crate::upstream::{Failure, Source};

pub struct Server<S> {
    pub cache: Arc<Cache<S>>,
    pub token: Token,
    pub connections: Arc<Semaphore>,
    /// How long a connection may wait for its next request's headers (between kept-alive
    /// requests too) before it is closed and its place under the cap is freed.
    pub idle_connection: Duration,
}

/// Binds the port on the loopback address, and nowhere else.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// How long the loop rests after a failed `accept`: the usual cause (out of file descriptors)
/// lasts, and retrying at once would spin a core the function needs.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(5);

/// Serves connections until the task is dropped.
pub async fn serve<S: Source>(listener: TcpListener, server: Arc<Server<S>>) {
    accept_each(|| listener.accept(), |(stream, _)| connection(stream, server.clone())).await
}

/// Calls `accept` for ever, `handle` on each success, pausing `ACCEPT_PAUSE` after each failure.
async fn accept_each<T, A>(mut accept: impl FnMut() -> A, mut handle: impl FnMut(T))
where
    A: Future<Output = std::io::Result<T>>,
{
    loop {
        match accept().await {
            Ok(accepted) => handle(accepted),
            Err(error) => {
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(ACCEPT_PAUSE).await;
            }
        }
    }
}

/// One connection, on a task of its own; over the cap it is answered 429 and closed.
fn connection<S: Source>(stream: TcpStream, server: Arc<Server<S>>) {
    let _ = stream.set_nodelay(true);
    let permit = server.connections.clone().try_acquire_owned().ok();
    let idle_connection = server.idle_connection;
    tokio::spawn(async move {
        let admitted = permit.is_some();
        let service = hyper::service::service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(answer(&server, request, admitted).await) }
        });
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(admitted)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(idle_connection)
            .serve_connection(io, service)
            .await;
        drop(permit);
    });
}

async fn answer<S: Source>(server: &Server<S>, request: Request<Incoming>, admitted: bool) -> Response<Full<Bytes>> {
    if !admitted {
        return error(StatusCode::TOO_MANY_REQUESTS, "TooManyConnections", "connection limit reached");
    }
    if request.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "GET only");
    }
    let path = request.uri().path();
    if path == "/ping" {
        return reply(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"));
    }
    let offered = request.headers().get(token::HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !server.token.matches(offered) {
        return error(StatusCode::FORBIDDEN, "Forbidden", "missing or wrong X-Aws-Parameters-Secrets-Token");
    }
    let query = request.uri().query().unwrap_or_default();
    let key = match path {
        "/secretsmanager/get" => Key::secret_from_query(query),
        "/systemsmanager/parameters/get" => Key::parameter_from_query(query),
        _ => return error(StatusCode::NOT_FOUND, "NotFound", "no such path"),
    };
    let key = match key {
        Ok(key) => key,
        Err(reason) => return failure(&Failure::BadRequest(reason)),
    };
    match server.cache.get(&key).await {
        Ok(body) => reply(StatusCode::OK, body),
        Err(f) => {
            tracing::info!(kind = f.kind(), "request failed: {f}");
            failure(&f)
        }
    }
}

fn failure(f: &Failure) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(f.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    error(status, f.kind(), &f.to_string())
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"error": kind, "message": message}).to_string();
    reply(status, Bytes::from(body))
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn failed_accepts_are_retried_after_a_pause_not_at_once() {
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = tries.clone();
        let spinning = tokio::spawn(accept_each(
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::task::yield_now().await;
                    Err::<(), _>(std::io::Error::other("too many open files"))
                }
            },
            |()| {},
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        spinning.abort();
        let tries = tries.load(Ordering::SeqCst);
        assert!(tries <= 50 / ACCEPT_PAUSE.as_millis() as usize + 2, "{tries} accepts in 50 ms");
    }
}
