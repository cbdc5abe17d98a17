use std::time::Duration;

use env_rewriter::{wiring, RewriterConfig};
use failover_core::retry::Deadline;
use failover_core::EnvReader;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

/// Time kept back from the invocation deadline to report.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    failover_core::telemetry::init_tracing();
    let config = RewriterConfig::from_env(&EnvReader::from_process())?;
    let rewriter = &wiring::build(config).await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = Deadline::from_lambda(event.context.deadline(), DEADLINE_MARGIN);
        rewriter.handle_and_report(event.payload, deadline).await
    }))
    .await
}
