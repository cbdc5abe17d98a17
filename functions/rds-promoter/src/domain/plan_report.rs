//! The region-switch plan's closing report: the step timeline, taken from the execution's
//! own history (never from clocks of ours), and what each step reported, with what is
//! still pending for the on-call person.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fence::{FenceRecord, FenceState};
use super::rpo::RpoEstimate;

/// What kind of state a history entry belongs to: Wait states are the plan waiting (for a
/// promotion), not working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// A Lambda task or a notification.
    Task,
    /// A Wait state.
    Wait,
    /// Choice, Pass, Succeed, Fail.
    Flow,
}

/// One visit of a plan state: its StateEntered and StateExited history events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateVisit {
    /// The state's name in the definition.
    pub name: String,
    /// Its kind.
    pub kind: StateKind,
    /// When it was entered (epoch milliseconds, the history's timestamp).
    pub entered_at_ms: i64,
    /// When it was exited; `None` while it runs (the report step itself).
    pub exited_at_ms: Option<i64>,
}

/// Every visit of one state, as one line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTiming {
    /// The state's name.
    pub step: String,
    /// How many times it was entered (a Wait loop enters its states once per look).
    pub visits: u32,
    /// First entry, seconds after the execution started.
    pub started_at_s: f64,
    /// Last exit, seconds after the execution started (absent while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at_s: Option<f64>,
    /// Time spent inside it, summed over its visits.
    pub spent_s: f64,
}

/// The timeline of the states the plan worked or waited in (Choice and Pass states take no
/// time and are left out), in the order they were first entered.
pub fn timeline(visits: &[StateVisit], started_at_ms: i64) -> Vec<StepTiming> {
    let seconds = |ms: i64| (ms - started_at_ms) as f64 / 1000.0;
    let mut steps: Vec<StepTiming> = Vec::new();
    for visit in visits.iter().filter(|v| v.kind != StateKind::Flow) {
        let spent = visit.exited_at_ms.map_or(0, |exit| exit - visit.entered_at_ms) as f64 / 1000.0;
        let ended = visit.exited_at_ms.map(seconds);
        match steps.iter_mut().find(|s| s.step == visit.name) {
            Some(step) => {
                step.visits += 1;
                step.spent_s += spent;
                step.ended_at_s = ended.or(step.ended_at_s);
            }
            None => steps.push(StepTiming {
                step: visit.name.clone(),
                visits: 1,
                started_at_s: seconds(visit.entered_at_ms),
                ended_at_s: ended,
                spent_s: spent,
            }),
        }
    }
    for step in &mut steps {
        step.spent_s = (step.spent_s * 1000.0).round() / 1000.0;
    }
    steps
}

/// How the plan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanOutcome {
    /// Promoted, fenced (or fence pending), published, every server repointed.
    Switched,
    /// Switched, but some servers were not repointed and the policy said continue.
    SwitchedWithFailures,
    /// Stopped in a named failed state.
    Failed,
}

/// What the plan's steps left in the execution's state (the definition's ResultPaths).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanState {
    /// Promote's result: `report` is rds-promoter's report.
    #[serde(default)]
    pub promotion: Option<PromotionStepResult>,
    /// Fence's result.
    #[serde(default)]
    pub fence: Option<FenceStepResult>,
    /// Publish's result.
    #[serde(default)]
    pub published: Option<Value>,
    /// FenceFleet's result: env-rewriter's `sent` report for the primary region's servers,
    /// or the error its Catch recorded (`Error`, `Cause`).
    #[serde(default)]
    pub fence_fleet: Option<Value>,
    /// Repoint's result: env-rewriter's status and per-server results.
    #[serde(default)]
    pub repoint: Option<RepointStepResult>,
    /// The error a Catch recorded.
    #[serde(default)]
    pub failure: Option<Value>,
    /// The named failed state the plan is heading for.
    #[serde(default)]
    pub failed_at: Option<String>,
}

/// The Promote step's result.
#[derive(Debug, Clone, Deserialize)]
pub struct PromotionStepResult {
    /// rds-promoter's report.
    pub report: Value,
}

