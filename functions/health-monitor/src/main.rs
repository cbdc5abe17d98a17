//! Lambda entry point of health-monitor: configuration and clients once, then each run.

use failover_core::EnvReader;
use health_monitor::{wiring, MonitorConfig};
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = match MonitorConfig::from_env(&EnvReader::from_process()) {
        Ok(config) => config,
        Err(error) => return failover_core::startup::serve_configuration_error(health_monitor::FUNCTION, error).await,
    };
    let monitor = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event| monitor.handle_lambda_event(event))).await
}
