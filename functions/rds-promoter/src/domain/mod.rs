//! Promoting the cross-region read replica: the pure decisions behind rds-promoter
//! (synchronous, no AWS types).

mod decision;
mod failback;
mod failback_report;
mod fence;
mod instance;
mod lock;
mod plan_report;
mod replica_gate;
mod rpo;
mod split_brain;
mod stream_drain;

pub use decision::{promotion_step, PromotionStep};
pub use failback::{
    failback_readiness, failback_replica_name, replica_readiness, retired_name, FailbackRecord, FailbackStage,
    Preconditions, Readiness, ReplicaReadiness,
};
pub use failback_report::{failback_report, FailbackReport, ServerResult, Topology, WriteFreeze};
pub use fence::{
    database_fence_step, fenced_name, replication_fence_step, DatabaseFenceStep, FenceMode, FenceOutcome, FenceRecord,
    FenceState, MappingView, ReplicationFenceStep,
};
pub use instance::{guard_replica, writability, DbInstanceView, ReplicaGuard, Writability};
pub use lock::{Claim, LockRecord, Stage};
pub use plan_report::{plan_report, timeline, PlanOutcome, PlanReport, PlanState, StateKind, StateVisit, StepTiming};
pub use replica_gate::{replica_gate, GateOverride, GateVerdict};
pub use rpo::{rpo_estimate, LagMinute, RpoEstimate};
pub use split_brain::{serves_writes, split_brain_verdict, SourceProbe, SplitBrainVerdict};
pub use stream_drain::{reverse_drained, reverse_keeps_up, StreamDrain};
