//! Why the hook could not give CodeDeploy a verdict. A version that fails its probes is no error
//! of the hook: it is the verdict `Failed`, reported.

#[derive(Debug, Clone, thiserror::Error)]
pub enum HookError {
    /// Not a CodeDeploy lifecycle hook event: without its ids there is nothing to report to.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// CodeDeploy did not take the verdict; Lambda retries the invocation (the probes have no
    /// side effects, so running them again is safe). Without a verdict the deployment fails
    /// when the hook's hour runs out.
    #[error("reporting the verdict to CodeDeploy failed: {0}")]
    ReportFailed(String),
}

impl HookError {
    pub fn kind(&self) -> &'static str {
        match self {
            HookError::MalformedEvent(_) => "MalformedEvent",
            HookError::ReportFailed(_) => "ReportFailed",
        }
    }
}

impl From<HookError> for lambda_runtime::Diagnostic {
    fn from(error: HookError) -> Self {
        lambda_runtime::Diagnostic { error_type: error.kind().to_owned(), error_message: error.to_string() }
    }
}
