//! In-memory fakes of health-monitor's ports with the semantics of the real adapters: a
//! state store with DynamoDB's optimistic concurrency (and the faults tests inject),
//! scripted heartbeats, and the approval read over the core's in-memory Parameter Store.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use failover_core::evidence::Observation;
use failover_core::{AwsFailure, ErrorClass, Region};

use crate::domain::{CheckResult, HealthState};
use crate::ports::{HealthStateStore, HeartbeatProbe};

/// Scripted regional health: each run pops one (primary healthy, secondary healthy) pair
/// (the primary is the region named `us-east-1`).
pub struct ScriptedHeartbeats(Mutex<VecDeque<(bool, bool)>>);

impl ScriptedHeartbeats {
    /// A script of runs.
    pub fn new(steps: impl IntoIterator<Item = (bool, bool)>) -> Self {
        Self(Mutex::new(steps.into_iter().collect()))
    }

    /// Appends runs.
    pub fn push(&self, steps: impl IntoIterator<Item = (bool, bool)>) {
        self.0.lock().unwrap().extend(steps);
    }
}

impl HeartbeatProbe for ScriptedHeartbeats {
    async fn check(&self, region: &Region) -> CheckResult {
        let mut steps = self.0.lock().unwrap();
        let (a, b) = *steps.front().expect("a scripted step for every run");
        let ok = if region.as_str() == "us-east-1" { a } else { b };
        if region.as_str() == "us-west-2" {
            steps.pop_front();
        }
        if ok {
            CheckResult::healthy(region.clone(), 4, 2)
        } else {
            CheckResult::unhealthy(region.clone(), "heartbeat write: dispatch failure: connection refused")
        }
    }

    async fn replication_lag_ms(&self, _source: &Region, _replica: &Region) -> Option<u64> {
        None
    }
}

/// The health state in memory, with the faults tests inject.
#[derive(Default)]
pub struct MemoryHealthStore {
    /// The state and its version.
    pub stored: Mutex<Option<(HealthState, u64)>>,
    /// The next load fails (an unreachable table or a damaged item).
    pub fail_load: Mutex<bool>,
    /// Another run saves (the same state) just before the next save of this one.
    pub race_next_save: Mutex<bool>,
    /// Each observer's observation and its version.
    pub observations: Mutex<BTreeMap<Region, (Observation, u64)>>,
}

impl HealthStateStore for MemoryHealthStore {
    async fn load(&self) -> Result<Option<(HealthState, u64)>, AwsFailure> {
        if std::mem::take(&mut *self.fail_load.lock().unwrap()) {
            return Err(AwsFailure {
                operation: "GetItem",
                code: Some("ProvisionedThroughputExceededException".into()),
                message: "The level of configured provisioned throughput for the table was exceeded.".into(),
                class: ErrorClass::Retryable,
            });
        }
        Ok(self.stored.lock().unwrap().clone())
    }

    async fn save(&self, state: &HealthState, expected: Option<u64>) -> Result<bool, AwsFailure> {
        let mut stored = self.stored.lock().unwrap();
        if std::mem::take(&mut *self.race_next_save.lock().unwrap()) {
            if let Some((_, version)) = stored.as_mut() {
                *version += 1;
            }
        }
        if stored.as_ref().map(|(_, v)| *v) != expected {
            return Ok(false);
        }
        *stored = Some((state.clone(), expected.unwrap_or(0) + 1));
        Ok(true)
    }

    async fn load_observation(&self, observer: &Region) -> Result<Option<(Observation, u64)>, AwsFailure> {
        Ok(self.observations.lock().unwrap().get(observer).cloned())
    }

    async fn save_observation(
        &self,
        observer: &Region,
        observation: &Observation,
        expected: Option<u64>,
    ) -> Result<bool, AwsFailure> {
        let mut stored = self.observations.lock().unwrap();
        if stored.get(observer).map(|(_, v)| *v) != expected {
            return Ok(false);
        }
        stored.insert(observer.clone(), (observation.clone(), expected.unwrap_or(0) + 1));
        Ok(true)
    }
}
