//! Step "report" of the region-switch plan: its timeline from the execution's own history,
//! what every step returned, and what is still pending. The plan notifies it and ends with
//! it as the execution's output.

use failover_core::emf::{MetricLine, Unit};
use serde_json::Value;
use tracing::info;

use crate::domain::{plan_report, PlanOutcome, PlanReport, PlanState};
use crate::error::PromoterError;
use crate::handler::Promoter;
use crate::invocation::now_ms;
use crate::ports::ExecutionHistory;

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    H: ExecutionHistory,
{
    /// Reads the execution's history and assembles the report (logged and measured too).
    pub async fn report_plan(&self, execution_arn: &str, plan: Value) -> Result<Value, PromoterError> {
        let state: PlanState = serde_json::from_value(plan)
            .map_err(|e| PromoterError::InvalidEvent(format!("planStep \"report\": the plan's state: {e}")))?;
        let (started_at_ms, visits) = self.history.visits(execution_arn).await?;
        let report = plan_report(execution_arn, &state, &visits, started_at_ms, now_ms());
        let json = serde_json::to_value(&report).unwrap_or_default();
        info!(report = %json, "region-switch plan report");
        metric_line(&report).emit();
        Ok(json)
    }
}

/// `SwitchSeconds` (start to report), `SwitchWaitSeconds`, `ServersLeftToConvergence`, and
/// `FailedSwitches` when it stopped in a failed state.
fn metric_line(report: &PlanReport) -> MetricLine {
    let mut line = MetricLine::for_function(crate::FUNCTION)
        .metric("SwitchSeconds", report.elapsed_s, Unit::Seconds)
        .metric("SwitchWaitSeconds", report.waited_s, Unit::Seconds)
        .metric(
            "ServersLeftToConvergence",
            report.left_to_convergence.len() as f64,
            Unit::Count,
        )
        .property("Outcome", serde_json::to_value(report.outcome).unwrap_or_default())
        .property("ExecutionArn", report.execution_arn.as_str());
    if report.outcome == PlanOutcome::Failed {
        line = line.metric("FailedSwitches", 1.0, Unit::Count);
    }
    if let Some(id) = &report.failover_id {
        line = line.property("FailoverId", id.as_str());
    }
    line
}
