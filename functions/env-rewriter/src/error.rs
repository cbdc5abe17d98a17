//! Every way a repoint can stop short, as one closed set; the class tells Lambda whether a
//! retry can help (the repoint script is idempotent, so retrying a partial run is safe).

use failover_core::{AwsFailure, ErrorClass};
use lambda_runtime::Diagnostic;

/// Why an invocation of env-rewriter did not repoint every matching server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriterError {
    /// The event is none of the triggers env-rewriter understands.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// An AWS call failed; its class comes from the service's answer.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// An alarm arrived, but alarms are not configured as a trigger.
    #[error("refused: alarm events are not configured for env-rewriter (set ALLOWED_ALARM_NAMES or ALLOWED_ALARM_PREFIXES and FAILOVER_REGION)")]
    AlarmsNotConfigured,
    /// The published parameters do not make a usable target.
    #[error("refused: the published parameters cannot be used: {0}")]
    UnusableParameters(String),
    /// No running server carries the tags: nothing can be repointed.
    #[error("refused: no running servers tagged App in {apps:?} and Environment={environment} in {region}: nothing was repointed")]
    NoServers {
        /// The App tag values looked for.
        apps: Vec<String>,
        /// The Environment tag value.
        environment: String,
        /// The app servers' region.
        region: String,
    },
    /// Servers matched, but none could be commanded.
    #[error("incomplete: none of the {matching} matching servers could be commanded, so nothing was repointed (a retry is safe: the script is idempotent): {summary}")]
    NoneCommanded {
        /// Servers that matched.
        matching: usize,
        /// Each server and why it could not be commanded.
        summary: String,
    },
    /// Some matching servers were not repointed (failed, timed out, or not commandable).
    #[error("incomplete: {failed} of {matching} servers were not repointed (a retry is safe: the script is idempotent): {summary}")]
    NotRepointed {
        /// Servers not repointed.
        failed: usize,
        /// Servers that matched (running, tagged).
        matching: usize,
        /// Each failed server and its result.
        summary: String,
    },
}

impl RewriterError {
    /// Whether Lambda should deliver the event again.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Aws(failure) => failure.class,
            Self::NoneCommanded { .. } | Self::NotRepointed { .. } => ErrorClass::Retryable,
            Self::InvalidEvent(_)
            | Self::AlarmsNotConfigured
            | Self::UnusableParameters(_)
            | Self::NoServers { .. } => ErrorClass::NonRetryable,
        }
    }
}

impl From<RewriterError> for Diagnostic {
    fn from(err: RewriterError) -> Self {
        Diagnostic {
            error_type: err.class().as_str().to_owned(),
            error_message: err.to_string(),
        }
    }
}