/// The Fence step's result.
#[derive(Debug, Clone, Deserialize)]
pub struct FenceStepResult {
    /// `fenced` or `fence-pending`.
    pub action: String,
    /// The fence record (absent when nothing could be recorded).
    #[serde(default)]
    pub fence: Option<FenceRecord>,
}

/// The Repoint (or CollectRepoint) step's result.
#[derive(Debug, Clone, Deserialize)]
pub struct RepointStepResult {
    /// `success`, `partial` (or `sent` while commands run).
    pub status: String,
    /// env-rewriter's report.
    #[serde(default)]
    pub report: RepointReport,
}

/// What the report uses of env-rewriter's report.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RepointReport {
    /// One entry per server: `instanceId`, `app`, `result`, …
    #[serde(default)]
    pub instances: Vec<Value>,
}

/// The report the plan's last step returns and notifies.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// The execution.
    pub execution_arn: String,
    /// How it ended.
    pub outcome: PlanOutcome,
    /// The named failed state, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// The error that stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Value>,
    /// The failover, as rds-promoter names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_id: Option<String>,
    /// What the Promote step did (`promoted`, `resumed`, `already-complete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    /// The promoted replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// How far behind the replica was when it was promoted: what the switch may have lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_estimate: Option<RpoEstimate>,
    /// The published endpoint and active region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<Value>,
    /// The fence record as the Fence step left it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceRecord>,
    /// The primary region's app servers: what the fence sent them (maintenance on, cron
    /// off), or why it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence_fleet: Option<Value>,
    /// Every server's repoint result.
    pub instances: Vec<Value>,
    /// Servers not repointed: the convergence association applies the published values to
    /// them when they can be reached.
    pub left_to_convergence: Vec<String>,
    /// Each step's time, from the execution history.
    pub timeline: Vec<StepTiming>,
    /// From the execution's start to this report.
    pub elapsed_s: f64,
    /// Of that, time in Wait states (waiting for the promotion and the servers' commands).
    pub waited_s: f64,
    /// What is still to be done, in words.
    pub pending: Vec<String>,
}

