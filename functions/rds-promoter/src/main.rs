//! Lambda entry point of rds-promoter: configuration and clients once, then each event.

use failover_core::EnvReader;
use lambda_runtime::service_fn;
use rds_promoter::{wiring, PromoterConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = PromoterConfig::from_env(&EnvReader::from_process())?;
    let promoter = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event| promoter.handle_lambda_event(event))).await
}
