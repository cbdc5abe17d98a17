//! The JSON report each invocation logs and returns, with one line per server, and its
//! EMF metrics.

use crate::domain::{InstanceResult, RewriteTarget};
use failover_core::emf::{MetricLine, Unit};
use failover_core::Region;
use serde::{Deserialize, Serialize};

/// Overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewriteStatus {
    /// Every matching server was repointed.
    Success,
    /// Commands sent, results still to collect (`sendOnly`, or a `collect` look with
    /// commands still running): hand the report back as `{"collect": <report>}`.
    Sent,
    /// Some matching server was not repointed: it failed, timed out, or could not be
    /// commanded (agent offline, not registered); or no server matched.
    Partial,
    /// The event does not call for a rewrite.
    Ignored,
    /// Dry run: discovered and planned, nothing sent.
    DryRun,
}

/// One server's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    /// Instance or node id.
    pub instance_id: String,
    /// Its App tag.
    pub app: String,
    /// What happened.
    #[serde(flatten)]
    pub result: InstanceResult,
}

/// A command sent to one server whose result is still to be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommand {
    /// SendCommand's id.
    pub command_id: String,
    /// The server.
    pub instance_id: String,
    /// Its App tag.
    pub app: String,
}

/// The report of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewriteReport {
    /// Overall result.
    pub status: RewriteStatus,
    /// What triggered it.
    pub trigger: String,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_because: Option<String>,
    /// Where the servers are pointed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<RewriteTarget>,
    /// The failover id carried in the command comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_id: Option<String>,
    /// The region whose servers were commanded (APP_REGION's, or FENCE_REGION's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_region: Option<Region>,
    /// SendCommand ids.
    #[serde(default)]
    pub command_ids: Vec<String>,
    /// Every matching server with a result (commanded and done, or skipped).
    #[serde(default)]
    pub instances: Vec<InstanceReport>,
    /// Status `sent`: the commands whose results are still to be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingCommand>,
    /// When the commands were sent (epoch ms): the collect looks' wait budget starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<i64>,
}

impl RewriteReport {
    /// A report with nothing done yet.
    pub fn new(status: RewriteStatus, trigger: &str) -> Self {
        Self {
            status,
            trigger: trigger.to_owned(),
            ignored_because: None,
            target: None,
            failover_id: None,
            fleet_region: None,
            command_ids: Vec::new(),
            instances: Vec::new(),
            pending: Vec::new(),
            sent_at_ms: None,
        }
    }

    /// Counts of each result kind, for logs and metrics.
    pub fn count(&self, predicate: impl Fn(&InstanceResult) -> bool) -> usize {
        self.instances.iter().filter(|i| predicate(&i.result)).count()
    }

    /// One line naming each server that was not repointed (for the error message).
    pub fn failures_summary(&self) -> String {
        self.instances
            .iter()
            .filter(|i| !i.result.is_success())
            .map(|i| {
                format!(
                    "{} {}",
                    i.instance_id,
                    serde_json::to_string(&i.result).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The EMF line for this report. The per-server counts come with final reports only
    /// (not `sent`, whose servers the final report counts), so each server counts once;
    /// `InstancesNotRepointed` (failed, timed out or not commandable) is what the
    /// template's alarm watches.
    pub fn metric_line(&self) -> MetricLine {
        let mut line = MetricLine::for_function(crate::FUNCTION)
            .metric("Invocations", 1.0, Unit::Count)
            .metric("Commands", self.command_ids.len() as f64, Unit::Count)
            .property("Status", serde_json::to_value(self.status).unwrap_or_default());
        if let Some(region) = &self.fleet_region {
            line = line.property("FleetRegion", region.as_str());
        }
        if self.status != RewriteStatus::Sent {
            let skipped = self.count(|r| matches!(r, InstanceResult::Skipped { .. }));
            let undeliverable = self.count(|r| matches!(r, InstanceResult::Undeliverable { .. }));
            let succeeded = self.count(InstanceResult::is_success);
            let not_repointed = self.instances.len() - succeeded - skipped;
            line = line
                .metric("InstancesSucceeded", succeeded as f64, Unit::Count)
                .metric("InstancesNotRepointed", not_repointed as f64, Unit::Count)
                .metric("InstancesUndeliverable", undeliverable as f64, Unit::Count)
                .metric("InstancesSkipped", skipped as f64, Unit::Count);
        }
        if self.status == RewriteStatus::Partial {
            line = line.metric("PartialFailures", 1.0, Unit::Count);
        }
        if let Some(id) = &self.failover_id {
            line = line.property("FailoverId", id.as_str());
        }
        line
    }
}
