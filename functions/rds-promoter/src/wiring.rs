//! Builds the production handler from configuration: SDK clients once, per region.

use std::time::Duration;

use crate::adapters::{DynamoDbLockStore, LambdaMappings, RdsInstances, SfnHistory};
use aws_sdk_rds::config::retry::RetryConfig;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::parameters::SsmParameters;

use crate::config::PromoterConfig;
use crate::handler::Promoter;

/// The handler over the real AWS adapters.
pub type ProductionPromoter =
    Promoter<RdsInstances, RdsInstances, DynamoDbLockStore, SsmParameters, LambdaMappings, SfnHistory>;

/// Builds clients for the replica's region and fast-failing RDS and Lambda clients for the
/// source's.
pub async fn build(config: PromoterConfig) -> ProductionPromoter {
    let replica = sdk_config(&config.replica.region, ClientTimeouts::default()).await;
    // The split-brain probe must not hang on a dead region: short timeouts, no SDK retries.
    let probe_timeouts = ClientTimeouts {
        connect: config.source_probe_timeout.min(Duration::from_secs(2)),
        attempt: config.source_probe_timeout,
    };
    let source_sdk = sdk_config(&config.source_region, probe_timeouts).await;
    let source_rds = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&source_sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    // The fence's Lambda calls go to the same possibly dead region: as fast-failing.
    let source_lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&source_sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    // The RPO estimate is reported, never waited for: short timeouts, one retry.
    let metrics_sdk = sdk_config(
        &config.replica.region,
        ClientTimeouts {
            connect: Duration::from_secs(2),
            attempt: Duration::from_secs(3),
        },
    )
    .await;
    let metrics = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&metrics_sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build(),
    );
    // Failback reads the original-region replica's ReplicaLag there.
    let source_metrics = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&sdk_config(&config.source_region, ClientTimeouts::default()).await)
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build(),
    );
    let table = config.state_table.clone();
    Promoter::new(
        config,
        RdsInstances::new(aws_sdk_rds::Client::new(&replica)).with_metrics(metrics),
        RdsInstances::new(source_rds).with_metrics(source_metrics),
        DynamoDbLockStore::new(aws_sdk_dynamodb::Client::new(&replica), table),
        SsmParameters::new(aws_sdk_ssm::Client::new(&replica)),
        LambdaMappings::new(source_lambda),
    )
    // The reverse replicator runs in the replica's region.
    .with_reverse_mappings(LambdaMappings::new(aws_sdk_lambda::Client::new(&replica)))
    // The plan runs in the replica's region: its execution histories are there.
    .with_history(SfnHistory::new(aws_sdk_sfn::Client::new(&replica)))
}
