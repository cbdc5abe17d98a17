//! The SDK clients of one region (every service the tests and the drill touch), built from
//! the core's SDK configuration. The functions build only the clients they call.

use aws_config::SdkConfig;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;

/// Every client a function may need in one region.
#[derive(Debug, Clone)]
pub struct RegionClients {
    /// The region these clients talk to.
    pub region: Region,
    /// DynamoDB (data, state, lock and heartbeat tables).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// RDS (read replica promotion).
    pub rds: aws_sdk_rds::Client,
    /// SSM (Parameter Store and Run Command).
    pub ssm: aws_sdk_ssm::Client,
    /// EC2 (instance discovery).
    pub ec2: aws_sdk_ec2::Client,
    /// Lambda (the forward replicator's event source mappings).
    pub lambda: aws_sdk_lambda::Client,
    /// S3 (the stream-replicator's dead-letter bucket), addressed by path as the
    /// emulator's single host requires.
    pub s3: aws_sdk_s3::Client,
}

impl RegionClients {
    /// Builds the clients from an already loaded configuration.
    pub fn from_config(region: Region, config: &SdkConfig) -> Self {
        Self {
            region,
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            rds: aws_sdk_rds::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build()),
        }
    }

    /// Loads the configuration for `region` and builds its clients.
    pub async fn load(region: &Region, timeouts: ClientTimeouts) -> Self {
        let config = sdk_config(region, timeouts).await;
        Self::from_config(region.clone(), &config)
    }
}
