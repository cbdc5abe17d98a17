//! What one heartbeat check found, in the failure taxonomy the decision relies on.

use serde::{Deserialize, Serialize};

/// One check's outcome. Only `Down` is evidence of an outage: a region that answers
/// "access denied" or "no such table" is up and misconfigured, and failing over would
/// not fix it (it would move the shop for a typo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CheckOutcome {
    /// The heartbeat was written and read back in time.
    Healthy,
    /// No answer in time, a connection failure, a 5xx or throttling: the region's service
    /// is not serving.
    #[default]
    Down,
    /// The region answered with a 4xx other than throttling (AccessDenied,
    /// ResourceNotFound, ValidationException…): our configuration is wrong, not the region.
    Misconfigured,
}

impl CheckOutcome {
    /// Classifies a service error by its HTTP status and error code; `None` status means
    /// no HTTP answer came at all (timeout, connection refused or reset, DNS).
    pub fn of_error(http_status: Option<u16>, code: Option<&str>) -> Self {
        const THROTTLING: [&str; 6] = [
            "ThrottlingException",
            "Throttling",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "TooManyRequestsException",
            "RequestThrottled",
        ];
        match http_status {
            None => Self::Down,
            Some(status) if status >= 500 => Self::Down,
            Some(_) if code.is_some_and(|c| THROTTLING.contains(&c)) => Self::Down,
            Some(status) if (400..500).contains(&status) => Self::Misconfigured,
            // A 2xx/3xx that still failed to parse: the answer was garbage, not a config error.
            Some(_) => Self::Down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unanswered_5xx_and_throttled_checks_are_evidence_of_an_outage() {
        for (status, code, outcome) in [
            (None, None, CheckOutcome::Down),
            (Some(500), Some("InternalServerError"), CheckOutcome::Down),
            (Some(503), None, CheckOutcome::Down),
            (Some(400), Some("ThrottlingException"), CheckOutcome::Down),
            (
                Some(400),
                Some("ProvisionedThroughputExceededException"),
                CheckOutcome::Down,
            ),
            (Some(400), Some("AccessDeniedException"), CheckOutcome::Misconfigured),
            (
                Some(400),
                Some("ResourceNotFoundException"),
                CheckOutcome::Misconfigured,
            ),
            (
                Some(403),
                Some("UnrecognizedClientException"),
                CheckOutcome::Misconfigured,
            ),
            (Some(400), Some("ValidationException"), CheckOutcome::Misconfigured),
        ] {
            assert_eq!(CheckOutcome::of_error(status, code), outcome, "{status:?} {code:?}");
        }
    }
}
