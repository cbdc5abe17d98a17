//! Monitor runs over scripted regional health, an in-memory state store with the same
//! optimistic-concurrency semantics as DynamoDB, and an in-memory Parameter Store.

use std::sync::{Arc, Mutex};

use failover_core::emf::MetricLine;
use failover_core::evidence::CheckOutcome;
use failover_core::parameters::MemoryParameters;
use failover_core::Region;
use failover_core::{EnvReader, ErrorClass};
use health_monitor::adapters::{MemoryHealthStore, ScriptedHeartbeats};
use health_monitor::domain::{Decision, HealthState, SwitchKind};
use health_monitor::{Monitor, MonitorConfig};
use serde_json::{json, Value};

fn monitor(
    script: ScriptedHeartbeats,
    extra: &[(&str, &str)],
) -> Monitor<ScriptedHeartbeats, MemoryHealthStore, MemoryParameters> {
    let mut vars = vec![
        ("PRIMARY_REGION", "us-east-1"),
        ("SECONDARY_REGION", "us-west-2"),
        ("HEARTBEAT_TABLE", "shop-heartbeats"),
        ("STATE_TABLE", "shop-failover-state"),
        ("PARAMETER_PREFIX", "/shop/failover"),
    ];
    vars.extend_from_slice(extra);
    let config = MonitorConfig::from_env(&EnvReader::from_pairs(vars)).unwrap();
    Monitor::new(config, script, seen_healthy_before(), MemoryParameters::default())
}

