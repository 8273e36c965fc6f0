//! The Go sample's test table (main_test.go), ported, plus the cases the port adds:
//! HTTP API (payload 2.0) events, base64-encoded bodies and bodies that are not UTF-8.

use super::*;
use crate::greeting::{GreetingError, NAME_NOT_UTF8, NO_NAME_PROVIDED};
use lambda_http::request::from_str;

fn event(name: &str) -> Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    from_str(&json).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn body_text(response: &Response<Body>) -> &str {
    match response.body() {
        Body::Text(text) => text,
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// The Go table: a name gets a greeting, an empty body gets ErrNameNotProvided.
#[test]
fn go_sample_table() {
    let table: [(Body, Result<&str, GreetingError>); 2] =
        [(Body::Text("Paul".into()), Ok("Hello Paul")), (Body::Text(String::new()), Err(GreetingError::NoName))];
    for (body, expected) in table {
        let got = greeting_for(&body);
        assert_eq!(got.as_deref().map_err(|e| e.message()), expected.map_err(|e| e.message()));
    }
}

#[test]
fn absent_body_is_no_name() {
    assert_eq!(greeting_for(&Body::Empty), Err(GreetingError::NoName));
}

#[tokio::test]
async fn rest_api_event_is_greeted() {
    let response = handle_event(event("hello-rest-api.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), "Hello Paul");
}

#[tokio::test]
async fn http_api_event_is_greeted() {
    let request = event("hello-http-api.json");
    assert!(matches!(request.request_context_ref(), Some(RequestContext::ApiGatewayV2(_))));
    let response = handle_event(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), "Hello Paul");
}

#[tokio::test]
async fn empty_body_is_a_400_with_the_go_message() {
    let response = handle_event(event("hello-empty-body.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_text(&response), NO_NAME_PROVIDED);
}

#[tokio::test]
async fn base64_body_is_decoded() {
    let response = handle_event(event("hello-base64-body.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), "Hello Zoë");
}

#[tokio::test]
async fn body_that_is_not_utf8_is_a_400() {
    let response = handle_event(event("hello-invalid-utf8.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_text(&response), NAME_NOT_UTF8);
}

#[test]
fn request_id_is_read_from_both_payload_formats() {
    assert_eq!(api_gateway_request_id(&event("hello-rest-api.json")), Some("c6af9ac6-7b61-11e6-9a41-93e8deadbeef"));
    assert_eq!(api_gateway_request_id(&event("hello-http-api.json")), Some("JKJaXmPLvHcESHA="));
}
