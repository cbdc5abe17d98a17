//! health-monitor against the emulator, with the primary region failed by the fault proxy
//! (every request signed for it answered with HTTP 500), then restored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::evidence::Observation;
use failover_core::parameters::SsmParameters;
use failover_core::{AwsFailure, EnvReader, Region};
use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::fixtures::{dynamodb, ssm};
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};
use health_monitor::adapters::{DynamoDbHealthStore, DynamoDbHeartbeats};
use health_monitor::domain::{Decision, HealthState, SwitchKind};
use health_monitor::ports::HealthStateStore;
use health_monitor::{Monitor, MonitorConfig, MonitorReport as RunReport};
use tokio::sync::Barrier;

type EmulatorMonitor = Monitor<DynamoDbHeartbeats, DynamoDbHealthStore, SsmParameters>;

struct Setup {
    heartbeats: String,
    state: String,
    prefix: String,
}

async fn setup() -> Setup {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let heartbeats = unique_name("heartbeats");
    dynamodb::create_state_table(&a, &heartbeats).await;
    dynamodb::create_state_table(&b, &heartbeats).await;
    let state = unique_name("health-state");
    dynamodb::create_state_table(&b, &state).await;
    let prefix = format!("/{}/failover", unique_name("shop"));
    Setup {
        heartbeats,
        state,
        prefix,
    }
}

/// The third region the witness watches from.
const WITNESS: &str = "us-east-2";

/// The monitor configuration over `setup`'s tables and parameters (one vantage point).
fn config(setup: &Setup) -> MonitorConfig {
    config_with(setup, &[])
}

/// [`config`] with more variables (an observer, a witness, the check interval).
fn config_with(setup: &Setup, extra: &[(&str, &str)]) -> MonitorConfig {
    let mut vars = vec![
        ("PRIMARY_REGION", PRIMARY),
        ("SECONDARY_REGION", SECONDARY),
        ("HEARTBEAT_TABLE", setup.heartbeats.as_str()),
        ("STATE_TABLE", setup.state.as_str()),
        ("PARAMETER_PREFIX", setup.prefix.as_str()),
        ("FAILURE_THRESHOLD", "3"),
        ("FAILBACK_THRESHOLD", "4"),
        ("CHECK_TIMEOUT_MS", "1500"),
    ];
    vars.extend_from_slice(extra);
    MonitorConfig::from_env(&EnvReader::from_pairs(vars)).unwrap()
}

/// A monitor whose heartbeats go through `proxy`; state and parameters reach the emulator directly.
async fn monitor(setup: &Setup, proxy: &FaultProxy) -> EmulatorMonitor {
    monitor_with_store(setup, proxy, |store| store).await
}

/// Like [`monitor`], with the state store wrapped by `wrap`.
async fn monitor_with_store<S: HealthStateStore>(
    setup: &Setup,
    proxy: &FaultProxy,
    wrap: impl FnOnce(DynamoDbHealthStore) -> S,
) -> Monitor<DynamoDbHeartbeats, S, SsmParameters> {
    monitor_from(config(setup), setup, proxy, wrap).await
}

/// Heartbeat clients through `proxy`, built as the function builds them (no retries of their own).
async fn heartbeat_clients(proxy: &FaultProxy) -> BTreeMap<Region, aws_sdk_dynamodb::Client> {
    let mut clients = BTreeMap::new();
    for name in [PRIMARY, SECONDARY] {
        let region = Region::new(name).unwrap();
        let sdk = sdk_config(
            &region,
            ClientTimeouts {
                connect: Duration::from_secs(1),
                attempt: Duration::from_millis(1500),
            },
        )
        .await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(proxy.endpoint())
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        clients.insert(region, client);
    }
    clients
}

