//! Errors. None carries a password or a message body.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("writing to DynamoDB failed: {0}")]
    Unavailable(String),
    #[error("DynamoDB refused the item: {0}")]
    Rejected(String),
    /// The body bucket failed (or was not answering): the message's item is not written either.
    #[error("the body bucket (BODY_BUCKET) failed: {0}")]
    BodyBucket(String),
    #[error(
        "a message is too large for a DynamoDB item (400 KB) and BODY_BUCKET is not set, so its body has nowhere to go"
    )]
    NoBodyBucket,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("BROKER_URL is not set")]
    NoEndpoint,
    #[error("broker URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("TLS with {endpoint} failed: {message}")]
    Tls { endpoint: String, message: String },
    #[error("the broker at {endpoint} refused the login of user {user:?}: {message}")]
    AuthFailed { endpoint: String, user: String, message: String },
    #[error("broker error from {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
    #[error("no broker endpoint worked: {0}")]
    AllEndpointsFailed(String),
    #[error("broker credentials: {0}")]
    Credentials(String),
    #[error(transparent)]
    TrustedRoots(#[from] shared::tls::TlsError),
    /// A failure of the function itself (a message handle of the other protocol); counted by
    /// the metrics, and nothing was acknowledged.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Nothing of the failed batch was acknowledged: the broker redelivers it.
    #[error("{0}; the unstored messages were not acknowledged and stay on the queue")]
    Store(#[from] StoreError),
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// DynamoDB refused messages of an event-source batch (the rest is stored); nothing is dropped.
    #[error("DynamoDB refused message(s) {ids:?} ({reason}); the rest of the batch is stored, and the batch fails so the event source retries it")]
    Refused { ids: Vec<String>, reason: String },
    /// An event-source batch held a message larger than an item; nothing is dropped.
    #[error("message(s) {ids:?} too large for a DynamoDB item (the largest {largest_bytes} bytes; items hold 400 KB) and BODY_BUCKET is not set (the template sets it); the batch fails so the event source retries it, and no message is dropped")]
    TooLarge { ids: Vec<String>, largest_bytes: usize },
}

impl PollError {
    /// The `errorType` Lambda reports: one stable name per kind, for alarms, retries and catches.
    pub fn error_type(&self) -> &'static str {
        match self {
            PollError::MalformedEvent(_) => "MalformedEvent",
            PollError::TooLarge { .. } => "MessageTooLarge",
            PollError::Refused { .. } => "StoreRejected",
            PollError::Store(StoreError::Unavailable(_)) => "StoreUnavailable",
            PollError::Store(StoreError::Rejected(_)) => "StoreRejected",
            PollError::Store(StoreError::BodyBucket(_)) => "BodyStoreUnavailable",
            PollError::Store(StoreError::NoBodyBucket) => "MessageTooLarge",
            PollError::Broker(broker) => match broker {
                BrokerError::NoEndpoint => "NoBrokerEndpoint",
                BrokerError::BadUrl { .. } => "BadBrokerUrl",
                BrokerError::Unreachable { .. } => "BrokerUnreachable",
                BrokerError::Tls { .. } => "BrokerTlsFailed",
                BrokerError::AuthFailed { .. } => "AuthFailed",
                BrokerError::Protocol { .. } => "BrokerProtocolError",
                BrokerError::AllEndpointsFailed(_) => "AllEndpointsFailed",
                BrokerError::Credentials(_) => "BrokerCredentialsFailed",
                BrokerError::TrustedRoots(e) => e.error_type(),
                BrokerError::Internal(_) => "Internal",
            },
        }
    }
}

impl From<PollError> for lambda_runtime::Diagnostic {
    fn from(error: PollError) -> Self {
        lambda_runtime::Diagnostic { error_type: error.error_type().to_owned(), error_message: error.to_string() }
    }
}
