//! Lambda entry point of stream-replicator: everything is built once, then each batch is handled.

use failover_core::EnvReader;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;
use stream_replicator::{allocator, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    allocator::keep_freed_memory();
    failover_core::telemetry::init_tracing();
    let replicator = wiring::build(&EnvReader::from_process()).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        replicator.handle_lambda_event(event)
    }))
    .await
}