/// Assembles the report from the plan's state and its history.
pub fn plan_report(
    execution_arn: &str,
    state: &PlanState,
    visits: &[StateVisit],
    started_at_ms: i64,
    now_ms: i64,
) -> PlanReport {
    let promotion_report = state.promotion.as_ref().map(|p| &p.report);
    let text = |field: &str| {
        promotion_report
            .and_then(|r| r.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let left_to_convergence: Vec<String> = state
        .repoint
        .iter()
        .flat_map(|r| &r.report.instances)
        .filter(|i| i.get("result").and_then(Value::as_str) != Some("success"))
        .filter_map(|i| i.get("instanceId").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let repoint_partial = state.repoint.as_ref().is_some_and(|r| r.status != "success");
    let outcome = match (&state.failed_at, left_to_convergence.is_empty() && !repoint_partial) {
        (Some(_), _) => PlanOutcome::Failed,
        (None, true) => PlanOutcome::Switched,
        (None, false) => PlanOutcome::SwitchedWithFailures,
    };
    let fence = state.fence.as_ref().and_then(|f| f.fence.clone());
    let waited_ms: i64 = visits
        .iter()
        .filter(|v| v.kind == StateKind::Wait)
        .filter_map(|v| v.exited_at_ms.map(|exit| exit - v.entered_at_ms))
        .sum();
    let mut report = PlanReport {
        execution_arn: execution_arn.to_owned(),
        outcome,
        failed_at: state.failed_at.clone(),
        failure: state.failure.clone(),
        failover_id: text("failoverId"),
        promotion: text("action"),
        replica: text("replica"),
        rpo_estimate: promotion_report
            .and_then(|r| r.get("rpoEstimate"))
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        published: state.published.clone(),
        fence,
        fence_fleet: state.fence_fleet.clone(),
        instances: state
            .repoint
            .as_ref()
            .map(|r| r.report.instances.clone())
            .unwrap_or_default(),
        left_to_convergence,
        timeline: timeline(visits, started_at_ms),
        elapsed_s: (now_ms - started_at_ms) as f64 / 1000.0,
        waited_s: waited_ms as f64 / 1000.0,
        pending: Vec::new(),
    };
    report.pending = pending(&report);
    report
}

/// What the on-call person still has to see through.
fn pending(report: &PlanReport) -> Vec<String> {
    let mut pending = Vec::new();
    if let Some(fence) = &report.fence {
        for (part, state) in [
            ("the old primary database", &fence.database),
            ("the forward stream replicator", &fence.replication),
        ] {
            match state {
                FenceState::Pending { reason, attempts } => pending.push(format!(
                    "fence of {part} pending after {attempts} attempt(s) ({reason}); rds-promoter's scheduled sweep completes it once the primary region answers, and failback waits for it"
                )),
                FenceState::NotConfigured { reason } => {
                    pending.push(format!("{part} is not fenced: {reason}"))
                }
                FenceState::Done { .. } => {}
            }
        }
    }
    if let Some(fleet) = &report.fence_fleet {
        pending.extend(fence_fleet_pending(fleet));
    }
    if report.instances.is_empty() && report.promotion.is_some() && report.failed_at.is_none() {
        pending.push(
            "no running server was found to repoint: the convergence associations repoint servers that start later"
                .to_owned(),
        );
    }
    if !report.left_to_convergence.is_empty() {
        pending.push(format!(
            "{} server(s) not repointed ({}): the convergence association applies the published values to them",
            report.left_to_convergence.len(),
            report.left_to_convergence.join(", ")
        ));
    }
    if report.promotion.is_some() && report.outcome != PlanOutcome::Failed {
        let replica = report.replica.as_deref().unwrap_or("the promoted database");
        pending.push(format!(
            "no cross-region replica protects {replica}: the failback plan rebuilds one in the original region"
        ));
    }
    if let Some(at) = &report.failed_at {
        pending.push(format!("the switch stopped in {at}: see failure"));
    }
    pending
}

/// What the fence of the primary region's servers left undone: all of it when the region
/// did not answer, or the servers it could not command.
fn fence_fleet_pending(fleet: &Value) -> Option<String> {
    const THEN: &str = "until they are fenced (maintenance on, cron off) they may take orders or run cron beside the active region if customers reach them; failback fences them before it switches back";
    if let Some(error) = fleet.get("Error").and_then(Value::as_str) {
        let cause: String = fleet
            .get("Cause")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        return Some(format!(
            "the primary region's app servers were not fenced ({error}: {cause}); {THEN}"
        ));
    }
    let report = fleet.get("report")?;
    let not_commanded: Vec<&str> = report
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("result").and_then(Value::as_str) != Some("success"))
        .filter_map(|i| i.get("instanceId").and_then(Value::as_str))
        .collect();
    (!not_commanded.is_empty()).then(|| {
        format!(
            "{} primary-region app server(s) could not be fenced ({}); {THEN}",
            not_commanded.len(),
            not_commanded.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn visit(name: &str, kind: StateKind, entered: i64, exited: Option<i64>) -> StateVisit {
        StateVisit {
            name: name.into(),
            kind,
            entered_at_ms: entered,
            exited_at_ms: exited,
        }
    }

    #[test]
    fn the_timeline_folds_each_loop_into_one_step_and_leaves_out_choices() {
        let visits = [
            visit("Promote", StateKind::Task, 1_000, Some(1_800)),
            visit("Switched?", StateKind::Flow, 1_800, Some(1_800)),
            visit("CheckWritable", StateKind::Task, 1_800, Some(2_000)),
            visit("WaitForWritable", StateKind::Wait, 2_000, Some(7_000)),
            visit("CheckWritable", StateKind::Task, 7_000, Some(7_100)),
            visit("Report", StateKind::Task, 8_000, None),
        ];
        let steps = timeline(&visits, 1_000);
        let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(names, ["Promote", "CheckWritable", "WaitForWritable", "Report"]);
        assert_eq!(steps[1].visits, 2);
        assert_eq!(steps[1].spent_s, 0.3);
        assert_eq!(steps[1].started_at_s, 0.8);
        assert_eq!(steps[1].ended_at_s, Some(6.1));
        assert_eq!(steps[3].ended_at_s, None);
    }

    fn state(value: Value) -> PlanState {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_switch_with_a_pending_fence_and_a_failed_server_says_what_is_left() {
        let plan = state(json!({
            "promotion": {"report": {"action": "promoted", "failoverId": "f-1", "replica": "shop-db-replica"}},
            "fence": {"action": "fence-pending", "fence": {
                "failoverId": "f-1", "formerSource": "shop-db",
                "database": {"state": "pending", "reason": "us-east-1 did not answer", "attempts": 1},
                "replication": {"state": "done", "how": "disabled 1 mapping", "atMs": 5},
                "updatedAtMs": 5}},
            "published": {"activeRegion": "us-west-2"},
            "repoint": {"status": "partial", "report": {"instances": [
                {"instanceId": "i-1", "result": "success"},
                {"instanceId": "i-2", "result": "failed", "stderr": "restart failed"}]}}
        }));
        let visits = [visit("WaitForWritable", StateKind::Wait, 2_000, Some(7_000))];
        let report = plan_report("arn:x", &plan, &visits, 0, 9_500);
        assert_eq!(report.outcome, PlanOutcome::SwitchedWithFailures);
        assert_eq!(report.left_to_convergence, ["i-2"]);
        assert_eq!((report.elapsed_s, report.waited_s), (9.5, 5.0));
        assert_eq!(report.failover_id.as_deref(), Some("f-1"));
        let pending = report.pending.join("\n");
        assert!(
            pending.contains("fence of the old primary database pending"),
            "{pending}"
        );
        assert!(!pending.contains("forward stream replicator"), "{pending}");
        assert!(pending.contains("1 server(s) not repointed (i-2)"), "{pending}");
        assert!(
            pending.contains("no cross-region replica protects shop-db-replica"),
            "{pending}"
        );
    }

    #[test]
    fn a_clean_switch_and_a_failed_one_are_told_apart() {
        let clean = state(json!({
            "promotion": {"report": {"action": "promoted"}},
            "repoint": {"status": "success", "report": {"instances": [{"instanceId": "i-1", "result": "success"}]}}
        }));
        assert_eq!(plan_report("a", &clean, &[], 0, 1).outcome, PlanOutcome::Switched);
        let failed = state(json!({
            "failure": {"Error": "NonRetryable", "Cause": "refused"},
            "failedAt": "PromotionFailed"
        }));
        let report = plan_report("a", &failed, &[], 0, 1);
        assert_eq!(report.outcome, PlanOutcome::Failed);
        assert_eq!(report.pending, ["the switch stopped in PromotionFailed: see failure"]);
    }

    #[test]
    fn the_primary_fleets_fence_is_reported_when_it_failed_or_missed_servers() {
        let unreachable = state(json!({
            "fenceFleet": {"Error": "Retryable", "Cause": "ec2 DescribeInstances in us-east-1: dispatch failure"}
        }));
        let report = plan_report("a", &unreachable, &[], 0, 1);
        assert_eq!(report.fence_fleet.as_ref().unwrap()["Error"], "Retryable");
        assert!(
            report.pending[0]
                .starts_with("the primary region's app servers were not fenced (Retryable: ec2 DescribeInstances"),
            "{:?}",
            report.pending
        );
        let partly = state(json!({
            "fenceFleet": {"status": "sent", "report": {"instances": [
                {"instanceId": "i-off", "result": "undeliverable", "detail": "not commanded"}
            ], "pending": [{"commandId": "c", "instanceId": "i-on", "app": "Magento"}]}}
        }));
        let pending = plan_report("a", &partly, &[], 0, 1).pending;
        assert!(
            pending[0].starts_with("1 primary-region app server(s) could not be fenced (i-off)"),
            "{pending:?}"
        );
        let sent = state(json!({"fenceFleet": {"status": "sent", "report": {"instances": []}}}));
        assert!(plan_report("a", &sent, &[], 0, 1).pending.is_empty());
    }
}
