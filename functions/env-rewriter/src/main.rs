//! Lambda entry point of env-rewriter: configuration and clients once, then each event.

use env_rewriter::{wiring, RewriterConfig};
use failover_core::EnvReader;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = match RewriterConfig::from_env(&EnvReader::from_process()) {
        Ok(config) => config,
        Err(error) => return failover_core::startup::serve_configuration_error(env_rewriter::FUNCTION, error).await,
    };
    let rewriter = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event| rewriter.handle_lambda_event(event))).await
}
