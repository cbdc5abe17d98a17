//! The failback plan's closing report: the timeline from the execution's own history, the
//! write freeze (the only downtime a planned switchover should have) measured there, the
//! final topology from the failback record, and every server of both fleets.

use serde::Serialize;
use serde_json::Value;

use super::failback::{FailbackRecord, FailbackStage};
use super::plan_report::{timeline, StateKind, StateVisit, StepTiming};

/// The states that hold the failback record in the plan's state, latest step first.
const RECORD_PATHS: [&str; 8] = [
    "reprotected",
    "retired",
    "published",
    "writable",
    "promotion",
    "drained",
    "replica",
    "begin",
];

/// The write freeze as the history shows it: from entering `Freeze` until leaving the state
/// that lifted maintenance (`Switch`, or `Thaw` when the plan stopped before promoting).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteFreeze {
    /// Seconds after the execution started.
    pub started_at_s: f64,
    /// Seconds after the execution started; absent while writes are still frozen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at_s: Option<f64>,
    /// How long checkout was down (until now, while still frozen).
    pub seconds: f64,
    /// Maintenance is still on: the plan stopped after freezing and did not lift it.
    pub still_frozen: bool,
}

/// Where the shop's data lives after the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    /// The writer and its region.
    pub primary: String,
    /// Its region.
    pub primary_region: String,
    /// Its endpoint, once writable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The read replica protecting it (once requested) and its region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The replica's region.
    pub replica_region: String,
    /// The old writer, renamed and stopped (once retired): deleting it is the operator's call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

/// One app server's part in the switch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerResult {
    /// The fleet's region.
    pub region: String,
    /// The instance (or managed node) id.
    pub instance_id: String,
    /// env-rewriter's result (`success`, `failed`, `undeliverable`, `timed-out`, …).
    pub result: String,
}

/// The report the plan notifies and ends with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailbackReport {
    /// The execution.
    pub execution_arn: String,
    /// `failed-back` or `failed`.
    pub outcome: &'static str,
    /// The failed step's mark (`FreezeFailed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// The error the failed step's Catch recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Value>,
    /// The failover this failback undid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_id: Option<String>,
    /// The stage the failback record reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<FailbackStage>,
    /// The write freeze; absent when writes were never frozen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_freeze: Option<WriteFreeze>,
    /// Seconds the plan waited for an operator's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_waited_s: Option<f64>,
    /// `ReplicaLag` of the drained replica, seconds (0 means every write was applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_when_drained_s: Option<f64>,
    /// DynamoDB: the reverse replicator's drain check that let the switch go ahead (keys
    /// written in the outage back in the primary table, conflicts logged); absent when no
    /// reverse replicator is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_drained: Option<super::StreamDrain>,
    /// Where the data lives now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// Every server of both fleets in the switch.
    pub servers: Vec<ServerResult>,
    /// Servers that were not switched (`region/instance: result`).
    pub not_switched: Vec<String>,
    /// What the on-call person still has to do or know.
    pub pending: Vec<String>,
    /// The step timeline.
    pub timeline: Vec<StepTiming>,
    /// Start to report, seconds.
    pub elapsed_s: f64,
}

