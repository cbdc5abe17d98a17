//! Errors classed as retryable or not, and their mapping to Lambda diagnostics.
//!
//! Lambda's async retries and the DynamoDB stream mapping only behave correctly when a
//! transient fault (throttling, timeouts, 5xx) is told apart from a permanent one
//! (a bad event, a missing resource, wrong configuration). Every error that leaves a
//! handler therefore carries an [`ErrorClass`], which becomes the `errorType`.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

use crate::config::ConfigError;

/// Whether trying again later can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ErrorClass {
    /// A transient fault: the same request may succeed later.
    Retryable,
    /// A permanent fault: retrying the same input cannot help.
    NonRetryable,
}

impl ErrorClass {
    /// The `errorType` reported to Lambda.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retryable => "Retryable",
            Self::NonRetryable => "NonRetryable",
        }
    }
}

/// Error codes AWS services use for throttling: the service is up and refusing the rate.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestLimitExceededException",
    "SlowDown",
];

/// Error codes AWS services use for transient server-side trouble.
const TRANSIENT_CODES: &[&str] = &[
    "TransactionInProgressException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// Classifies an error code (and HTTP status, when known) returned by an AWS service.
pub fn classify_service_error(code: Option<&str>, http_status: Option<u16>) -> ErrorClass {
    let transient_code = code.is_some_and(|c| TRANSIENT_CODES.contains(&c) || THROTTLING_CODES.contains(&c));
    let transient_status = http_status.is_some_and(|s| s == 429 || s >= 500);
    if transient_code || transient_status {
        ErrorClass::Retryable
    } else {
        ErrorClass::NonRetryable
    }
}

/// A failed AWS call, reduced to what decisions and logs need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({}): {message}", code.as_deref().unwrap_or("no error code"))]
pub struct AwsFailure {
    /// The API operation, e.g. `PromoteReadReplica`.
    pub operation: &'static str,
    /// The service's error code, e.g. `InvalidDBInstanceState`.
    pub code: Option<String>,
    /// The service's message, or the transport error.
    pub message: String,
    /// Whether a retry may succeed.
    pub class: ErrorClass,
}

impl AwsFailure {
    /// Reduces an SDK error of any operation.
    pub fn from_sdk<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let code = inner.code().map(str::to_owned);
                let status = service.raw().status().as_u16();
                Self {
                    operation,
                    class: classify_service_error(code.as_deref(), Some(status)),
                    message: inner
                        .message()
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("HTTP {status}")),
                    code,
                }
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Self {
                operation,
                code: None,
                message: describe_chain(err),
                class: ErrorClass::Retryable,
            },
            _ => Self {
                operation,
                code: None,
                message: describe_chain(err),
                class: ErrorClass::NonRetryable,
            },
        }
    }

    /// True when the service answered with exactly this error code.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when the service answered but throttled the request (it is up).
    pub fn is_throttling(&self) -> bool {
        self.code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c))
    }
}

/// The outcome of a DynamoDB conditional write: `Ok(true)` when it went through,
/// `Ok(false)` when its condition refused it (`ConditionalCheckFailedException`: someone
/// else got there first), an error otherwise. Shared by every store that claims or updates
/// items with optimistic concurrency.
pub fn conditional_write<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<bool, AwsFailure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") => {
            Ok(false)
        }
        Err(err) => Err(AwsFailure::from_sdk(operation, &err)),
    }
}

/// Joins an error and its sources into one line (SDK errors hide the cause in `source()`).
pub fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The error a handler returns; each variant has a fixed [`ErrorClass`].
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// Configuration read at init is missing or wrong.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The incoming event cannot be understood.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// An AWS call failed; its class comes from the service's answer.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// The work could not finish before the invocation's deadline; a retry resumes it.
    #[error("deadline reached: {0}")]
    DeadlineExceeded(String),
    /// The system is not in a state where acting is safe right now (e.g. resource busy).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Part of the work failed (e.g. some servers were not repointed); a retry is safe.
    #[error("incomplete: {0}")]
    Incomplete(String),
    /// Acting would be unsafe or wrong, whatever the timing (e.g. split brain).
    #[error("refused: {0}")]
    Refused(String),
}

impl FailoverError {
    /// Whether Lambda (or the stream mapping) should retry.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Aws(failure) => failure.class,
            Self::DeadlineExceeded(_) | Self::NotReady(_) | Self::Incomplete(_) => ErrorClass::Retryable,
            Self::Config(_) | Self::InvalidEvent(_) | Self::Refused(_) => ErrorClass::NonRetryable,
        }
    }
}

impl From<FailoverError> for Diagnostic {
    fn from(err: FailoverError) -> Self {
        Diagnostic {
            error_type: err.class().as_str().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert_eq!(
            classify_service_error(Some("ThrottlingException"), Some(400)),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify_service_error(Some("ProvisionedThroughputExceededException"), Some(400)),
            ErrorClass::Retryable
        );
        assert_eq!(classify_service_error(None, Some(503)), ErrorClass::Retryable);
        assert_eq!(
            classify_service_error(Some("Anything"), Some(429)),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn client_errors_are_not_retryable() {
        assert_eq!(
            classify_service_error(Some("DBInstanceNotFound"), Some(404)),
            ErrorClass::NonRetryable
        );
        assert_eq!(
            classify_service_error(Some("ValidationException"), Some(400)),
            ErrorClass::NonRetryable
        );
        assert_eq!(classify_service_error(None, None), ErrorClass::NonRetryable);
    }

    #[test]
    fn diagnostic_carries_the_class_as_error_type() {
        let cases = [
            (
                FailoverError::InvalidEvent("no detail".into()),
                "NonRetryable",
                "invalid event: no detail",
            ),
            (
                FailoverError::DeadlineExceeded("still promoting".into()),
                "Retryable",
                "deadline reached: still promoting",
            ),
            (
                FailoverError::NotReady("replica is backing-up".into()),
                "Retryable",
                "not ready: replica is backing-up",
            ),
            (
                FailoverError::Refused("source is available".into()),
                "NonRetryable",
                "refused: source is available",
            ),
            (
                FailoverError::Incomplete("1 of 3 servers failed".into()),
                "Retryable",
                "incomplete: 1 of 3 servers failed",
            ),
        ];
        for (err, error_type, message) in cases {
            let diagnostic: Diagnostic = err.into();
            assert_eq!(diagnostic.error_type, error_type);
            assert_eq!(diagnostic.error_message, message);
        }
    }

    #[test]
    fn aws_failures_keep_their_class_and_code() {
        let failure = AwsFailure {
            operation: "PromoteReadReplica",
            code: Some("InvalidDBInstanceState".into()),
            message: "DB Instance is not a read replica.".into(),
            class: ErrorClass::NonRetryable,
        };
        assert!(failure.has_code("InvalidDBInstanceState"));
        assert!(!failure.is_throttling());
        let throttled = AwsFailure {
            code: Some("Throttling".into()),
            class: ErrorClass::Retryable,
            ..failure.clone()
        };
        assert!(throttled.is_throttling());
        let err = FailoverError::from(failure);
        assert_eq!(err.class(), ErrorClass::NonRetryable);
        assert_eq!(
            err.to_string(),
            "PromoteReadReplica failed (InvalidDBInstanceState): DB Instance is not a read replica."
        );
    }

    #[test]
    fn config_errors_are_not_retryable() {
        let err = FailoverError::from(ConfigError::Missing {
            var: "X".into(),
            expected: "y".into(),
        });
        let diagnostic: Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, "NonRetryable");
        assert!(diagnostic.error_message.contains("missing environment variable X"));
    }
}
