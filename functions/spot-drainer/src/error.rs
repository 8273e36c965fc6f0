use crate::event::EventError;
use crate::summary::DrainSummary;

/// Why a drain did not complete. Each is returned to the runtime, so the asynchronous
/// invocation is retried and, failing that, lands in the dead-letter destination.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DrainError {
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    #[error("unsupported event: detail-type {0:?} is not an EC2 Spot Instance Interruption Warning, an EC2 Instance Rebalance Recommendation or an EC2 Instance-terminate Lifecycle Action")]
    UnsupportedEvent(String),
    #[error("describing instance {instance_id}: {message}")]
    DescribeInstance { instance_id: String, message: String },
    #[error("listing target groups: {0}")]
    ListTargetGroups(String),
    #[error("describing Auto Scaling group {group}: {message}")]
    DescribeAutoScalingGroup { group: String, message: String },
    /// A lifecycle hook's targets were still draining when the invocation had to end; the hook
    /// was heart-beaten, and the retried event waits on.
    #[error("{instance_id}: {targets} target(s) still draining; the lifecycle action stays open for the retry")]
    StillDraining { instance_id: String, targets: usize },
    #[error("lifecycle action: {0}")]
    LifecycleAction(String),
    /// A failure of the function itself (an answer it could not write, a result it lost); counted
    /// as a drain failure, so the alarm sees it.
    #[error("internal error: {0}")]
    Internal(String),
    /// Some registrations could not be found or removed; the summary says which.
    #[error("drain of {} incomplete: {} step(s) failed", .0.instance_id, .0.failures())]
    Incomplete(Box<DrainSummary>),
}

impl From<EventError> for DrainError {
    fn from(error: EventError) -> Self {
        match error {
            EventError::Malformed(why) => DrainError::MalformedEvent(why),
            EventError::Unsupported(detail_type) => DrainError::UnsupportedEvent(detail_type),
        }
    }
}

impl DrainError {
    /// The `errorType` Lambda reports: one stable name per kind, for alarms, retries and catches.
    pub fn error_type(&self) -> &'static str {
        match self {
            DrainError::MalformedEvent(_) => "MalformedEvent",
            DrainError::UnsupportedEvent(_) => "UnsupportedEvent",
            DrainError::DescribeInstance { .. } => "DescribeInstanceFailed",
            DrainError::ListTargetGroups(_) => "ListTargetGroupsFailed",
            DrainError::DescribeAutoScalingGroup { .. } => "DescribeAutoScalingGroupFailed",
            DrainError::StillDraining { .. } => "StillDraining",
            DrainError::LifecycleAction(_) => "LifecycleActionFailed",
            DrainError::Internal(_) => "Internal",
            DrainError::Incomplete(_) => "DrainIncomplete",
        }
    }
}

impl From<DrainError> for lambda_runtime::Diagnostic {
    fn from(error: DrainError) -> Self {
        lambda_runtime::Diagnostic { error_type: error.error_type().to_owned(), error_message: error.to_string() }
    }
}