/// Assembles the report from the plan's state and its history's visits.
pub fn failback_report(
    execution_arn: &str,
    state: &Value,
    visits: &[StateVisit],
    started_at_ms: i64,
    now_ms: i64,
) -> FailbackReport {
    let record: Option<FailbackRecord> = RECORD_PATHS
        .iter()
        .filter_map(|path| state.get(*path)?.get("failback").cloned())
        .find_map(|value| serde_json::from_value(value).ok());
    let failed_at = state.get("failedAt").and_then(Value::as_str).map(str::to_owned);
    let servers = servers(state);
    let not_switched: Vec<String> = servers
        .iter()
        .filter(|s| s.result != "success")
        .map(|s| format!("{}/{}: {}", s.region, s.instance_id, s.result))
        .collect();
    let write_freeze = write_freeze(visits, started_at_ms, now_ms);
    let mut pending = Vec::new();
    if let Some(freeze) = write_freeze.as_ref().filter(|f| f.still_frozen) {
        pending.push(format!(
            "writes are still frozen ({} s so far): the app servers are in maintenance; lift it with env-rewriter \
             ({{\"region\": <active region>, \"fleetRegion\": <region>, \"maintenance\": \"off\"}}) once the database is settled",
            freeze.seconds
        ));
    }
    if !not_switched.is_empty() {
        pending.push(format!(
            "{} servers were not switched; the convergence association repoints them when their agent answers: {}",
            not_switched.len(),
            not_switched.join(", ")
        ));
    }
    if let Some(record) = record.as_ref().filter(|r| {
        failed_at.is_some() && (FailbackStage::ReplicaRequested..FailbackStage::Promoting).contains(&r.stage)
    }) {
        pending.push(format!(
            "nothing was switched: {} stays a replica in {}; failoverctl failback starts over from it (delete it \
             first if its replication is broken: failback then creates it anew)",
            record.new_primary, record.to_region
        ));
    }
    if let Some(drain) = record.as_ref().and_then(|r| r.reverse_drain.as_ref()) {
        if drain.conflicts_logged > 0 {
            pending.push(format!(
                "{} DynamoDB conflicts (a change that lost to the other region's item) are in the replication \
                 conflict log (conflicts/ in the dead-letter bucket): look at each, restore what the shop wants",
                drain.conflicts_logged
            ));
        }
        if drain.keys_unwritable > 0 {
            pending.push(format!(
                "{} DynamoDB changes written in the outage could not be written back and are in the dead-letter \
                 bucket: redrive them ({{\"redrive\": {{}}}}) once fixed",
                drain.keys_unwritable
            ));
        }
    }
    if let Some(record) = record.as_ref().filter(|r| r.stage >= FailbackStage::Retiring) {
        pending.push(format!(
            "{} (the old writer in {}) is stopped, not deleted: it still costs its storage; delete it (with a final \
             snapshot) when you no longer need it. RDS starts a stopped instance again after 7 days.",
            record.retired_as, record.from_region
        ));
    }
    let topology = record.as_ref().map(|r| {
        let switched = r.stage >= FailbackStage::Promoting;
        Topology {
            primary: if switched { &r.new_primary } else { &r.current_primary }.clone(),
            primary_region: if switched { &r.to_region } else { &r.from_region }.clone(),
            endpoint: r
                .endpoint_address
                .as_ref()
                .map(|a| format!("{a}:{}", r.endpoint_port.unwrap_or(3306))),
            replica: if switched {
                (r.stage >= FailbackStage::Reprotecting).then(|| r.protecting_replica.clone())
            } else {
                (r.stage >= FailbackStage::ReplicaRequested).then(|| r.new_primary.clone())
            },
            replica_region: if switched { &r.from_region } else { &r.to_region }.clone(),
            retired: (r.stage >= FailbackStage::Retiring).then(|| r.retired_as.clone()),
        }
    });
    let approval_waited_s = visits
        .iter()
        .find(|v| v.name == "AskApproval")
        .and_then(|v| v.exited_at_ms.map(|exit| seconds(exit - v.entered_at_ms)));
    FailbackReport {
        execution_arn: execution_arn.to_owned(),
        outcome: if failed_at.is_some() { "failed" } else { "failed-back" },
        failed_at,
        failure: state.get("failure").cloned(),
        failover_id: record.as_ref().map(|r| r.failover_id.clone()),
        stage: record.as_ref().map(|r| r.stage),
        write_freeze,
        approval_waited_s,
        lag_when_drained_s: record.as_ref().and_then(|r| r.lag_when_drained),
        dynamodb_drained: record.as_ref().and_then(|r| r.reverse_drain.clone()),
        topology,
        servers,
        not_switched,
        pending,
        timeline: timeline(visits, started_at_ms),
        elapsed_s: seconds(now_ms - started_at_ms),
    }
}

fn seconds(ms: i64) -> f64 {
    (ms as f64).max(0.0) / 1000.0
}

/// From entering `Freeze` to the last exit of `Switch` or `Thaw`.
fn write_freeze(visits: &[StateVisit], started_at_ms: i64, now_ms: i64) -> Option<WriteFreeze> {
    let frozen = visits.iter().find(|v| v.name == "Freeze")?;
    let lifted = visits
        .iter()
        .filter(|v| (v.name == "Switch" || v.name == "Thaw") && v.kind != StateKind::Flow)
        .filter_map(|v| v.exited_at_ms)
        .max();
    let end = lifted.unwrap_or(now_ms);
    Some(WriteFreeze {
        started_at_s: seconds(frozen.entered_at_ms - started_at_ms),
        ended_at_s: lifted.map(|at| seconds(at - started_at_ms)),
        seconds: seconds(end - frozen.entered_at_ms),
        still_frozen: lifted.is_none(),
    })
}

