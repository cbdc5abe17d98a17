use failover_core::EnvReader;
use health_monitor::{wiring, MonitorConfig};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = MonitorConfig::from_env(&EnvReader::from_process())?;
    let monitor = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        monitor.handle_and_report(event.payload).await
    }))
    .await
}
