//! Lambda entry point of stream-replicator: everything is built once, then each batch is handled.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stream_replicator::allocator::keep_freed_memory();
    failover_core::telemetry::init_tracing();
    let replicator = stream_replicator::init(&failover_core::EnvReader::from_process()).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        replicator.handle_lambda_event(event)
    }))
    .await
}
