//! Promoting the cross-region read replica: the pure decisions behind rds-promoter.

mod instance;
mod lock;
mod parameters;
mod split_brain;

pub use instance::{guard_replica, writability, DbInstanceView, ReplicaGuard, Writability};
pub use lock::{Claim, LockRecord, Stage};
pub use parameters::{ParameterNames, PublishedValues};
pub use split_brain::{split_brain_verdict, SourceProbe, SplitBrainVerdict};
