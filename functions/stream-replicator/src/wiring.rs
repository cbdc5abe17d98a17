//! Building the production replicator once, at init, from the typed configuration: the
//! source and target SDK clients, the dead-letter bucket's client, and the key schema.

use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::{EnvReader, FailoverError};

use crate::adapters::dynamodb::{describe_key_schema, DynamoDbTable};
use crate::adapters::dynamodb_stream::DynamoDbStream;
use crate::adapters::s3::S3Bucket;
use crate::config::ReplicatorConfig;
use crate::handler::Replicator;
use failover_core::parameters::SsmParameters;

/// The replicator over the SDK adapters: the target table written, the source table read,
/// the dead-letter bucket.
pub type ProductionReplicator = Replicator<DynamoDbTable, DynamoDbTable, S3Bucket, SsmParameters>;

/// Reads the configuration, builds the source and target clients and learns the key
/// schema from the target table (DescribeTable) unless `KEY_ATTRIBUTES` configures it.
pub async fn build(env: &EnvReader) -> Result<ProductionReplicator, FailoverError> {
    build_with_stream(env).await.map(|(replicator, _)| replicator)
}

/// [`build`], with the source table's stream the drain check reads.
pub async fn build_with_stream(env: &EnvReader) -> Result<(ProductionReplicator, DynamoDbStream), FailoverError> {
    let config = ReplicatorConfig::from_env(env)?;
    let timeouts = ClientTimeouts::default();
    let target = aws_sdk_dynamodb::Client::new(&sdk_config(&config.target_region, timeouts).await);
    let source_config = sdk_config(&config.source_region, timeouts).await;
    let source = aws_sdk_dynamodb::Client::new(&source_config);
    let bucket = S3Bucket::new(s3_client(&source_config), &config.dead_letter.bucket);
    let schema = match &config.key_schema {
        Some(schema) => schema.clone(),
        None => describe_key_schema(&target, &config.target_table).await?,
    };
    tracing::info!(
        source_table = %config.source_table,
        source_region = %config.source_region,
        target_table = %config.target_table,
        target_region = %config.target_region,
        dead_letter_bucket = %config.dead_letter.bucket,
        active_region_parameter = config.active_region.as_ref().map_or("none", |p| p.name.as_str()),
        key_schema = %schema,
        "stream-replicator ready"
    );
    let writer = DynamoDbTable::new(target, &config.target_table, schema.clone());
    let stream = DynamoDbStream::new(
        source.clone(),
        aws_sdk_dynamodbstreams::Client::new(&source_config),
        &config.source_table,
    );
    let reader = DynamoDbTable::new(source, &config.source_table, schema.clone());
    // The published active region (where the region-switch plan publishes it); without a
    // PARAMETER_PREFIX it is never read.
    let parameter_region = config
        .active_region
        .as_ref()
        .map_or(&config.target_region, |p| &p.region)
        .clone();
    let parameters = SsmParameters::new(aws_sdk_ssm::Client::new(&sdk_config(&parameter_region, timeouts).await));
    let replicator = Replicator::new(config, schema, writer, reader, bucket)?.with_active_region(parameters);
    Ok((replicator, stream))
}

/// The S3 client of the dead-letter bucket, which lives in the function's (the source's)
/// region. Behind an endpoint override (a VPC endpoint, a local emulator) buckets are
/// addressed by path, since the override's host has no per-bucket names.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = config.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}