/// Every server env-rewriter reported for the switch of either fleet.
fn servers(state: &Value) -> Vec<ServerResult> {
    let Some(switched) = state.get("switched") else {
        return Vec::new();
    };
    let mut servers = Vec::new();
    for fleet in ["fromRegion", "toRegion"] {
        let report = &switched[fleet]["report"];
        let region = report["fleetRegion"]
            .as_str()
            .or(state["check"]["plan"][fleet].as_str())
            .unwrap_or(fleet)
            .to_owned();
        for instance in report["instances"].as_array().into_iter().flatten() {
            servers.push(ServerResult {
                region: region.clone(),
                instance_id: instance["instanceId"].as_str().unwrap_or("?").to_owned(),
                result: instance["result"].as_str().unwrap_or("unknown").to_owned(),
            });
        }
    }
    servers
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

    fn record(stage: FailbackStage) -> Value {
        json!({
            "failoverId": "alarm@t", "execution": "arn:x", "stage": stage, "version": 3,
            "fromRegion": "us-west-2", "toRegion": "us-east-1",
            "currentPrimary": "shop-db-replica", "currentPrimaryArn": "arn:aws:rds:us-west-2:1:db:shop-db-replica",
            "newPrimary": "shop-db-b1", "retiredAs": "shop-db-replica-retired-b1", "protectingReplica": "shop-db-replica",
            "endpointAddress": "shop-db-b1.example", "endpointPort": 3306, "lagWhenDrained": 0.0,
            "reachedAtMs": {}
        })
    }

    #[test]
    fn a_complete_failback_reports_the_freeze_from_the_history_and_the_new_topology() {
        let visits = [
            visit("AskApproval", StateKind::Task, 1_000, Some(61_000)),
            visit("Freeze", StateKind::Task, 100_000, Some(104_000)),
            visit("CheckDrained", StateKind::Task, 104_000, Some(105_000)),
            visit("Switch", StateKind::Task, 130_000, Some(142_500)),
        ];
        let state = json!({
            "reprotected": {"failback": record(FailbackStage::Done)},
            "switched": {
                "fromRegion": {"status": "success", "report": {"fleetRegion": "us-west-2", "instances": [{"instanceId": "i-1", "result": "success"}]}},
                "toRegion": {"status": "partial", "report": {"fleetRegion": "us-east-1", "instances": [{"instanceId": "i-2", "result": "undeliverable"}]}}
            }
        });
        let report = failback_report("arn:x", &state, &visits, 0, 150_000);
        assert_eq!(report.outcome, "failed-back");
        let freeze = report.write_freeze.unwrap();
        assert_eq!(
            (freeze.started_at_s, freeze.ended_at_s, freeze.seconds),
            (100.0, Some(142.5), 42.5)
        );
        assert!(!freeze.still_frozen);
        assert_eq!(report.approval_waited_s, Some(60.0));
        let topology = report.topology.unwrap();
        assert_eq!(
            (topology.primary.as_str(), topology.primary_region.as_str()),
            ("shop-db-b1", "us-east-1")
        );
        assert_eq!(topology.replica.as_deref(), Some("shop-db-replica"));
        assert_eq!(topology.retired.as_deref(), Some("shop-db-replica-retired-b1"));
        assert_eq!(report.not_switched, ["us-east-1/i-2: undeliverable"]);
        assert!(
            report.pending.iter().any(|p| p.contains("stopped, not deleted")),
            "{:?}",
            report.pending
        );
    }

    #[test]
    fn a_plan_that_stopped_frozen_says_so() {
        let visits = [visit("Freeze", StateKind::Task, 10_000, Some(12_000))];
        let state = json!({"drained": {"failback": record(FailbackStage::Draining)}, "failedAt": "DrainFailed", "failure": {"Error": "NonRetryable"}});
        let report = failback_report("arn:x", &state, &visits, 0, 40_000);
        assert_eq!(report.outcome, "failed");
        let freeze = report.write_freeze.unwrap();
        assert!(freeze.still_frozen);
        assert_eq!(freeze.seconds, 30.0);
        assert!(report.pending[0].contains("still frozen"), "{:?}", report.pending);
        assert!(
            report.pending[1].contains("nothing was switched: shop-db-b1 stays a replica"),
            "{:?}",
            report.pending
        );
        let topology = report.topology.unwrap();
        assert_eq!(
            topology.primary, "shop-db-replica",
            "not switched: the writer did not move"
        );
        assert_eq!(topology.replica.as_deref(), Some("shop-db-b1"));
    }

    #[test]
    fn writes_never_frozen_report_no_freeze() {
        let report = failback_report(
            "arn:x",
            &json!({"begin": {"failback": record(FailbackStage::ReplicaRequested)}}),
            &[],
            0,
            5_000,
        );
        assert!(report.write_freeze.is_none());
        assert!(report.servers.is_empty());
    }
}
