//! The JSON report each invocation logs and returns, and its EMF metrics.

use crate::domain::{FenceRecord, LockRecord, RpoEstimate, SplitBrainVerdict, Stage};
use failover_core::alarm::IgnoreReason;
use failover_core::emf::{MetricLine, Unit};
use failover_core::parameters::ParameterNames;
use serde::Serialize;

/// What the invocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromotionAction {
    /// The transition does not call for a failover; no AWS call was made.
    Ignored,
    /// This invocation promoted the replica and published the endpoint.
    Promoted,
    /// The instance was no longer a replica; the endpoint was (re)published.
    AlreadyPromoted,
    /// An earlier attempt had started this failover; this one finished it.
    Resumed,
    /// The failover had already completed; nothing was changed.
    AlreadyComplete,
    /// Dry run: every check ran, nothing was changed.
    DryRun,
    /// The old writers are fenced (or fencing is switched off for them).
    Fenced,
    /// Some part of the fence waits for the primary region to answer.
    FencePending,
    /// The scheduled sweep looked at every recorded fence.
    SweptFences,
}

/// The writable endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Host name.
    pub address: String,
    /// Port.
    pub port: u16,
}

/// Time spent, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// This invocation, start to end.
    pub invocation_ms: u64,
    /// From PromoteReadReplica accepted to writable (when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote_to_writable_ms: Option<i64>,
    /// From the lock's creation to publication (when complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_ms: Option<i64>,
}

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionReport {
    /// What was done.
    pub action: PromotionAction,
    /// The alarm that triggered the invocation.
    pub alarm: String,
    /// The failover id (alarm @ state timestamp), unless ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_id: Option<String>,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_because: Option<IgnoreReason>,
    /// The replica (now primary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The region now serving the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_region: Option<String>,
    /// The replica's source before promotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub former_source: Option<String>,
    /// The split-brain guard's verdict, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_brain: Option<SplitBrainVerdict>,
    /// The writable endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Parameters written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<String>,
    /// The lock's stage at the end (`null` when no lock was taken: the plan reads it).
    pub stage: Option<Stage>,
    /// Dry run: what would have been done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
    /// Plan step `fence`: where this failover's fence stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceRecord>,
    /// The sweep: every fence it looked at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fences: Vec<FenceRecord>,
    /// How far behind the replica was when it was promoted (what the failover may lose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_estimate: Option<RpoEstimate>,
    /// Durations.
    pub timings: Timings,
}

impl PromotionReport {
    /// A report with only the action and alarm set.
    pub fn new(action: PromotionAction, alarm: &str) -> Self {
        Self {
            action,
            alarm: alarm.to_owned(),
            failover_id: None,
            ignored_because: None,
            replica: None,
            active_region: None,
            former_source: None,
            split_brain: None,
            endpoint: None,
            published: Vec::new(),
            stage: None,
            plan: Vec::new(),
            fence: None,
            fences: Vec::new(),
            rpo_estimate: None,
            timings: Timings::default(),
        }
    }

    /// The report of a failover whose lock record is `record`.
    pub fn for_record(
        alarm: &str,
        record: &LockRecord,
        action: PromotionAction,
        split_brain: Option<SplitBrainVerdict>,
        names: &ParameterNames,
        active_region: &str,
    ) -> Self {
        let mut report = Self::new(action, alarm);
        report.failover_id = Some(record.failover_id.clone());
        report.replica = Some(record.replica_id.clone());
        report.active_region = Some(active_region.to_owned());
        report.former_source = record.former_source.clone();
        report.split_brain = split_brain;
        report.stage = Some(record.stage);
        report.endpoint = record
            .endpoint_address
            .clone()
            .zip(record.endpoint_port)
            .map(|(address, port)| Endpoint { address, port });
        if record.stage == Stage::Published && action != PromotionAction::AlreadyComplete {
            report.published = vec![names.db_host(), names.db_port(), names.active_region()];
        }
        report.timings.promote_to_writable_ms = record
            .promote_requested_at_ms
            .zip(record.writable_at_ms)
            .map(|(a, b)| b - a);
        report.timings.failover_ms = record.published_at_ms.map(|p| p - record.created_at_ms);
        report.rpo_estimate = record.rpo.clone();
        report
    }

    /// The EMF line for this report.
    pub fn metric_line(&self) -> MetricLine {
        let mut line = MetricLine::for_function(crate::FUNCTION)
            .metric("Invocations", 1.0, Unit::Count)
            .property("Action", serde_json::to_value(self.action).unwrap_or_default())
            .property("Alarm", self.alarm.as_str());
        if let Some(id) = &self.failover_id {
            line = line.property("FailoverId", id.as_str());
        }
        if matches!(
            self.action,
            PromotionAction::Promoted | PromotionAction::Resumed | PromotionAction::AlreadyPromoted
        ) {
            line = line.metric("Promotions", 1.0, Unit::Count);
        }
        if let Some(ms) = self.timings.promote_to_writable_ms {
            line = line.metric("PromotionSeconds", ms as f64 / 1000.0, Unit::Seconds);
        }
        if let Some(ms) = self.timings.failover_ms {
            line = line.metric("FailoverSeconds", ms as f64 / 1000.0, Unit::Seconds);
        }
        if self.action == PromotionAction::Ignored {
            line = line.metric("IgnoredTransitions", 1.0, Unit::Count);
        }
        // Alarmed by the stack: a fence that stays pending is two writers waiting to happen.
        let pending = self
            .fence
            .iter()
            .chain(&self.fences)
            .filter(|fence| fence.is_pending())
            .count();
        if self.fence.is_some() || self.action == PromotionAction::SweptFences {
            line = line.metric("PendingFences", pending as f64, Unit::Count);
        }
        line
    }
}
