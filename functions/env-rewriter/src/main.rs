//! Lambda entry point of env-rewriter: configuration and clients once, then each event.

use env_rewriter::{wiring, RewriterConfig};
use failover_core::EnvReader;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = RewriterConfig::from_env(&EnvReader::from_process())?;
    let rewriter = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event| rewriter.handle_lambda_event(event))).await
}
