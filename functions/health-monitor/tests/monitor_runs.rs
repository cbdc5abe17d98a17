//! Monitor runs over scripted regional health, an in-memory state store with the same
//! optimistic-concurrency semantics as DynamoDB, and an in-memory Parameter Store.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use failover_core::health::{CheckResult, Decision, HealthState, SwitchKind};
use failover_core::ports::{HealthStateStore, HeartbeatProbe, ParameterReader, ParameterWriter};
use failover_core::{AwsFailure, EnvReader, ErrorClass, Region};
use health_monitor::{Monitor, MonitorConfig};
use serde_json::json;

/// Each run pops one (primary healthy, secondary healthy) pair.
struct Script(Mutex<VecDeque<(bool, bool)>>);

impl Script {
    fn new(steps: impl IntoIterator<Item = (bool, bool)>) -> Self {
        Self(Mutex::new(steps.into_iter().collect()))
    }

    fn push(&self, steps: impl IntoIterator<Item = (bool, bool)>) {
        self.0.lock().unwrap().extend(steps);
    }
}

impl HeartbeatProbe for Script {
    async fn check(&self, region: &Region) -> CheckResult {
        let mut steps = self.0.lock().unwrap();
        let (a, b) = *steps.front().expect("a scripted step for every run");
        let ok = if region.as_str() == "us-east-1" { a } else { b };
        if region.as_str() == "us-west-2" {
            steps.pop_front();
        }
        if ok {
            CheckResult::healthy(region.clone(), 4, 2)
        } else {
            CheckResult::unhealthy(region.clone(), "heartbeat write: dispatch failure: connection refused")
        }
    }

    async fn replication_lag_ms(&self, _source: &Region, _replica: &Region) -> Option<u64> {
        None
    }
}

#[derive(Default)]
struct MemoryStore(Mutex<Option<(HealthState, u64)>>);

impl HealthStateStore for MemoryStore {
    async fn load(&self) -> Result<Option<(HealthState, u64)>, AwsFailure> {
        Ok(self.0.lock().unwrap().clone())
    }

    async fn save(&self, state: &HealthState, expected: Option<u64>) -> Result<bool, AwsFailure> {
        let mut stored = self.0.lock().unwrap();
        if stored.as_ref().map(|(_, v)| *v) != expected {
            return Ok(false);
        }
        *stored = Some((state.clone(), expected.unwrap_or(0) + 1));
        Ok(true)
    }
}

#[derive(Default)]
struct MemoryParameters {
    values: Mutex<HashMap<String, String>>,
    writes: Mutex<Vec<(String, String)>>,
    fail_writes: Mutex<bool>,
}

impl ParameterReader for MemoryParameters {
    async fn get(&self, names: &[String]) -> Result<HashMap<String, String>, AwsFailure> {
        let values = self.values.lock().unwrap();
        Ok(names
            .iter()
            .filter_map(|n| values.get(n).map(|v| (n.clone(), v.clone())))
            .collect())
    }
}

impl ParameterWriter for MemoryParameters {
    async fn put(&self, name: &str, value: &str) -> Result<(), AwsFailure> {
        if *self.fail_writes.lock().unwrap() {
            return Err(AwsFailure {
                operation: "PutParameter",
                code: Some("ThrottlingException".into()),
                message: "Rate exceeded".into(),
                class: ErrorClass::Retryable,
            });
        }
        self.values.lock().unwrap().insert(name.to_owned(), value.to_owned());
        self.writes.lock().unwrap().push((name.to_owned(), value.to_owned()));
        Ok(())
    }
}

fn monitor(script: Script, extra: &[(&str, &str)]) -> Monitor<Script, MemoryStore, MemoryParameters> {
    let mut vars = vec![
        ("PRIMARY_REGION", "us-east-1"),
        ("SECONDARY_REGION", "us-west-2"),
        ("HEARTBEAT_TABLE", "shop-heartbeats"),
        ("STATE_TABLE", "shop-failover-state"),
        ("PARAMETER_PREFIX", "/shop/failover"),
    ];
    vars.extend_from_slice(extra);
    let config = MonitorConfig::from_env(&EnvReader::from_pairs(vars)).unwrap();
    Monitor::new(config, script, MemoryStore::default(), MemoryParameters::default())
}

fn scheduled() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/scheduled-event.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

const ACTIVE: &str = "/shop/failover/active-region";

