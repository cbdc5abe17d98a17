//! Building the production replicator once, at init, from the typed configuration: the
//! source and target SDK clients, and the key schema.

use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::{EnvReader, FailoverError};

use crate::adapters::dynamodb::{describe_key_schema, DynamoDbTable};
use crate::config::ReplicatorConfig;
use crate::handler::Replicator;

/// The replicator over the SDK adapter: the target table written, the source table read.
pub type ProductionReplicator = Replicator<DynamoDbTable, DynamoDbTable>;

/// Reads the configuration, builds the source and target clients and learns the key
/// schema from the target table (DescribeTable) unless `KEY_ATTRIBUTES` configures it.
pub async fn build(env: &EnvReader) -> Result<ProductionReplicator, FailoverError> {
    let config = ReplicatorConfig::from_env(env)?;
    let timeouts = ClientTimeouts::default();
    let target = aws_sdk_dynamodb::Client::new(&sdk_config(&config.target_region, timeouts).await);
    let source = aws_sdk_dynamodb::Client::new(&sdk_config(&config.source_region, timeouts).await);
    let schema = match &config.key_schema {
        Some(schema) => schema.clone(),
        None => describe_key_schema(&target, &config.target_table).await?,
    };
    tracing::info!(
        source_table = %config.source_table,
        source_region = %config.source_region,
        target_table = %config.target_table,
        target_region = %config.target_region,
        key_schema = %schema,
        "stream-replicator ready"
    );
    let writer = DynamoDbTable::new(target, &config.target_table, schema.clone());
    let reader = DynamoDbTable::new(source, &config.source_table, schema.clone());
    Ok(Replicator::new(config, schema, writer, reader)?)
}