/// A deployment that has run before: both regions were seen healthy (a primary never seen
/// healthy is no outage, `a_fresh_deployment_never_fails_over`).
fn seen_healthy_before() -> MemoryHealthStore {
    let (p, s) = (Region::new("us-east-1").unwrap(), Region::new("us-west-2").unwrap());
    let mut state = HealthState::initial(&p, &s);
    for region in [&p, &s] {
        state.observation.record(region, CheckOutcome::Healthy, 0);
    }
    state
        .observation
        .regions
        .values_mut()
        .for_each(|t| t.consecutive_successes = 0);
    let store = MemoryHealthStore::default();
    *store.stored.lock().unwrap() = Some((state, 1));
    store
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
        m: Monitor<ScriptedHeartbeats, MemoryHealthStore, MemoryParameters>,
    ) -> Monitor<ScriptedHeartbeats, MemoryHealthStore, MemoryParameters> {
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
async fn fails_over_on_the_third_failed_run_and_leaves_publishing_to_the_plan() {
    let m = monitor(ScriptedHeartbeats::new(vec![(false, true); 5]), &[]);
    let mut decisions = Vec::new();
    for _ in 0..5 {
        decisions.push(m.run(scheduled()).await.unwrap());
    }
    assert_eq!(decisions[0].decision, Decision::Stay);
    assert_eq!(decisions[1].decision, Decision::Stay);
    assert!(matches!(&decisions[2].decision, Decision::Switch(s) if s.kind == SwitchKind::Failover));
    assert!(
        !decisions[2].published,
        "a failover is the region-switch plan's to publish"
    );
    assert_eq!(decisions[4].active_region, "us-west-2");
    assert_eq!(
        m_writes(&m),
        [],
        "health-monitor never writes active-region for a failover"
    );
}

fn m_writes(m: &Monitor<ScriptedHeartbeats, MemoryHealthStore, MemoryParameters>) -> Vec<(String, String)> {
    m.parameters().writes()
}

#[tokio::test]
async fn failback_waits_for_m_healthy_runs_and_an_approval_which_is_then_consumed() {
    let script = ScriptedHeartbeats::new(vec![(false, true); 3]);
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
    assert!(report.published);
    assert_eq!(
        m_writes(&m),
        [
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
    let script = ScriptedHeartbeats::new(vec![(false, true); 3]);
    script.push(vec![(true, true); 3]);
    let m = monitor(script, &[("FAILBACK_THRESHOLD", "2")]);
    for _ in 0..4 {
        m.run(scheduled()).await.unwrap();
    }
    let report = m.run(json!({"approveFailback": true})).await.unwrap();
    assert!(matches!(&report.decision, Decision::Switch(s) if s.kind == SwitchKind::Failback));

    let script = ScriptedHeartbeats::new(vec![(false, true); 3]);
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
    let m = monitor(ScriptedHeartbeats::new(vec![(false, false); 6]), &[]);
    for _ in 0..6 {
        let report = m.run(scheduled()).await.unwrap();
        assert_eq!(report.decision, Decision::BothUnhealthy);
        assert_eq!(report.active_region, "us-east-1");
    }
    assert!(m_writes(&m).is_empty());
}

#[tokio::test]
async fn a_failed_failback_publication_is_retried_by_the_next_run() {
    let script = ScriptedHeartbeats::new(vec![(false, true); 3]);
    script.push(vec![(true, true); 4]);
    let m = monitor(script, &[("FAILBACK_THRESHOLD", "2")]);
    for _ in 0..5 {
        m.run(scheduled()).await.unwrap();
    }
    m.parameters().set(APPROVAL, "true");
    m.parameters().fail_next_writes(u32::MAX);
    let err = m.run(scheduled()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    m.parameters().fail_next_writes(0);
    let report = m.run(scheduled()).await.unwrap();
    assert_eq!(report.decision, Decision::Stay, "the switch already happened");
    assert!(report.published, "but its publication is completed now");
    assert_eq!(m_writes(&m)[0], (ACTIVE.to_string(), "us-east-1".to_string()));
}

#[tokio::test]
async fn unknown_events_are_rejected_without_checking_anything() {
    let m = monitor(ScriptedHeartbeats::new(vec![]), &[]);
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
    let m = metrics.attach(monitor(ScriptedHeartbeats::new(vec![(true, true)]), &[]));
    *m.store().fail_load.lock().unwrap() = true;
    let err = m
        .handle_lambda_event(lambda_runtime::LambdaEvent::new(
            scheduled(),
            lambda_runtime::Context::default(),
        ))
        .await
        .unwrap_err();
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
    let m = metrics.attach(monitor(ScriptedHeartbeats::new(vec![(false, true); 4]), &[]));
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
    assert_eq!(won.active_region, "us-west-2");
    assert!(m_writes(&m).is_empty(), "the plan publishes a failover");
}

#[tokio::test]
async fn an_approval_left_from_before_the_failover_does_not_fail_back() {
    let script = ScriptedHeartbeats::new(vec![(true, true)]);
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
    let script = ScriptedHeartbeats::new(vec![(false, true); 3]);
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
    assert!(m_writes(&m).is_empty(), "no failback was published");
}

#[tokio::test]
async fn the_published_active_region_is_emitted_for_dns_to_follow() {
    // Route 53's PRIMARY record is healthy only while PrimaryActive is 1: DNS follows what
    // the region-switch plan published, not the primary endpoint answering again.
    let metrics = Metrics::default();
    let m = metrics.attach(monitor(ScriptedHeartbeats::new(vec![(true, true); 3]), &[]));
    let report = m.run(scheduled()).await.unwrap();
    assert_eq!(report.primary_active, None);
    assert!(
        metrics.take("PrimaryActive").is_empty(),
        "nothing published: no datapoint"
    );

    metrics.clear();
    m.parameters().set(ACTIVE, "us-east-1");
    assert_eq!(m.run(scheduled()).await.unwrap().primary_active, Some(true));
    assert_eq!(metrics.take("PrimaryActive"), [("health-monitor".to_string(), 1.0)]);

    metrics.clear();
    m.parameters().set(ACTIVE, "us-west-2");
    assert_eq!(m.run(scheduled()).await.unwrap().primary_active, Some(false));
    assert_eq!(metrics.take("PrimaryActive"), [("health-monitor".to_string(), 0.0)]);
}

#[tokio::test]
async fn a_fresh_deployment_never_fails_over() {
    // The alarm's first evaluation on a new stack, with the primary unreachable from the
    // start: never seen healthy, so no evidence of a failure.
    let config = MonitorConfig::from_env(&EnvReader::from_pairs([
        ("PRIMARY_REGION", "us-east-1"),
        ("SECONDARY_REGION", "us-west-2"),
        ("HEARTBEAT_TABLE", "shop-heartbeats"),
        ("STATE_TABLE", "shop-failover-state"),
        ("PARAMETER_PREFIX", "/shop/failover"),
    ]))
    .unwrap();
    let m = Monitor::new(
        config,
        ScriptedHeartbeats::new(vec![(false, true); 6]),
        MemoryHealthStore::default(),
        MemoryParameters::default(),
    );
    for _ in 0..6 {
        let report = m.run(scheduled()).await.unwrap();
        assert_eq!(report.decision, Decision::Stay, "{report:?}");
        let quorum = serde_json::to_value(&report.quorum).unwrap();
        assert!(
            ["up", "never-seen-healthy"].contains(&quorum["verdict"].as_str().unwrap()),
            "{quorum}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_invocation_checks_every_interval_and_keeps_the_switching_round() {
    let m = monitor(
        ScriptedHeartbeats::new(vec![(false, true); 7]),
        &[("CHECK_INTERVAL_SECONDS", "10"), ("RUN_SECONDS", "50")],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = m.run_invocation(scheduled(), deadline).await.unwrap();
    assert_eq!(report.rounds, 6, "rounds at 0, 10, ... 50 s: {report:?}");
    assert!(
        matches!(&report.decision, Decision::Switch(s) if s.kind == SwitchKind::Failover),
        "the round that switched is the one reported: {report:?}"
    );
    // An approval is one round, whatever the interval.
    let approval = m.run_invocation(json!({"approveFailback": true}), deadline).await;
    assert_eq!(approval.unwrap().rounds, 1);
}
