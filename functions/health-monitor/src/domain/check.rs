//! The result of one heartbeat check of one region.

use serde::Serialize;

use failover_core::Region;

/// One region's heartbeat write + consistent read, timed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The region checked.
    pub region: Region,
    /// Both the write and the read succeeded within the timeout.
    pub healthy: bool,
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
            write_ms: Some(write_ms),
            read_ms: Some(read_ms),
            error: None,
        }
    }

    /// An unhealthy result with the reason.
    pub fn unhealthy(region: Region, error: impl Into<String>) -> Self {
        Self {
            region,
            healthy: false,
            write_ms: None,
            read_ms: None,
            error: Some(error.into()),
        }
    }
}