/// A monitor of `config` whose heartbeats go through `proxy`.
async fn monitor_from<S: HealthStateStore>(
    config: MonitorConfig,
    setup: &Setup,
    proxy: &FaultProxy,
    wrap: impl FnOnce(DynamoDbHealthStore) -> S,
) -> Monitor<DynamoDbHeartbeats, S, SsmParameters> {
    let b = Emulator::shared().clients(SECONDARY).await;
    let probe = DynamoDbHeartbeats::new(
        heartbeat_clients(proxy).await,
        setup.heartbeats.clone(),
        config.check_timeout,
        config.heartbeat_attempts,
    );
    let store = DynamoDbHealthStore::new(b.dynamodb.clone(), setup.state.clone(), config.state_key());
    Monitor::new(config, probe, wrap(store), SsmParameters::new(b.ssm.clone()))
}

/// A state store whose load returns only once every monitor sharing `barrier` has loaded,
/// so all of them read the same version and race for the conditional write.
struct LoadTogether {
    inner: DynamoDbHealthStore,
    barrier: Arc<Barrier>,
}

impl HealthStateStore for LoadTogether {
    async fn load(&self) -> Result<Option<(HealthState, u64)>, AwsFailure> {
        let loaded = self.inner.load().await;
        self.barrier.wait().await;
        loaded
    }

    async fn save(&self, state: &HealthState, expected: Option<u64>) -> Result<bool, AwsFailure> {
        self.inner.save(state, expected).await
    }

    async fn load_observation(&self, observer: &Region) -> Result<Option<(Observation, u64)>, AwsFailure> {
        self.inner.load_observation(observer).await
    }

    async fn save_observation(
        &self,
        observer: &Region,
        observation: &Observation,
        expected: Option<u64>,
    ) -> Result<bool, AwsFailure> {
        self.inner.save_observation(observer, observation, expected).await
    }
}

fn scheduled() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(failover_testkit::venv::repo_root().join("events/scheduled-event.json")).unwrap(),
    )
    .unwrap()
}

async fn run(monitor: &EmulatorMonitor) -> RunReport {
    monitor.run(scheduled()).await.unwrap()
}

async fn active_region(setup: &Setup) -> Option<String> {
    ssm::get_parameter(
        &Emulator::shared().clients(SECONDARY).await,
        &format!("{}/active-region", setup.prefix),
    )
    .await
}

#[tokio::test]
async fn a_failed_primary_switches_on_the_third_run_and_fails_back_after_approval() {
    let emu = Emulator::shared();
    let setup = setup().await;
    let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 11).unwrap();
    let monitor = monitor(&setup, &proxy).await;
    let b = emu.clients(SECONDARY).await;
    let approval = format!("{}/failback-approved", setup.prefix);
    // Left over from before: nothing is pending, so it must never approve a later failback.
    ssm::put_parameter(&b, &approval, "true").await;

    assert_eq!(run(&monitor).await.decision, Decision::Stay);
    proxy.fail_region(PRIMARY, Some(Fault::ServerError));
    let first = run(&monitor).await;
    assert!(!first.checks[0].healthy && first.checks[1].healthy, "{first:?}");
    assert_eq!(first.decision, Decision::Stay);
    assert_eq!(run(&monitor).await.decision, Decision::Stay);
    assert_eq!(
        active_region(&setup).await,
        None,
        "nothing published before the threshold"
    );
    let third = run(&monitor).await;
    assert!(
        matches!(&third.decision, Decision::Switch(s) if s.kind == SwitchKind::Failover),
        "{third:?}"
    );
    assert!(!third.published, "{third:?}");
    assert_eq!(
        active_region(&setup).await,
        None,
        "a failover is published by the region-switch plan, not by health-monitor"
    );
    assert_eq!(run(&monitor).await.decision, Decision::Stay, "switched once");

    proxy.fail_region(PRIMARY, None);
    for healthy_run in 1..=4 {
        let report = run(&monitor).await;
        let expected = if healthy_run < 4 {
            Decision::Stay
        } else {
            Decision::FailbackAwaitingApproval
        };
        assert_eq!(report.decision, expected, "healthy run {healthy_run}");
    }
    assert_eq!(
        active_region(&setup).await,
        None,
        "no failback without a fresh approval"
    );
    ssm::put_parameter(&b, &approval, "true").await;
    let back = run(&monitor).await;
    assert!(
        matches!(&back.decision, Decision::Switch(s) if s.kind == SwitchKind::Failback),
        "{back:?}"
    );
    assert_eq!(active_region(&setup).await.as_deref(), Some(PRIMARY));
    assert_eq!(ssm::get_parameter(&b, &approval).await.as_deref(), Some("false"));
    assert!(proxy.stats().server_errors >= 3);
}

