//! Errors. None carries a password or a message body.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("writing to DynamoDB failed: {0}")]
    Unavailable(String),
    #[error("DynamoDB refused the item: {0}")]
    Rejected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("BROKER_URL is not set")]
    NoEndpoint,
    #[error("unsupported broker URL scheme in {0:?}; expected stomp+ssl://, stomp://, amqps:// or amqp://")]
    BadUrl(String),
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
}
