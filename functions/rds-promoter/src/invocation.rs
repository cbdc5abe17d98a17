//! Who is invoking and until when: the lock owner and its lease come from the Lambda context.

use failover_core::retry::{normalize_lambda_deadline, Deadline};

/// Now, epoch milliseconds (the clock of lock leases and stage times).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The invocation's identity and deadline.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The lock owner: the Lambda request id, or the plan execution a step belongs to.
    pub request_id: String,
    /// When this invocation must have returned (the core's margin already subtracted).
    pub deadline: Deadline,
    /// The invocation's own deadline in epoch milliseconds (the lock lease).
    pub lease_until_ms: i64,
}

impl Invocation {
    /// From the Lambda context.
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        let lease_until_ms = normalize_lambda_deadline(context.deadline())
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self {
            request_id: context.request_id.clone(),
            deadline: Deadline::for_invocation(context),
            lease_until_ms,
        }
    }

    /// The same invocation holding the lock as `owner` (a plan execution's ARN): a step
    /// whose predecessor finished but could not give the lease back (a failed write) takes
    /// it over at once instead of waiting out that invocation's deadline (up to 15 minutes).
    pub fn owned_by(&self, owner: &str) -> Self {
        Self {
            request_id: owner.to_owned(),
            ..self.clone()
        }
    }
}
