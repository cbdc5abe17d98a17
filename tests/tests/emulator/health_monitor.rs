//! health-monitor against the emulator, with the primary region failed by the fault proxy
//! (every request signed for it answered with HTTP 500), then restored.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use failover_core::adapters::{DynamoDbHealthStore, DynamoDbHeartbeats, SsmParameters};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::health::{Decision, SwitchKind};
use failover_core::{EnvReader, Region};
use failover_tests::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_tests::fixtures::{dynamodb, ssm};
use failover_tests::{unique_name, Emulator, PRIMARY, SECONDARY};
use health_monitor::{Monitor, MonitorConfig, RunReport};

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

/// A monitor whose heartbeats go through `proxy`; state and parameters reach the emulator directly.
async fn monitor(setup: &Setup, proxy: &FaultProxy) -> EmulatorMonitor {
    let config = MonitorConfig::from_env(&EnvReader::from_pairs([
        ("PRIMARY_REGION", PRIMARY),
        ("SECONDARY_REGION", SECONDARY),
        ("HEARTBEAT_TABLE", setup.heartbeats.as_str()),
        ("STATE_TABLE", setup.state.as_str()),
        ("PARAMETER_PREFIX", setup.prefix.as_str()),
        ("FAILURE_THRESHOLD", "3"),
        ("FAILBACK_THRESHOLD", "4"),
        ("CHECK_TIMEOUT_MS", "1500"),
    ]))
    .unwrap();
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
    Monitor::new(config, probe, store, SsmParameters::new(b.ssm.clone()))
}

fn scheduled() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(failover_tests::venv::repo_root().join("events/scheduled-event.json")).unwrap(),
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
    assert!(third.published);
    assert_eq!(active_region(&setup).await.as_deref(), Some(SECONDARY));
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
        active_region(&setup).await.as_deref(),
        Some(SECONDARY),
        "no failback without approval"
    );
    let b = emu.clients(SECONDARY).await;
    ssm::put_parameter(&b, &format!("{}/failback-approved", setup.prefix), "true").await;
    let back = run(&monitor).await;
    assert!(
        matches!(&back.decision, Decision::Switch(s) if s.kind == SwitchKind::Failback),
        "{back:?}"
    );
    assert_eq!(active_region(&setup).await.as_deref(), Some(PRIMARY));
    assert_eq!(
        ssm::get_parameter(&b, &format!("{}/failback-approved", setup.prefix))
            .await
            .as_deref(),
        Some("false")
    );
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

    let (a, b) = tokio::join!(run(&one), run(&two));
    let switches = [&a, &b]
        .iter()
        .filter(|r| !r.conflict && matches!(r.decision, Decision::Switch(_)))
        .count();
    assert_eq!(switches, 1, "exactly one monitor switched: {a:?} / {b:?}");
    // The switch is published by the run that made it. A run overlapping it may find the
    // switch saved but not yet published and publish the same value again (harmless: the
    // value is the same and env-rewriter is idempotent); never a different region.
    assert_eq!(active_region(&setup).await.as_deref(), Some(SECONDARY));
    let parameter = emu
        .clients(SECONDARY)
        .await
        .ssm
        .get_parameter()
        .name(format!("{}/active-region", setup.prefix))
        .send()
        .await
        .unwrap();
    assert!(parameter.parameter().map(|p| p.version()).unwrap_or(0) <= 2);
}
