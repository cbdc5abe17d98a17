//! Step "report" of the failback plan: its timeline and write freeze from the execution's
//! own history, the final topology and every server. The plan notifies it and ends with it.

use failover_core::emf::{MetricLine, Unit};
use serde_json::Value;
use tracing::info;

use crate::domain::{failback_report, FailbackReport};
use crate::error::PromoterError;
use crate::handler::Promoter;
use crate::invocation::now_ms;
use crate::ports::ExecutionHistory;

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    H: ExecutionHistory,
{
    /// Reads the execution's history and assembles the failback report (logged and measured).
    pub async fn report_failback(&self, execution_arn: &str, plan: &Value) -> Result<Value, PromoterError> {
        let (started_at_ms, visits) = self.history.visits(execution_arn).await?;
        let report = failback_report(execution_arn, plan, &visits, started_at_ms, now_ms());
        let json = serde_json::to_value(&report).unwrap_or_default();
        info!(report = %json, "failback plan report");
        metric_line(&report).emit();
        Ok(json)
    }
}

/// `FailbackSeconds`, `WriteFreezeSeconds`, `ServersNotSwitched`, and `FailedFailbacks`.
fn metric_line(report: &FailbackReport) -> MetricLine {
    let mut line = MetricLine::for_function(crate::FUNCTION)
        .metric("FailbackSeconds", report.elapsed_s, Unit::Seconds)
        .metric("ServersNotSwitched", report.not_switched.len() as f64, Unit::Count)
        .property("Outcome", report.outcome)
        .property("ExecutionArn", report.execution_arn.as_str());
    if let Some(freeze) = &report.write_freeze {
        line = line.metric("WriteFreezeSeconds", freeze.seconds, Unit::Seconds);
    }
    if report.outcome == "failed" {
        line = line.metric("FailedFailbacks", 1.0, Unit::Count);
    }
    line
}
