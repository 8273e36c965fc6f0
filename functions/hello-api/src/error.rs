//! Why the function could not answer. A request without a name is no error here: it gets a 400.

#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// A failure of the function itself (a response it could not build); counted by the metrics.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<HelloError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: HelloError) -> Self {
        let error_type = match &error {
            HelloError::Internal(_) => "Internal",
        };
        lambda_http::lambda_runtime::Diagnostic { error_type: error_type.to_owned(), error_message: error.to_string() }
    }
}
