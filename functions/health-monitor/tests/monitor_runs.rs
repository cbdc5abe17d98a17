//! Monitor runs over scripted regional health, an in-memory state store with the same
//! optimistic-concurrency semantics as DynamoDB, and an in-memory Parameter Store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use failover_core::emf::MetricLine;
use failover_core::health::{CheckResult, Decision, HealthState, StoredApproval, SwitchKind};
use failover_core::ports::{ApprovalReader, HealthStateStore, HeartbeatProbe, ParameterWriter};
use failover_core::{AwsFailure, EnvReader, ErrorClass, Region};
use health_monitor::{Monitor, MonitorConfig};
use serde_json::{json, Value};

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
struct MemoryStore {
    stored: Mutex<Option<(HealthState, u64)>>,
    /// The next load fails (an unreachable table or a damaged item).
    fail_load: Mutex<bool>,
    /// Another run saves (the same state) just before the next save of this one.
    race_next_save: Mutex<bool>,
}

impl HealthStateStore for MemoryStore {
    async fn load(&self) -> Result<Option<(HealthState, u64)>, AwsFailure> {
        if std::mem::take(&mut *self.fail_load.lock().unwrap()) {
            return Err(AwsFailure {
                operation: "GetItem",
                code: Some("ProvisionedThroughputExceededException".into()),
                message: "The level of configured provisioned throughput for the table was exceeded.".into(),
                class: ErrorClass::Retryable,
            });
        }
        Ok(self.stored.lock().unwrap().clone())
    }

    async fn save(&self, state: &HealthState, expected: Option<u64>) -> Result<bool, AwsFailure> {
        let mut stored = self.stored.lock().unwrap();
        if std::mem::take(&mut *self.race_next_save.lock().unwrap()) {
            if let Some((_, version)) = stored.as_mut() {
                *version += 1;
            }
        }
        if stored.as_ref().map(|(_, v)| *v) != expected {
            return Ok(false);
        }
        *stored = Some((state.clone(), expected.unwrap_or(0) + 1));
        Ok(true)
    }
}

/// Parameter values with the time they were written, like Parameter Store's LastModifiedDate.
#[derive(Default)]
struct MemoryParameters {
    values: Mutex<HashMap<String, (String, i64)>>,
    writes: Mutex<Vec<(String, String)>>,
    fail_writes: Mutex<bool>,
}

impl MemoryParameters {
    /// An operator sets `name` by hand, a moment after whatever ran before.
    fn set(&self, name: &str, value: &str) {
        std::thread::sleep(Duration::from_millis(2));
        self.values.lock().unwrap().insert(
            name.to_owned(),
            (value.to_owned(), chrono::Utc::now().timestamp_millis()),
        );
    }
}