#[tokio::test]
async fn two_monitors_at_once_cannot_both_switch() {
    let emu = Emulator::shared();
    let setup = setup().await;
    let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 12).unwrap();
    let (one, two) = (monitor(&setup, &proxy).await, monitor(&setup, &proxy).await);
    // Seen healthy once: a primary never seen healthy is no outage.
    run(&one).await;
    proxy.fail_region(PRIMARY, Some(Fault::ServerError));
    run(&one).await;
    run(&two).await;

    // The third failure: both runs load the same state, both decide to switch, and the
    // conditional write lets only one of them save.
    let barrier = Arc::new(Barrier::new(2));
    let together = |barrier: &Arc<Barrier>| {
        let barrier = barrier.clone();
        move |inner| LoadTogether { inner, barrier }
    };
    let one = monitor_with_store(&setup, &proxy, together(&barrier)).await;
    let two = monitor_with_store(&setup, &proxy, together(&barrier)).await;
    let (a, b) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(one.run(scheduled()), two.run(scheduled()))
    })
    .await
    .expect("both runs finish");
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        matches!(a.decision, Decision::Switch(_)) && matches!(b.decision, Decision::Switch(_)),
        "both runs decided to switch: {a:?} / {b:?}"
    );
    assert_eq!(
        [&a, &b].iter().filter(|r| r.conflict).count(),
        1,
        "exactly one run lost the conditional write: {a:?} / {b:?}"
    );
    let (winner, loser) = if a.conflict { (&b, &a) } else { (&a, &b) };
    assert!(!winner.published, "the plan publishes a failover: {winner:?}");
    assert_eq!(winner.active_region, SECONDARY);
    assert!(!loser.published, "the loser changed nothing: {loser:?}");
    assert_eq!(loser.active_region, PRIMARY, "{loser:?}");

    // Exactly one switch recorded: in the state and in Parameter Store (written once).
    let b_clients = emu.clients(SECONDARY).await;
    let store = DynamoDbHealthStore::new(
        b_clients.dynamodb.clone(),
        setup.state.clone(),
        config(&setup).state_key(),
    );
    let (state, _) = store.load().await.unwrap().expect("the state was saved");
    assert_eq!(state.active_region.as_str(), SECONDARY);
    assert!(state.published);
    let switch = state.last_switch.expect("the switch is recorded");
    assert_eq!((switch.kind, switch.to.as_str()), (SwitchKind::Failover, SECONDARY));
    assert_eq!(
        active_region(&setup).await,
        None,
        "neither run wrote active-region: the region-switch plan publishes a failover"
    );
}

/// The decider (secondary region) and the witness (a third region), each reaching AWS
/// through its own proxy, checking every `interval` seconds for `run_for` seconds.
async fn vantage_points(
    setup: &Setup,
    interval: &str,
    run_for: &str,
) -> (EmulatorMonitor, FaultProxy, EmulatorMonitor, FaultProxy) {
    let emu = Emulator::shared();
    let timeout = if interval == "1" { "800" } else { "1500" };
    let common = [
        ("CHECK_INTERVAL_SECONDS", interval),
        ("RUN_SECONDS", run_for),
        ("CHECK_TIMEOUT_MS", timeout),
    ];
    let decider_config = config_with(setup, &[common.as_slice(), &[("WITNESS_REGION", WITNESS)]].concat());
    let witness_config = config_with(setup, &[common.as_slice(), &[("OBSERVER_REGION", WITNESS)]].concat());
    let (decider_link, witness_link) = (
        FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 41).unwrap(),
        FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 42).unwrap(),
    );
    let decider = monitor_from(decider_config, setup, &decider_link, |s| s).await;
    let witness = monitor_from(witness_config, setup, &witness_link, |s| s).await;
    (decider, decider_link, witness, witness_link)
}

