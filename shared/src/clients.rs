//! SDK clients, one set per region, built once at init and reused by every invocation.
//!
//! The endpoint is resolved by aws-config from the standard `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` variables, so pointing a function at a local emulator
//! needs no code path of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::region::Region;

/// Timeouts applied to every client: a dead region must fail fast, not eat the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// TCP/TLS connect timeout.
    pub connect: Duration,
    /// Upper bound of one HTTP attempt.
    pub attempt: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(10),
        }
    }
}

/// Loads the shared SDK configuration (credentials, endpoint, retry) for one region.
pub async fn sdk_config(region: &Region, timeouts: ClientTimeouts) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.as_str().to_owned()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .build(),
        )
        .load()
        .await
}

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
        }
    }

    /// Loads the configuration for `region` and builds its clients.
    pub async fn load(region: &Region, timeouts: ClientTimeouts) -> Self {
        let config = sdk_config(region, timeouts).await;
        Self::from_config(region.clone(), &config)
    }
}

/// Clients for each region a function works with, keyed by region.
#[derive(Debug, Clone, Default)]
pub struct ClientsByRegion {
    by_region: BTreeMap<Region, RegionClients>,
}

impl ClientsByRegion {
    /// Builds one client set per distinct region.
    pub async fn load<'a>(regions: impl IntoIterator<Item = &'a Region>, timeouts: ClientTimeouts) -> Self {
        let mut by_region = BTreeMap::new();
        for region in regions {
            if !by_region.contains_key(region) {
                by_region.insert(region.clone(), RegionClients::load(region, timeouts).await);
            }
        }
        Self { by_region }
    }

    /// The clients of `region`, if it was loaded.
    pub fn get(&self, region: &Region) -> Option<&RegionClients> {
        self.by_region.get(region)
    }

    /// The regions loaded.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.by_region.keys()
    }
}