impl ApprovalReader for MemoryParameters {
    async fn approval(&self, name: &str) -> Result<Option<StoredApproval>, AwsFailure> {
        Ok(self.values.lock().unwrap().get(name).map(|(value, at)| StoredApproval {
            value: value.clone(),
            modified_ms: Some(*at),
        }))
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
        self.values.lock().unwrap().insert(
            name.to_owned(),
            (value.to_owned(), chrono::Utc::now().timestamp_millis()),
        );
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
const APPROVAL: &str = "/shop/failover/failback-approved";

/// Collects the metric lines a monitor emits, rendered.
#[derive(Clone, Default)]
struct Metrics(Arc<Mutex<Vec<Value>>>);

impl Metrics {
    fn attach(
        &self,
        m: Monitor<Script, MemoryStore, MemoryParameters>,
    ) -> Monitor<Script, MemoryStore, MemoryParameters> {
        let lines = self.0.clone();
        m.with_metric_sink(move |line: &MetricLine| lines.lock().unwrap().push(line.render(0)))
    }

    /// `(dimension value, metric value)` of every datapoint of `metric`, in order, then clears.
    fn take(&self, metric: &str) -> Vec<(String, f64)> {
        let lines = std::mem::take(&mut *self.0.lock().unwrap());
        let points = lines
            .iter()
            .filter_map(|line| {
                let value = line.get(metric)?.as_f64()?;
                let dimension = line
                    .get("Region")
                    .or_else(|| line.get("Function"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some((dimension.to_owned(), value))
            })
            .collect();
        *self.0.lock().unwrap() = lines;
        points
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

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
    m.parameters().set(APPROVAL, "true");
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

#[tokio::test]
async fn region_health_is_published_even_when_the_state_cannot_be_loaded() {
    let metrics = Metrics::default();
    let m = metrics.attach(monitor(Script::new(vec![(true, true)]), &[]));
    *m.store().fail_load.lock().unwrap() = true;
    let err = m.handle_and_report(scheduled()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(
        metrics.take("RegionHealthy"),
        [("us-east-1".to_string(), 1.0), ("us-west-2".to_string(), 1.0)],
        "a missing datapoint would fire the failover alarm"
    );
    assert_eq!(metrics.take("Errors"), [("health-monitor".to_string(), 1.0)]);
    assert!(metrics.take("ActiveRegionSwitches").is_empty());
}

#[tokio::test]
async fn a_run_that_loses_the_race_counts_no_switch() {
    let metrics = Metrics::default();
    let m = metrics.attach(monitor(Script::new(vec![(false, true); 4]), &[]));
    for _ in 0..2 {
        m.run(scheduled()).await.unwrap();
    }
    metrics.clear();
    *m.store().race_next_save.lock().unwrap() = true;
    let lost = m.run(scheduled()).await.unwrap();
    assert!(lost.conflict, "{lost:?}");
    assert_eq!(lost.active_region, "us-east-1");
    assert_eq!(
        metrics.take("ActiveRegionSwitches"),
        [("health-monitor".to_string(), 0.0)]
    );
    assert!(m_writes(&m).is_empty(), "a run that lost publishes nothing");

    metrics.clear();
    let won = m.run(scheduled()).await.unwrap();
    assert!(!won.conflict && matches!(won.decision, Decision::Switch(_)), "{won:?}");
    assert_eq!(
        metrics.take("ActiveRegionSwitches"),
        [("health-monitor".to_string(), 1.0)]
    );
    assert_eq!(m_writes(&m), [(ACTIVE.to_string(), "us-west-2".to_string())]);
}

#[tokio::test]
async fn an_approval_left_from_before_the_failover_does_not_fail_back() {
    let script = Script::new(vec![(true, true)]);
    script.push(vec![(false, true); 3]);
    script.push(vec![(true, true); 3]);
    let m = monitor(script, &[("FAILBACK_THRESHOLD", "2")]);
    m.run(scheduled()).await.unwrap();
    m.parameters().set(APPROVAL, "true");
    for _ in 0..3 {
        m.run(scheduled()).await.unwrap();
    }
    let mut last = None;
    for _ in 0..2 {
        let report = m.run(scheduled()).await.unwrap();
        assert_eq!(report.active_region, "us-west-2", "the stale approval was honoured");
        last = Some(report.decision);
    }
    assert_eq!(last, Some(Decision::FailbackAwaitingApproval));
    m.parameters().set(APPROVAL, "true");
    let report = m.run(scheduled()).await.unwrap();
    assert!(matches!(&report.decision, Decision::Switch(s) if s.kind == SwitchKind::Failback));
    assert_eq!(report.active_region, "us-east-1");
}

#[tokio::test]
async fn a_failing_secondary_does_not_send_the_shop_home_early_and_is_critical() {
    let metrics = Metrics::default();
    let script = Script::new(vec![(false, true); 3]);
    script.push(vec![(true, false); 5]);
    let m = metrics.attach(monitor(script, &[("FAILBACK_THRESHOLD", "10")]));
    for _ in 0..3 {
        m.run(scheduled()).await.unwrap();
    }
    metrics.clear();
    let mut decisions = Vec::new();
    for _ in 0..5 {
        let report = m.run(scheduled()).await.unwrap();
        assert_eq!(report.active_region, "us-west-2");
        decisions.push(report.decision);
    }
    assert_eq!(decisions[..2], [Decision::Stay, Decision::Stay]);
    assert!(decisions[2..].iter().all(|d| *d
        == Decision::NoUsableRegion {
            awaiting_approval: false
        }));
    assert_eq!(metrics.take("BothRegionsUnhealthy").len(), 3);
    assert_eq!(m_writes(&m), [(ACTIVE.to_string(), "us-west-2".to_string())]);
}
