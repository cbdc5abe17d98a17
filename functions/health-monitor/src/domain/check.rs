//! The result of one heartbeat check of one region.

use serde::Serialize;

use failover_core::evidence::CheckOutcome;
use failover_core::Region;

/// One region's heartbeat write + consistent read, timed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The region checked.
    pub region: Region,
    /// Both the write and the read succeeded within the timeout.
    pub healthy: bool,
    /// Healthy, down (no answer, 5xx, throttled) or misconfigured (another 4xx).
    pub outcome: CheckOutcome,
    /// Write latency, when the write finished.
    pub write_ms: Option<u64>,
    /// Read latency, when the read finished.
    pub read_ms: Option<u64>,
    /// What failed, when unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CheckResult {
    /// A healthy result.
    pub fn healthy(region: Region, write_ms: u64, read_ms: u64) -> Self {
        Self {
            region,
            healthy: true,
            outcome: CheckOutcome::Healthy,
            write_ms: Some(write_ms),
            read_ms: Some(read_ms),
            error: None,
        }
    }

    /// A region that did not serve the check (evidence of an outage), with the reason.
    pub fn unhealthy(region: Region, error: impl Into<String>) -> Self {
        Self::failed(region, CheckOutcome::Down, error)
    }

    /// A region that answered with a 4xx other than throttling: our configuration (the
    /// table, the role) is wrong; no evidence of an outage.
    pub fn misconfigured(region: Region, error: impl Into<String>) -> Self {
        Self::failed(region, CheckOutcome::Misconfigured, error)
    }

    fn failed(region: Region, outcome: CheckOutcome, error: impl Into<String>) -> Self {
        Self {
            region,
            healthy: false,
            outcome,
            write_ms: None,
            read_ms: None,
            error: Some(error.into()),
        }
    }
}
