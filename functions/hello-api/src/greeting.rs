//! The greeting itself: a name in, "Hello <name>" out, or why there is none.

use lambda_http::Body;

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
    pub fn message(&self) -> &'static str {
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
