//! Lambda entry point of rds-promoter: configuration and clients once, then each event.

use failover_core::EnvReader;
use lambda_runtime::service_fn;
use rds_promoter::{wiring, PromoterConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = match PromoterConfig::from_env(&EnvReader::from_process()) {
        Ok(config) => config,
        Err(error) => return failover_core::startup::serve_configuration_error(rds_promoter::FUNCTION, error).await,
    };
    let promoter = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event| promoter.handle_lambda_event(event))).await
}
