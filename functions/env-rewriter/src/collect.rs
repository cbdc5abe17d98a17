//! Step "collect" of the region-switch plan's repoint loop: one look at each command a
//! `sendOnly` run sent, so the plan (a Wait state), not one invocation, waits for slow
//! servers. The report goes back and forth until no command is pending or the wait budget
//! (RESULT_WAIT_SECONDS since SendCommand) is spent.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use failover_core::parameters::ParameterReader;
use serde_json::Value;

use crate::domain::InstanceResult;
use crate::error::RewriterError;
use crate::handler::Rewriter;
use crate::ports::{CommandRunner, InstanceFinder, NodeDirectory};
use crate::report::{InstanceReport, RewriteReport, RewriteStatus};

/// Now, epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl<F, N, C, P> Rewriter<F, N, C, P>
where
    F: InstanceFinder,
    N: NodeDirectory,
    C: CommandRunner,
    P: ParameterReader,
{
    /// Reads the results of `sent` (a report of status `sent`): still `sent` while commands
    /// run and the budget lasts, else the final report (`success` or `partial`,
    /// every server's result; a server with no final status is `timed-out`).
    pub(crate) async fn collect(&self, sent: Value) -> Result<RewriteReport, RewriterError> {
        let invalid = |why: String| RewriterError::InvalidEvent(format!("collect: {why}"));
        let mut report: RewriteReport = serde_json::from_value(sent).map_err(|e| invalid(e.to_string()))?;
        if report.status != RewriteStatus::Sent {
            return Err(invalid(format!(
                "the report's status is {}, not sent: nothing to collect",
                serde_json::to_value(report.status).unwrap_or_default()
            )));
        }
        let sent_at_ms = report.sent_at_ms.ok_or_else(|| invalid("sentAtMs is missing".into()))?;
        let pending = std::mem::take(&mut report.pending);
        let apps: BTreeMap<String, String> = pending.iter().map(|p| (p.instance_id.clone(), p.app.clone())).collect();
        let pairs = pending
            .iter()
            .map(|p| (p.command_id.clone(), p.instance_id.clone()))
            .collect();
        let fleet = self.fleet(report.fleet_region.as_ref())?;
        let (still_pending, mut results) = self.look(fleet, pairs).await;
        let waited_ms = now_ms() - sent_at_ms;
        if !still_pending.is_empty() && waited_ms < self.config.max_wait.as_millis() as i64 {
            report.pending = crate::fleet::pending_commands(&still_pending, &apps);
        } else {
            for (_, instance_id) in still_pending {
                let detail = format!("no final status {:.1} s after SendCommand", waited_ms as f64 / 1000.0);
                results.insert(instance_id, InstanceResult::TimedOut { detail });
            }
        }
        report
            .instances
            .extend(results.into_iter().map(|(instance_id, result)| InstanceReport {
                app: apps.get(&instance_id).cloned().unwrap_or_default(),
                instance_id,
                result,
            }));
        report.instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        if !report.pending.is_empty() {
            return Ok(report);
        }
        report.status = RewriteStatus::Success;
        self.verdict(report, true, true)
    }
}