#[tokio::test]
async fn fails_over_on_the_third_failed_run_and_publishes_once() {
    let m = monitor(Script::new(vec![(false, true); 5]), &[]);
    let mut decisions = Vec::new();
    for _ in 0..5 {
        decisions.push(m.run(scheduled()).await.unwrap());
    }
    assert_eq!(decisions[0].decision, Decision::Stay);
    assert_eq!(decisions[1].decision, Decision::Stay);
    assert!(matches!(&decisions[2].decision, Decision::Switch(s) if s.kind == SwitchKind::Failover));
    assert!(decisions[2].published);
    assert_eq!(decisions[4].active_region, "us-west-2");
    let writes = m_writes(&m);
    assert_eq!(
        writes,
        [(ACTIVE.to_string(), "us-west-2".to_string())],
        "published exactly once"
    );
}

fn m_writes(m: &Monitor<Script, MemoryStore, MemoryParameters>) -> Vec<(String, String)> {
    m.parameters().writes.lock().unwrap().clone()
}

#[tokio::test]
async fn failback_waits_for_m_healthy_runs_and_an_approval_which_is_then_consumed() {
    let script = Script::new(vec![(false, true); 3]);
    script.push(vec![(true, true); 12]);
    let m = monitor(script, &[("FAILBACK_THRESHOLD", "10")]);
    for _ in 0..3 {
        m.run(scheduled()).await.unwrap();
    }
    for run in 1..=10 {
        let report = m.run(scheduled()).await.unwrap();
        let expected = if run < 10 {
            Decision::Stay
        } else {
            Decision::FailbackAwaitingApproval
        };
        assert_eq!(report.decision, expected, "healthy run {run}");
        assert_eq!(report.active_region, "us-west-2");
    }
    m.parameters()
        .values
        .lock()
        .unwrap()
        .insert("/shop/failover/failback-approved".into(), "true".into());
    let report = m.run(scheduled()).await.unwrap();
    assert!(
        matches!(&report.decision, Decision::Switch(s) if s.kind == SwitchKind::Failback && s.to.as_str() == "us-east-1")
    );
    assert_eq!(
        m_writes(&m),
        [
            (ACTIVE.to_string(), "us-west-2".to_string()),
            (ACTIVE.to_string(), "us-east-1".to_string()),
            ("/shop/failover/failback-approved".to_string(), "false".to_string()),
        ]
    );
    assert_eq!(
        m.run(scheduled()).await.unwrap().decision,
        Decision::Stay,
        "no flapping after failback"
    );
}

#[tokio::test]
async fn an_approval_event_also_approves_and_auto_failback_needs_none() {
    let script = Script::new(vec![(false, true); 3]);
    script.push(vec![(true, true); 3]);
    let m = monitor(script, &[("FAILBACK_THRESHOLD", "2")]);
    for _ in 0..4 {
        m.run(scheduled()).await.unwrap();
    }
    let report = m.run(json!({"approveFailback": true})).await.unwrap();
    assert!(matches!(&report.decision, Decision::Switch(s) if s.kind == SwitchKind::Failback));

    let script = Script::new(vec![(false, true); 3]);
    script.push(vec![(true, true); 2]);
    let m = monitor(script, &[("FAILBACK_THRESHOLD", "2"), ("AUTO_FAILBACK", "true")]);
    let mut last = None;
    for _ in 0..5 {
        last = Some(m.run(scheduled()).await.unwrap());
    }
    assert_eq!(last.unwrap().active_region, "us-east-1");
}

#[tokio::test]
async fn both_regions_down_is_critical_and_never_switches() {
    let m = monitor(Script::new(vec![(false, false); 6]), &[]);
    for _ in 0..6 {
        let report = m.run(scheduled()).await.unwrap();
        assert_eq!(report.decision, Decision::BothUnhealthy);
        assert_eq!(report.active_region, "us-east-1");
    }
    assert!(m_writes(&m).is_empty());
}

#[tokio::test]
async fn a_failed_publication_is_retried_by_the_next_run() {
    let m = monitor(Script::new(vec![(false, true); 4]), &[]);
    for _ in 0..2 {
        m.run(scheduled()).await.unwrap();
    }
    *m.parameters().fail_writes.lock().unwrap() = true;
    let err = m.run(scheduled()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    *m.parameters().fail_writes.lock().unwrap() = false;
    let report = m.run(scheduled()).await.unwrap();
    assert_eq!(report.decision, Decision::Stay, "the switch already happened");
    assert!(report.published, "but its publication is completed now");
    assert_eq!(m_writes(&m), [(ACTIVE.to_string(), "us-west-2".to_string())]);
}

#[tokio::test]
async fn unknown_events_are_rejected_without_checking_anything() {
    let m = monitor(Script::new(vec![]), &[]);
    for event in [
        json!({"hello": 1}),
        json!({"approveFailback": "yes"}),
        json!({"approveFailback": true, "extra": 1}),
    ] {
        let err = m.run(event).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::NonRetryable);
        assert!(err.to_string().contains("expected an EventBridge Scheduled Event"));
    }
}
