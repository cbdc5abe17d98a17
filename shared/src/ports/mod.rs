//! Narrow traits in front of every AWS dependency, so handlers are generic over them
//! and decisions can be tested without AWS.

mod app_servers;
mod db_instances;
mod failover_lock;
mod health;
mod parameters;

pub use app_servers::{CommandRunner, InstanceFinder, NodeDirectory, ParameterReader};
pub use db_instances::DbInstances;
pub use failover_lock::FailoverLockStore;
pub use health::{ApprovalReader, HealthStateStore, HeartbeatProbe};
pub use parameters::ParameterWriter;