/// Both monitors' scheduled invocations at once (each runs its rounds), within a minute.
async fn invoke_both(decider: &EmulatorMonitor, witness: &EmulatorMonitor) -> (RunReport, RunReport) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (d, w) = tokio::join!(
        decider.run_invocation(scheduled(), deadline),
        witness.run_invocation(scheduled(), deadline)
    );
    (d.unwrap(), w.unwrap())
}

fn collect_metrics(monitor: EmulatorMonitor) -> (EmulatorMonitor, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let monitor = monitor.with_metric_sink(move |line| sink.lock().unwrap().push(line.render(0)));
    (monitor, lines)
}

/// The primary region fails for everyone: decided from both vantage points within the
/// threshold at the production interval (10 s checks, 3 in a row), measured from the
/// moment the fault began to the round that recorded the switch.
#[tokio::test]
async fn an_outage_seen_from_both_vantage_points_is_decided_within_the_threshold() {
    let setup = setup().await;
    let (decider, decider_link, witness, witness_link) = vantage_points(&setup, "10", "40").await;
    let (first, seen) = tokio::join!(decider.run(scheduled()), witness.run(scheduled()));
    assert_eq!(first.unwrap().decision, Decision::Stay);
    assert!(seen.unwrap().checks.iter().all(|c| c.healthy));

    let failed_at = chrono::Utc::now().timestamp_millis();
    decider_link.fail_region(PRIMARY, Some(Fault::Drop));
    witness_link.fail_region(PRIMARY, Some(Fault::Drop));
    let (decided, _) = invoke_both(&decider, &witness).await;

    let Decision::Switch(switch) = &decided.decision else {
        panic!("no failover after {} rounds: {decided:?}", decided.rounds);
    };
    assert_eq!(switch.kind, SwitchKind::Failover);
    assert!(switch.reason.contains("from the witness"), "{}", switch.reason);
    let detection_s = (switch.at_ms - failed_at) as f64 / 1000.0;
    eprintln!("decision safety: outage decided {detection_s:.1} s after it began (10 s checks, threshold 3, two vantage points)");
    assert!(
        (20.0..=41.0).contains(&detection_s),
        "3 failed rounds 10 s apart, from both vantage points: {detection_s} s"
    );
}

/// A cut between the secondary and the primary alone (the witness still reaches it) never
/// fails over: 20 independent partitions of 5 rounds each, five at a time.
#[tokio::test]
async fn twenty_partitions_between_two_regions_make_no_failover() {
    use futures_util::StreamExt;
    let runs: Vec<(RunReport, usize)> = futures_util::stream::iter(0..20)
        .map(|_| async {
            let setup = setup().await;
            let (decider, decider_link, witness, _witness_link) = vantage_points(&setup, "2", "8").await;
            let (decider, metrics) = collect_metrics(decider);
            let (first, seen) = tokio::join!(decider.run(scheduled()), witness.run(scheduled()));
            let (first, seen) = (first.unwrap(), seen.unwrap());
            assert!(
                first.checks.iter().chain(&seen.checks).all(|c| c.healthy),
                "{first:?} {seen:?}"
            );
            decider_link.fail_region(PRIMARY, Some(Fault::Drop));
            let (decided, _) = invoke_both(&decider, &witness).await;
            let partitions = metrics
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.get("PartitionSuspected").and_then(|v| v.as_f64()) == Some(1.0))
                .count();
            (decided, partitions)
        })
        .buffer_unordered(5)
        .collect()
        .await;
    let failovers = runs
        .iter()
        .filter(|(r, _)| matches!(r.decision, Decision::Switch(_)))
        .count();
    eprintln!("decision safety: {failovers} false failovers in 20 partitions");
    assert_eq!(
        failovers,
        0,
        "{:?}",
        runs.iter().map(|(r, _)| &r.quorum).collect::<Vec<_>>()
    );
    for (report, partitions) in &runs {
        assert!(report.rounds >= 4, "{report:?}");
        assert!(
            matches!(
                report.quorum,
                Some(failover_core::evidence::QuorumVerdict::Partition(_))
            ),
            "{report:?}"
        );
        assert!(*partitions >= 1, "the partition alarm's metric was emitted");
    }
}

