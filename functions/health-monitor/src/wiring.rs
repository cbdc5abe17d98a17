//! Builds the production handler: heartbeat clients with short timeouts in both regions.

use std::collections::BTreeMap;

use crate::adapters::{DynamoDbHealthStore, DynamoDbHeartbeats};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::parameters::SsmParameters;

use crate::config::MonitorConfig;
use crate::handler::Monitor;

/// The handler over the real AWS adapters.
pub type ProductionMonitor = Monitor<DynamoDbHeartbeats, DynamoDbHealthStore, SsmParameters>;

/// Builds the clients once: a dead region must fail its check within the timeout, so the
/// heartbeat clients do not retry on their own; the probe retries a down answer
/// (`HEARTBEAT_ATTEMPTS`) inside the check's timeout.
pub async fn build(config: MonitorConfig) -> ProductionMonitor {
    let timeouts = ClientTimeouts {
        connect: config.check_timeout,
        attempt: config.check_timeout,
    };
    let mut heartbeat_clients = BTreeMap::new();
    for region in [&config.regions.primary, &config.regions.secondary] {
        let sdk = sdk_config(region, timeouts).await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        heartbeat_clients.insert(region.clone(), client);
    }
    let state = sdk_config(&config.state_region, ClientTimeouts::default()).await;
    let probe = DynamoDbHeartbeats::new(
        heartbeat_clients,
        config.heartbeat_table.clone(),
        config.check_timeout,
        config.heartbeat_attempts,
    );
    let store = DynamoDbHealthStore::new(
        aws_sdk_dynamodb::Client::new(&state),
        config.state_table.clone(),
        config.state_key(),
    );
    Monitor::new(
        config,
        probe,
        store,
        SsmParameters::new(aws_sdk_ssm::Client::new(&state)),
    )
}
