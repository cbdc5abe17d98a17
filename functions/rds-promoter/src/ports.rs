//! The ports of rds-promoter: RDS instances as promotion sees them, and the durable
//! failover lock.

use std::future::Future;

use crate::domain::{
    DbInstanceView, FailbackRecord, FenceRecord, LagMinute, LockRecord, MappingView, StateVisit, StreamDrain,
};
use failover_core::error::AwsFailure;
use failover_core::evidence::Observation;

/// Describes and promotes RDS instances in one region.
pub trait DbInstances: Send + Sync {
    /// The instance, or `None` if the region says it does not exist.
    fn describe(&self, id: &str) -> impl Future<Output = Result<Option<DbInstanceView>, AwsFailure>> + Send;

    /// Starts promoting a read replica to a standalone, writable instance.
    fn promote(&self, id: &str, backup_retention_days: i32) -> impl Future<Output = Result<(), AwsFailure>> + Send;

    /// Stops an instance (the fence of an old primary).
    fn stop(&self, id: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;

    /// Renames an instance at once, so its old endpoint name stops resolving.
    fn rename(&self, id: &str, to: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;

    /// The replica's `ReplicaLag` over the last 15 minutes, one entry per minute.
    fn replica_lag(&self, id: &str) -> impl Future<Output = Result<Vec<LagMinute>, AwsFailure>> + Send;

    /// Starts creating a read replica in this region of the instance `spec.source_arn`
    /// (cross-region: named by ARN); `DBInstanceAlreadyExists` when the id is taken.
    fn create_replica(&self, spec: &ReplicaSpec) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// A read replica to create (failback re-protects with these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSpec {
    /// The new instance's identifier.
    pub id: String,
    /// The source instance's ARN.
    pub source_arn: String,
    /// The source's region (reported; RDS reads it from the ARN).
    pub source_region: String,
    /// `DBInstanceClass`; `None`: the source's.
    pub instance_class: Option<String>,
    /// `DBSubnetGroupName` in this region; `None`: the default VPC's.
    pub subnet_group: Option<String>,
    /// `DBParameterGroupName` in this region; `None`: the engine's default.
    pub parameter_group: Option<String>,
    /// `KmsKeyId` in this region, required for an encrypted source.
    pub kms_key_id: Option<String>,
}

/// A shared client is a client too.
impl<T: DbInstances> DbInstances for std::sync::Arc<T> {
    fn describe(&self, id: &str) -> impl Future<Output = Result<Option<DbInstanceView>, AwsFailure>> + Send {
        (**self).describe(id)
    }

    fn promote(&self, id: &str, backup_retention_days: i32) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).promote(id, backup_retention_days)
    }

    fn stop(&self, id: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).stop(id)
    }

    fn rename(&self, id: &str, to: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).rename(id, to)
    }

    fn replica_lag(&self, id: &str) -> impl Future<Output = Result<Vec<LagMinute>, AwsFailure>> + Send {
        (**self).replica_lag(id)
    }

    fn create_replica(&self, spec: &ReplicaSpec) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).create_replica(spec)
    }
}

/// A stream replicator function in one region: its event source mappings, and its drain
/// check.
pub trait ReplicationMappings: Send + Sync {
    /// Invokes `function` with `{"drainCheck": {}}`: how much of its stream is not yet in
    /// its target.
    fn drain_check(&self, function: &str) -> impl Future<Output = Result<StreamDrain, AwsFailure>> + Send;

    /// Every mapping of `function`; a function that does not exist has none.
    fn list(&self, function: &str) -> impl Future<Output = Result<Vec<MappingView>, AwsFailure>> + Send;

