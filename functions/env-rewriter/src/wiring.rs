//! Builds the production handler from configuration: SDK clients once, per region.

use crate::adapters::{Ec2Instances, SsmCommands};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::parameters::SsmParameters;

use crate::config::RewriterConfig;
use crate::handler::Rewriter;

/// The handler over the real AWS adapters.
pub type ProductionRewriter = Rewriter<Ec2Instances, SsmCommands, SsmCommands, SsmParameters>;

/// Builds the clients of the app servers' region (Parameter Store is read there too) and,
/// with FENCE_REGION, those of the other region's fleet.
pub async fn build(config: RewriterConfig) -> ProductionRewriter {
    let sdk = sdk_config(&config.app_region, ClientTimeouts::default()).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let fence_region = config.fence_region.clone();
    let rewriter = Rewriter::new(
        config,
        Ec2Instances::new(aws_sdk_ec2::Client::new(&sdk)),
        SsmCommands::new(ssm.clone()),
        SsmCommands::new(ssm.clone()),
        SsmParameters::new(ssm),
    );
    let Some(region) = fence_region else {
        return rewriter;
    };
    let sdk = sdk_config(&region, ClientTimeouts::default()).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    rewriter.with_fence_fleet(
        Ec2Instances::new(aws_sdk_ec2::Client::new(&sdk)),
        SsmCommands::new(ssm.clone()),
        SsmCommands::new(ssm),
    )
}
