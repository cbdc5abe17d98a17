//! An in-memory [`FailoverLockStore`] with DynamoDB's conditional-write semantics: the fake
//! the tests use in place of the state table.

use std::collections::HashMap;
use std::sync::Mutex;

use failover_core::AwsFailure;

use crate::domain::{FailbackRecord, FenceRecord, LockRecord, MappingView, Stage};
use crate::ports::{EvidenceStore, FailbackStore, FailoverLockStore, FenceStore, ReplicationMappings};
use failover_core::evidence::Observation;

/// A lock store with DynamoDB's conditional-write semantics, in memory.
#[derive(Default)]
pub struct MemoryLockStore {
    /// Failover id → record.
    pub records: Mutex<HashMap<String, LockRecord>>,
    /// Replica incarnation → the failover id holding its promotion claim, and its lease end.
    pub replica_claims: Mutex<HashMap<String, (String, i64)>>,
    /// Failover id → its fence.
    pub fences: Mutex<HashMap<String, FenceRecord>>,
    /// health-monitor's observations by item key.
    pub observations: Mutex<HashMap<String, Observation>>,
    /// Failover id → its failback.
    pub failbacks: Mutex<HashMap<String, FailbackRecord>>,
}

impl FailbackStore for MemoryLockStore {
    async fn create_failback(&self, record: &FailbackRecord) -> Result<bool, AwsFailure> {
        let mut failbacks = self.failbacks.lock().unwrap();
        if failbacks.contains_key(&record.failover_id) {
            return Ok(false);
        }
        failbacks.insert(record.failover_id.clone(), record.clone());
        Ok(true)
    }

    async fn load_failback(&self, failover_id: &str) -> Result<Option<FailbackRecord>, AwsFailure> {
        Ok(self.failbacks.lock().unwrap().get(failover_id).cloned())
    }

    async fn save_failback(&self, record: &FailbackRecord) -> Result<bool, AwsFailure> {
        let mut failbacks = self.failbacks.lock().unwrap();
        match failbacks.get_mut(&record.failover_id) {
            Some(stored) if stored.version == record.version => {
                *stored = FailbackRecord {
                    version: record.version + 1,
                    ..record.clone()
                };
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn latest_published(&self) -> Result<Option<LockRecord>, AwsFailure> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.stage == Stage::Published)
            .max_by_key(|r| r.published_at_ms)
            .cloned())
    }
}

impl EvidenceStore for MemoryLockStore {
    async fn observation(&self, key: &str) -> Result<Option<Observation>, AwsFailure> {
        Ok(self.observations.lock().unwrap().get(key).cloned())
    }
}

impl MemoryLockStore {
    /// The record of `id`, if any.
    pub fn get(&self, id: &str) -> Option<LockRecord> {
        self.records.lock().unwrap().get(id).cloned()
    }
}

