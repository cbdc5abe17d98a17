//! Builds the production handler from configuration: SDK clients once.

use failover_core::adapters::{Ec2Instances, SsmCommands, SsmParameters};
use failover_core::clients::{ClientTimeouts, RegionClients};

use crate::config::RewriterConfig;
use crate::handler::Rewriter;

/// The handler over the real AWS adapters.
pub type ProductionRewriter = Rewriter<Ec2Instances, SsmCommands, SsmCommands, SsmParameters>;

/// Builds the clients of the app servers' region (Parameter Store is read there too).
pub async fn build(config: RewriterConfig) -> ProductionRewriter {
    let clients = RegionClients::load(&config.app_region, ClientTimeouts::default()).await;
    Rewriter::new(
        config,
        Ec2Instances::new(clients.ec2),
        SsmCommands::new(clients.ssm.clone()),
        SsmCommands::new(clients.ssm.clone()),
        SsmParameters::new(clients.ssm),
    )
}
