//! health-monitor against the emulator, with the primary region failed by the fault proxy
//! (every request signed for it answered with HTTP 500), then restored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use failover_core::clients::{sdk_config, ClientTimeouts};
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

/// The monitor configuration over `setup`'s tables and parameters.
fn config(setup: &Setup) -> MonitorConfig {
    MonitorConfig::from_env(&EnvReader::from_pairs([
        ("PRIMARY_REGION", PRIMARY),
        ("SECONDARY_REGION", SECONDARY),
        ("HEARTBEAT_TABLE", setup.heartbeats.as_str()),
        ("STATE_TABLE", setup.state.as_str()),
        ("PARAMETER_PREFIX", setup.prefix.as_str()),
        ("FAILURE_THRESHOLD", "3"),
        ("FAILBACK_THRESHOLD", "4"),
        ("CHECK_TIMEOUT_MS", "1500"),
    ]))
    .unwrap()
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
    let config = config(setup);
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
    let b = Emulator::shared().clients(SECONDARY).await;
    let probe = DynamoDbHeartbeats::new(clients, setup.heartbeats.clone(), config.check_timeout);
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