impl FailoverLockStore for MemoryLockStore {
    async fn create(&self, record: &LockRecord) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        if records.contains_key(&record.failover_id) {
            return Ok(false);
        }
        records.insert(record.failover_id.clone(), record.clone());
        Ok(true)
    }

    async fn load(&self, failover_id: &str) -> Result<Option<LockRecord>, AwsFailure> {
        Ok(self.get(failover_id))
    }

    async fn take_over(&self, seen: &LockRecord, owner: &str, lease_until_ms: i64) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        match records.get_mut(&seen.failover_id) {
            Some(r) if r.owner == seen.owner && r.lease_until_ms == seen.lease_until_ms => {
                r.owner = owner.to_owned();
                r.lease_until_ms = lease_until_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save(&self, record: &LockRecord) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        match records.get_mut(&record.failover_id) {
            Some(r) if r.owner == record.owner => {
                *r = record.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_replica(
        &self,
        incarnation: &str,
        failover_id: &str,
        lease_until_ms: i64,
    ) -> Result<Option<String>, AwsFailure> {
        let mut claims = self.replica_claims.lock().unwrap();
        let now_ms = chrono::Utc::now().timestamp_millis();
        match claims.get(incarnation) {
            Some((holder, lease)) if holder != failover_id && *lease >= now_ms => Ok(Some(holder.clone())),
            _ => {
                claims.insert(incarnation.to_owned(), (failover_id.to_owned(), lease_until_ms));
                Ok(None)
            }
        }
    }
}

impl FenceStore for MemoryLockStore {
    async fn save_fence(&self, record: &FenceRecord) -> Result<(), AwsFailure> {
        self.fences
            .lock()
            .unwrap()
            .insert(record.failover_id.clone(), record.clone());
        Ok(())
    }

    async fn load_fence(&self, failover_id: &str) -> Result<Option<FenceRecord>, AwsFailure> {
        Ok(self.fences.lock().unwrap().get(failover_id).cloned())
    }

    async fn fences(&self) -> Result<Vec<FenceRecord>, AwsFailure> {
        let mut all: Vec<FenceRecord> = self.fences.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| a.failover_id.cmp(&b.failover_id));
        Ok(all)
    }
}

/// Event source mappings in memory: function name → its mappings; `unreachable` makes
/// every call fail as a dead region's Lambda API does.
#[derive(Default)]
pub struct MemoryMappings {
    /// Function name → mappings.
    pub mappings: Mutex<HashMap<String, Vec<MappingView>>>,
    /// When set, every call fails with this retryable error.
    pub unreachable: Mutex<Option<String>>,
    /// Function name → what its drain checks answer, one per call (the last repeats).
    pub drains: Mutex<HashMap<String, Vec<crate::domain::StreamDrain>>>,
}

impl MemoryMappings {
    fn reachable(&self, operation: &'static str) -> Result<(), AwsFailure> {
        match self.unreachable.lock().unwrap().clone() {
            Some(message) => Err(AwsFailure {
                operation,
                code: None,
                message,
                class: failover_core::ErrorClass::Retryable,
            }),
            None => Ok(()),
        }
    }
}

impl ReplicationMappings for MemoryMappings {
    async fn drain_check(&self, function: &str) -> Result<crate::domain::StreamDrain, AwsFailure> {
        self.reachable("Invoke")?;
        let mut drains = self.drains.lock().unwrap();
        let answers = drains
            .get_mut(function)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| AwsFailure {
                operation: "Invoke",
                code: Some("ResourceNotFoundException".into()),
                message: format!("Function not found: {function}"),
                class: failover_core::ErrorClass::NonRetryable,
            })?;
        Ok(if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        })
    }

    async fn list(&self, function: &str) -> Result<Vec<MappingView>, AwsFailure> {
        self.reachable("ListEventSourceMappings")?;
        Ok(self.mappings.lock().unwrap().get(function).cloned().unwrap_or_default())
    }

    async fn disable(&self, uuid: &str) -> Result<(), AwsFailure> {
        self.reachable("UpdateEventSourceMapping")?;
        for mapping in self.mappings.lock().unwrap().values_mut().flatten() {
            if mapping.uuid == uuid {
                mapping.state = "Disabled".into();
            }
        }
        Ok(())
    }

    async fn enable(&self, uuid: &str) -> Result<(), AwsFailure> {
        self.reachable("UpdateEventSourceMapping")?;
        for mapping in self.mappings.lock().unwrap().values_mut().flatten() {
            if mapping.uuid == uuid {
                mapping.state = "Enabled".into();
            }
        }
        Ok(())
    }
}

/// Execution histories by ARN, as a test recorded them.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    /// ARN → (start, visits).
    pub executions: Mutex<HashMap<String, (i64, Vec<crate::domain::StateVisit>)>>,
}

impl crate::ports::ExecutionHistory for MemoryHistory {
    async fn visits(&self, execution_arn: &str) -> Result<(i64, Vec<crate::domain::StateVisit>), AwsFailure> {
        self.executions
            .lock()
            .unwrap()
            .get(execution_arn)
            .cloned()
            .ok_or_else(|| AwsFailure {
                operation: "GetExecutionHistory",
                code: Some("ExecutionDoesNotExist".into()),
                message: format!("Execution Does Not Exist: '{execution_arn}'"),
                class: failover_core::ErrorClass::NonRetryable,
            })
    }
}
