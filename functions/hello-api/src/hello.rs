//! The "Hello <name>" API: a port of the Go sample in aws-samples/lambda-go-samples.
//!
//! One deliberate change: the Go sample returns an error for an empty body, which API Gateway
//! turns into a 502. Here the client gets a 400 with the same message, since the fault is theirs.

use lambda_http::http::{header::CONTENT_TYPE, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::metrics::Metrics;

/// The Go sample's error text for a request without a name.
pub const NO_NAME_PROVIDED: &str = "no name was provided in the HTTP body";
/// Answer to a body that is not text (after base64 decoding, where API Gateway encoded it).
pub const NAME_NOT_UTF8: &str = "the name in the HTTP body is not valid UTF-8";

/// Why a request got no greeting.
#[derive(Debug, PartialEq, Eq)]
pub enum GreetingError {
    NoName,
    NotUtf8,
}

impl GreetingError {
    fn message(&self) -> &'static str {
        match self {
            GreetingError::NoName => NO_NAME_PROVIDED,
            GreetingError::NotUtf8 => NAME_NOT_UTF8,
        }
    }
}

/// The greeting for a request body, or why there is none.
pub fn greeting_for(body: &Body) -> Result<String, GreetingError> {
    let name = match body {
        Body::Empty => "",
        Body::Text(text) => text.as_str(),
        Body::Binary(bytes) => std::str::from_utf8(bytes).map_err(|_| GreetingError::NotUtf8)?,
        // `Body` is non-exhaustive; anything new is not a name we can read.
        _ => return Err(GreetingError::NotUtf8),
    };
    if name.is_empty() {
        return Err(GreetingError::NoName);
    }
    Ok(format!("Hello {name}"))
}

/// Lambda handler for API Gateway REST (payload 1.0) and HTTP API (payload 2.0) events.
pub async fn handle_request(request: Request) -> Result<Response<Body>, Error> {
    tracing::info!(request_id = api_gateway_request_id(&request).unwrap_or("-"), "processing Lambda request");
    let (status, text) = match greeting_for(request.body()) {
        Ok(greeting) => (StatusCode::OK, greeting),
        Err(error) => (StatusCode::BAD_REQUEST, error.message().to_owned()),
    };
    request_metrics(status).emit();
    let response =
        Response::builder().status(status).header(CONTENT_TYPE, "text/plain; charset=utf-8").body(Body::Text(text))?;
    Ok(response)
}

/// One request's metrics: a greeting, or a request refused with 400.
pub fn request_metrics(status: StatusCode) -> Metrics {
    let greeted = status == StatusCode::OK;
    Metrics::for_this_function().count("Greetings", u64::from(greeted)).count("BadRequests", u64::from(!greeted))
}

/// API Gateway's own id for the request, the one the Go sample logs.
fn api_gateway_request_id(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.request_id.as_deref(),
        RequestContext::ApiGatewayV2(context) => context.request_id.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(test)]
mod tests;
