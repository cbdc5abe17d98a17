use std::time::Duration;

use failover_core::EnvReader;
use lambda_runtime::{service_fn, LambdaEvent};
use rds_promoter::{wiring, Invocation, PromoterConfig};
use serde_json::Value;

/// Time kept back from the invocation deadline to release the lock and report.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = PromoterConfig::from_env(&EnvReader::from_process())?;
    let promoter = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_context(&event.context, DEADLINE_MARGIN);
        promoter.handle_and_report(event.payload, &invocation).await
    }))
    .await
}
