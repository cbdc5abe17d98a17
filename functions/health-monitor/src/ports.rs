//! The ports of health-monitor: heartbeats, the durable health state, and the failback
//! approval.

use std::future::Future;

use crate::domain::{CheckResult, HealthState};
use failover_core::error::AwsFailure;
use failover_core::evidence::Observation;
use failover_core::Region;

/// Checks a region by writing and reading back a heartbeat.
pub trait HeartbeatProbe: Send + Sync {
    /// Writes a heartbeat in `region` and reads it back consistently, within the check
    /// timeout; any error or timeout is an unhealthy result, never an `Err`.
    fn check(&self, region: &Region) -> impl Future<Output = CheckResult> + Send;

    /// How old the copy of `source`'s heartbeat is in `replica`'s table (replicated
    /// tables only); `None` when there is no copy or it cannot be read.
    fn replication_lag_ms(&self, source: &Region, replica: &Region) -> impl Future<Output = Option<u64>> + Send;
}

/// Stores the health state with optimistic concurrency.
pub trait HealthStateStore: Send + Sync {
    /// The state and its version, `None` before the first run.
    fn load(&self) -> impl Future<Output = Result<Option<(HealthState, u64)>, AwsFailure>> + Send;

    /// Writes `state` as version `expected + 1` (or 1), only if the stored version is still
    /// `expected` (or nothing is stored); `false` if another run wrote first.
    fn save(&self, state: &HealthState, expected: Option<u64>)
        -> impl Future<Output = Result<bool, AwsFailure>> + Send;

    /// The observation the monitor in `observer` saved last, and its version.
    fn load_observation(
        &self,
        observer: &Region,
    ) -> impl Future<Output = Result<Option<(Observation, u64)>, AwsFailure>> + Send;

    /// Saves the observation of the monitor in `observer`, with the same optimistic
    /// concurrency as [`Self::save`].
    fn save_observation(
        &self,
        observer: &Region,
        observation: &Observation,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, AwsFailure>> + Send;
}
