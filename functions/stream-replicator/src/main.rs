//! Lambda entry point of stream-replicator: everything is built once, then each batch is handled.

use failover_core::{startup::serve_configuration_error, EnvReader, FailoverError};
use lambda_runtime::{service_fn, Error};
use stream_replicator::{allocator, entry, wiring, FUNCTION};

// One thread: a 256 MB function gets a fraction of a vCPU, so worker threads add no speed,
// and each would keep its own allocator heap (a 6 MB batch peaked at 73 MB on the
// multi-threaded runtime, 61 MB on one thread, in scripts/bench-replicator.sh). The writes
// stay concurrent: they are futures on this thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    allocator::return_freed_memory();
    failover_core::telemetry::init_tracing();
    let (replicator, stream) = match wiring::build_with_stream(&EnvReader::from_process()).await {
        Ok(built) => built,
        Err(FailoverError::Config(error)) => return serve_configuration_error(FUNCTION, error).await,
        Err(other) => return Err(other.into()),
    };
    let (replicator, stream) = (&replicator, &stream);
    lambda_runtime::run(service_fn(move |event| entry::handle(replicator, stream, event))).await
}
