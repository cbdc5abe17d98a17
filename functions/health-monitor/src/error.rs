//! Why a monitor run did not finish; the class tells Lambda whether a retry can help.

use failover_core::{AwsFailure, ErrorClass};
use lambda_runtime::Diagnostic;

/// Why an invocation of health-monitor failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// The event is neither the schedule nor a failback approval.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// An AWS call failed (state table, Parameter Store); its class comes from the service.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
}

impl MonitorError {
    /// Whether Lambda should deliver the event again.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Aws(failure) => failure.class,
            Self::InvalidEvent(_) => ErrorClass::NonRetryable,
        }
    }
}

impl From<MonitorError> for Diagnostic {
    fn from(err: MonitorError) -> Self {
        Diagnostic {
            error_type: err.class().as_str().to_owned(),
            error_message: err.to_string(),
        }
    }
}