/// The same cut with the witness also cut off: the injected defect of "a partition is
/// refused because the witness reaches the primary". Now both see it down: it fails over,
/// so the partition test above can fail.
#[tokio::test]
async fn with_the_witness_cut_off_too_the_same_cut_fails_over() {
    let setup = setup().await;
    let (decider, decider_link, witness, witness_link) = vantage_points(&setup, "1", "5").await;
    let (first, _) = tokio::join!(decider.run(scheduled()), witness.run(scheduled()));
    assert_eq!(first.unwrap().decision, Decision::Stay);
    decider_link.fail_region(PRIMARY, Some(Fault::Drop));
    witness_link.fail_region(PRIMARY, Some(Fault::Drop));
    let (decided, _) = invoke_both(&decider, &witness).await;
    assert!(matches!(decided.decision, Decision::Switch(_)), "{decided:?}");
}

/// A region that fails one call in five (throttled, HTTP 500, or the connection dropped
/// before or after the call) is up: each heartbeat call is retried within the check's
/// timeout, as AWS's own clients retry such errors. With HEARTBEAT_ATTEMPTS=1 (the injected
/// defect: no retry) the same faults fail about a third of the checks, and a few of those
/// in a row from both vantage points would be a false failover.
#[tokio::test]
async fn one_failed_call_in_five_is_not_an_outage_but_without_retries_it_looks_like_one() {
    use health_monitor::ports::HeartbeatProbe;
    let setup = setup().await;
    let proxy = FaultProxy::start(&Emulator::shared().endpoint(), FaultPlan::even(0.2), 77).unwrap();
    let primary = Region::new(PRIMARY).unwrap();
    let mut unhealthy = Vec::new();
    for attempts in [3, 1] {
        let probe = DynamoDbHeartbeats::new(
            heartbeat_clients(&proxy).await,
            setup.heartbeats.clone(),
            Duration::from_millis(1500),
            attempts,
        );
        let mut failed = 0;
        for _ in 0..40 {
            if !probe.check(&primary).await.healthy {
                failed += 1;
            }
        }
        unhealthy.push(failed);
    }
    eprintln!(
        "decision safety: under 20% faults on every call, {} of 40 checks unhealthy with 3 attempts per call, {} with 1",
        unhealthy[0], unhealthy[1]
    );
    assert!(unhealthy[0] <= 3, "{unhealthy:?}");
    assert!(unhealthy[1] >= 6, "without retries the faults show: {unhealthy:?}");
}

/// The primary's heartbeat table is gone (ResourceNotFoundException, a 400): our
/// configuration is broken, the region is up. A separate signal, never a failover.
#[tokio::test]
async fn a_deleted_heartbeat_table_is_a_misconfiguration_not_an_outage() {
    let setup = setup().await;
    let (decider, _decider_link, witness, _witness_link) = vantage_points(&setup, "1", "4").await;
    let (decider, metrics) = collect_metrics(decider);
    let (first, _) = tokio::join!(decider.run(scheduled()), witness.run(scheduled()));
    assert_eq!(first.unwrap().decision, Decision::Stay);
    let a = Emulator::shared().clients(PRIMARY).await;
    a.dynamodb
        .delete_table()
        .table_name(&setup.heartbeats)
        .send()
        .await
        .unwrap();

    let (decided, _) = invoke_both(&decider, &witness).await;

    assert_eq!(decided.decision, Decision::Stay, "{decided:?}");
    let primary = decided.checks.iter().find(|c| c.region.as_str() == PRIMARY).unwrap();
    assert_eq!(
        primary.outcome,
        failover_core::evidence::CheckOutcome::Misconfigured,
        "{primary:?}"
    );
    assert!(
        matches!(decided.quorum, Some(failover_core::evidence::QuorumVerdict::Up(_))),
        "{decided:?}"
    );
    let misconfigured = metrics
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l["Region"] == PRIMARY && l.get("RegionMisconfigured").and_then(|v| v.as_f64()) == Some(1.0))
        .count();
    assert!(misconfigured >= 4, "every round flagged it: {misconfigured}");
}
