//! The "Hello <name>" API: a port of the Go sample in aws-samples/lambda-go-samples.
//!
//! One deliberate change: the Go sample returns an error for an empty body, which API Gateway
//! turns into a 502. Here the client gets a 400 with the same message, since the fault is theirs.

use lambda_http::http::{header::CONTENT_TYPE, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::metrics::Metrics;

use crate::error::HelloError;
use crate::greeting::greeting_for;

/// The function's entry point, for API Gateway REST (payload 1.0) and HTTP API (payload 2.0)
/// events.
pub async fn handle_event(request: Request) -> Result<Response<Body>, HelloError> {
    tracing::info!(request_id = api_gateway_request_id(&request).unwrap_or("-"), "processing Lambda request");
    let (status, text) = match greeting_for(request.body()) {
        Ok(greeting) => (StatusCode::OK, greeting),
        Err(error) => (StatusCode::BAD_REQUEST, error.message().to_owned()),
    };
    let response =
        Response::builder().status(status).header(CONTENT_TYPE, "text/plain; charset=utf-8").body(Body::Text(text));
    request_metrics(status, response.is_err()).emit();
    response.map_err(|e| HelloError::Internal(format!("building the response: {e}")))
}

/// One request's metrics: a greeting, or a request refused with 400; and whether the function
/// itself failed to answer.
pub fn request_metrics(status: StatusCode, internal: bool) -> Metrics {
    let greeted = status == StatusCode::OK && !internal;
    Metrics::for_this_function()
        .count("Greetings", u64::from(greeted))
        .count("BadRequests", u64::from(status == StatusCode::BAD_REQUEST))
        .count("InternalErrors", u64::from(internal))
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