    /// Disables one mapping: Lambda stops reading its stream, which keeps its records.
    fn disable(&self, uuid: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;

    /// Enables one mapping: Lambda reads its stream again from where it stopped.
    fn enable(&self, uuid: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// Stores each failover's [`FenceRecord`] beside its lock record.
pub trait FenceStore: Send + Sync {
    /// Writes the record (the fence's looks are idempotent, so the last look wins).
    fn save_fence(&self, record: &FenceRecord) -> impl Future<Output = Result<(), AwsFailure>> + Send;

    /// The record of one failover.
    fn load_fence(&self, failover_id: &str) -> impl Future<Output = Result<Option<FenceRecord>, AwsFailure>> + Send;

    /// Every fence record (one per failover: a small set).
    fn fences(&self) -> impl Future<Output = Result<Vec<FenceRecord>, AwsFailure>> + Send;
}

/// Reads health-monitor's observations (items of the same state table), which the
/// decide step re-checks before it promotes.
pub trait EvidenceStore: Send + Sync {
    /// The observation saved under `key` (the health state, or an observer's item).
    fn observation(&self, key: &str) -> impl Future<Output = Result<Option<Observation>, AwsFailure>> + Send;
}

/// Stores [`LockRecord`]s with conditional writes.
pub trait FailoverLockStore: Send + Sync {
    /// Creates the record only if no record exists for its failover id; `false` if one did.
    fn create(&self, record: &LockRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send;

    /// Reads the record with a strongly consistent read.
    fn load(&self, failover_id: &str) -> impl Future<Output = Result<Option<LockRecord>, AwsFailure>> + Send;

    /// Moves the lease to `owner` until `lease_until_ms`, only if the stored owner and lease
    /// are still those of `seen`; `false` if someone else changed them first.
    fn take_over(
        &self,
        seen: &LockRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<bool, AwsFailure>> + Send;

    /// Writes the whole record, only while `record.owner` still owns it; `false` if not.
    fn save(&self, record: &LockRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send;

    /// Claims the right to promote one replica incarnation for `failover_id` until
    /// `lease_until_ms`, so that two different alarms (two failover ids) never both send
    /// PromoteReadReplica. `None` when the claim is (now, or already) this failover's or the
    /// holder's lease has lapsed; `Some(holder)` while another failover holds it.
    fn claim_replica(
        &self,
        incarnation: &str,
        failover_id: &str,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<Option<String>, AwsFailure>> + Send;
}

/// Shared stores (e.g. one table client used by concurrent handlers) are stores too.
impl<T: FailoverLockStore> FailoverLockStore for std::sync::Arc<T> {
    fn create(&self, record: &LockRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send {
        (**self).create(record)
    }

    fn load(&self, failover_id: &str) -> impl Future<Output = Result<Option<LockRecord>, AwsFailure>> + Send {
        (**self).load(failover_id)
    }

    fn take_over(
        &self,
        seen: &LockRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<bool, AwsFailure>> + Send {
        (**self).take_over(seen, owner, lease_until_ms)
    }

    fn save(&self, record: &LockRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send {
        (**self).save(record)
    }

    fn claim_replica(
        &self,
        incarnation: &str,
        failover_id: &str,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<Option<String>, AwsFailure>> + Send {
        (**self).claim_replica(incarnation, failover_id, lease_until_ms)
    }
}

/// A shared fake or client is a mapping lister too.
impl<T: ReplicationMappings> ReplicationMappings for std::sync::Arc<T> {
    fn drain_check(&self, function: &str) -> impl Future<Output = Result<StreamDrain, AwsFailure>> + Send {
        (**self).drain_check(function)
    }

    fn list(&self, function: &str) -> impl Future<Output = Result<Vec<MappingView>, AwsFailure>> + Send {
        (**self).list(function)
    }

    fn disable(&self, uuid: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).disable(uuid)
    }

    fn enable(&self, uuid: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).enable(uuid)
    }
}

/// Shared stores hold fences too.
impl<T: FenceStore> FenceStore for std::sync::Arc<T> {
    fn save_fence(&self, record: &FenceRecord) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).save_fence(record)
    }

    fn load_fence(&self, failover_id: &str) -> impl Future<Output = Result<Option<FenceRecord>, AwsFailure>> + Send {
        (**self).load_fence(failover_id)
    }

    fn fences(&self) -> impl Future<Output = Result<Vec<FenceRecord>, AwsFailure>> + Send {
        (**self).fences()
    }
}

/// The history of a region-switch plan execution (Step Functions): the source of the
/// plan report's timeline.
pub trait ExecutionHistory: Send + Sync {
    /// When the execution started (epoch ms) and every state visit so far, in order.
    fn visits(&self, execution_arn: &str) -> impl Future<Output = Result<(i64, Vec<StateVisit>), AwsFailure>> + Send;
}

impl<T: EvidenceStore> EvidenceStore for std::sync::Arc<T> {
    fn observation(&self, key: &str) -> impl Future<Output = Result<Option<Observation>, AwsFailure>> + Send {
        (**self).observation(key)
    }
}

/// Stores each failover's [`FailbackRecord`] beside its lock record, with optimistic
/// concurrency, and finds the failover to fail back from.
pub trait FailbackStore: Send + Sync {
    /// Creates the record only if none exists for its failover; `false` if one did.
    fn create_failback(&self, record: &FailbackRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send;

    /// The failback record of one failover.
    fn load_failback(
        &self,
        failover_id: &str,
    ) -> impl Future<Output = Result<Option<FailbackRecord>, AwsFailure>> + Send;

    /// Writes the record with its version + 1, only if the stored version is still
    /// `record.version`; `false` if another writer came first.
    fn save_failback(&self, record: &FailbackRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send;

    /// The most recently published failover's lock record (a small set: one per failover).
    fn latest_published(&self) -> impl Future<Output = Result<Option<LockRecord>, AwsFailure>> + Send;
}

impl<T: FailbackStore> FailbackStore for std::sync::Arc<T> {
    fn create_failback(&self, record: &FailbackRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send {
        (**self).create_failback(record)
    }

    fn load_failback(
        &self,
        failover_id: &str,
    ) -> impl Future<Output = Result<Option<FailbackRecord>, AwsFailure>> + Send {
        (**self).load_failback(failover_id)
    }

    fn save_failback(&self, record: &FailbackRecord) -> impl Future<Output = Result<bool, AwsFailure>> + Send {
        (**self).save_failback(record)
    }

    fn latest_published(&self) -> impl Future<Output = Result<Option<LockRecord>, AwsFailure>> + Send {
        (**self).latest_published()
    }
}
