//! An in-memory fleet: the instances EC2 would list and the nodes SSM would report, with
//! the same tag filtering, for tests that need servers without an emulator.

use failover_core::AwsFailure;

use crate::domain::{AppInstance, ManagedNode};
use crate::ports::{InstanceFinder, NodeDirectory};

/// Running instances and managed nodes, filtered by App tag like the real discovery.
#[derive(Debug, Clone, Default)]
pub struct MemoryInventory {
    /// Running EC2 instances.
    pub instances: Vec<AppInstance>,
    /// SSM managed nodes with their ping status.
    pub nodes: Vec<ManagedNode>,
}

impl InstanceFinder for MemoryInventory {
    async fn running_app_instances(&self, apps: &[String], _env: &str) -> Result<Vec<AppInstance>, AwsFailure> {
        Ok(self
            .instances
            .iter()
            .filter(|i| apps.contains(&i.app))
            .cloned()
            .collect())
    }
}

impl NodeDirectory for MemoryInventory {
    async fn tagged_nodes(&self, app: &str, _env: &str) -> Result<Vec<ManagedNode>, AwsFailure> {
        Ok(self.nodes.iter().filter(|n| n.app == app).cloned().collect())
    }
}
