//! rds-promoter against the emulator: a MySQL primary in us-east-1, its cross-region
//! replica in us-west-2, the lock table and Parameter Store in us-west-2.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::parameters::SsmParameters;
use failover_core::retry::Deadline;
use failover_core::Region;
use failover_core::{AwsFailure, EnvReader, ErrorClass};
use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::fixtures::{dynamodb, rds, ssm};
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};
use rds_promoter::adapters::{DynamoDbLockStore, LambdaMappings, RdsInstances, SfnHistory};
use rds_promoter::domain::DbInstanceView;
use rds_promoter::ports::DbInstances;
use rds_promoter::{wiring, Invocation, Promoter, PromoterConfig, PromoterError, PromotionAction as Action};

/// Counts PromoteReadReplica requests at the client (the emulator refuses a repeat as RDS
/// does, so the count shows what the product sent, not what got through).
struct CountingPromotes<T> {
    inner: T,
    promotes: Arc<AtomicUsize>,
}

impl<T: DbInstances> DbInstances for CountingPromotes<T> {
    async fn replica_lag(&self, id: &str) -> Result<Vec<rds_promoter::domain::LagMinute>, AwsFailure> {
        self.inner.replica_lag(id).await
    }

    async fn describe(&self, id: &str) -> Result<Option<DbInstanceView>, AwsFailure> {
        self.inner.describe(id).await
    }

    async fn promote(&self, id: &str, backup_retention_days: i32) -> Result<(), AwsFailure> {
        self.promotes.fetch_add(1, Ordering::SeqCst);
        self.inner.promote(id, backup_retention_days).await
    }

    async fn stop(&self, id: &str) -> Result<(), AwsFailure> {
        self.inner.stop(id).await
    }

    async fn rename(&self, id: &str, to: &str) -> Result<(), AwsFailure> {
        self.inner.rename(id, to).await
    }

    async fn create_replica(&self, spec: &rds_promoter::ports::ReplicaSpec) -> Result<(), AwsFailure> {
        self.inner.create_replica(spec).await
    }
}

struct Shop {
    replica_id: String,
    state_table: String,
    prefix: String,
    alarm: serde_json::Value,
}

async fn shop() -> Shop {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &unique_name("shopdb")).await;
    let state_table = unique_name("failover-state");
    dynamodb::create_state_table(&b, &state_table).await;
    let mut alarm: serde_json::Value = serde_json::from_slice(
        &std::fs::read(failover_testkit::venv::repo_root().join("events/alarm-state-change-to-alarm.json")).unwrap(),
    )
    .unwrap();
    alarm["detail"]["alarmName"] = unique_name("shop-failover-primary-down").into();
    Shop {
        replica_id: pair.replica_id,
        state_table,
        prefix: format!("/{}/failover", unique_name("shop")),
        alarm,
    }
}

fn config(shop: &Shop, extra: &[(&str, &str)]) -> PromoterConfig {
    let mut vars = vec![
        ("REPLICA_IDENTIFIER", shop.replica_id.as_str()),
        ("REPLICA_REGION", SECONDARY),
        ("PRIMARY_REGION", PRIMARY),
        ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
        ("PARAMETER_PREFIX", shop.prefix.as_str()),
        ("STATE_TABLE", shop.state_table.as_str()),
        ("POLL_INITIAL_MS", "50"),
        ("POLL_MAX_MS", "200"),
    ];
    vars.extend_from_slice(extra);
    PromoterConfig::from_env(&EnvReader::from_pairs(vars)).unwrap()
}

fn invocation(request_id: &str) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        deadline: Deadline::after(Duration::from_secs(60)),
        lease_until_ms: chrono::Utc::now().timestamp_millis() + 60_000,
    }
}

fn failover_id(shop: &Shop) -> String {
    format!(
        "{}@2026-11-21T03:00:05.123Z",
        shop.alarm["detail"]["alarmName"].as_str().unwrap()
    )
}

async fn lock_stage(shop: &Shop) -> Option<String> {
    let b = Emulator::shared().clients(SECONDARY).await;
    let item = b
        .dynamodb
        .get_item()
        .table_name(&shop.state_table)
        .key("pk", AttributeValue::S(format!("promotion#{}", failover_id(shop))))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    item.item()
        .and_then(|i| i.get("stage"))
        .and_then(|s| s.as_s().ok())
        .cloned()
}

#[tokio::test]
async fn alarm_promotes_the_replica_and_publishes_in_the_secondary_region() {
    let emu = Emulator::shared();
    let shop = shop().await;
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let (promoter, region_link) = promoter_probing_through_a_proxy(&shop).await;

    // The primary still answers as available: the split-brain guard refuses.
    let err = promoter
        .handle(shop.alarm.clone(), &invocation("req-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, PromoterError::SplitBrain(_)), "{err}");
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    let replica = b
        .rds
        .describe_db_instances()
        .db_instance_identifier(&shop.replica_id)
        .send()
        .await
        .unwrap();
    assert!(
        replica.db_instances()[0]
            .read_replica_source_db_instance_identifier()
            .is_some(),
        "not promoted"
    );

    // The primary region stops answering: the retry promotes. (RDS refuses to stop a source
    // that has a read replica, so the outage is the region's, as in a real disaster.)
    region_link.fail_region(PRIMARY, Some(Fault::Drop));
    let outcome = promoter.handle(shop.alarm.clone(), &invocation("req-2")).await.unwrap();
    assert_eq!(
        outcome.action,
        Action::Promoted,
        "the retry took the recorded failover over and promoted: it says so"
    );
    let replica = b
        .rds
        .describe_db_instances()
        .db_instance_identifier(&shop.replica_id)
        .send()
        .await
        .unwrap();
    let replica = &replica.db_instances()[0];
    assert!(
        replica.read_replica_source_db_instance_identifier().is_none(),
        "promoted in {SECONDARY}"
    );
    let address = replica.endpoint().and_then(|e| e.address()).unwrap().to_owned();
    let port = replica.endpoint().and_then(|e| e.port()).unwrap().to_string();

    let get = |name: String| {
        let b = b.clone();
        async move { ssm::get_parameter(&b, &name).await }
    };
    assert_eq!(get(format!("{}/db-host", shop.prefix)).await, Some(address));
    assert_eq!(
        get(format!("{}/db-port", shop.prefix)).await,
        Some(port),
        "the real endpoint's port"
    );
    assert_eq!(
        get(format!("{}/active-region", shop.prefix)).await.as_deref(),
        Some(SECONDARY)
    );
    assert_eq!(
        ssm::get_parameter(&a, &format!("{}/active-region", shop.prefix)).await,
        None
    );
    assert_eq!(lock_stage(&shop).await.as_deref(), Some("published"));
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["stage"], "published");
    assert_eq!(json["activeRegion"], SECONDARY);
}

/// The production promoter, but its split-brain probe of the primary region goes through a
/// fault proxy, so the test can take that region away (as `wiring::build`: one attempt).
async fn promoter_probing_through_a_proxy(shop: &Shop) -> (wiring::ProductionPromoter, FaultProxy) {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 21).unwrap();
    let config = config(shop, &[]);
    let probe_config = sdk_config(&Region::new(PRIMARY).unwrap(), ClientTimeouts::default()).await;
    let probe = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&probe_config)
            .endpoint_url(proxy.endpoint())
            .retry_config(aws_sdk_rds::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    let table = config.state_table.clone();
    let promoter = Promoter::new(
        config,
        RdsInstances::new(b.rds.clone()),
        RdsInstances::new(probe),
        DynamoDbLockStore::new(b.dynamodb.clone(), table),
        SsmParameters::new(b.ssm.clone()),
        LambdaMappings::new(emu.clients(PRIMARY).await.lambda.clone()),
    )
    .with_history(SfnHistory::new(aws_sdk_sfn::Client::new(
        &sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await,
    )));
    (promoter, proxy)
}

type CountingPromoter =
    Promoter<CountingPromotes<RdsInstances>, RdsInstances, DynamoDbLockStore, SsmParameters, LambdaMappings>;

/// A promoter for `shop` (split-brain guard off) that counts its PromoteReadReplica requests.
async fn counting_promoter(shop: &Shop) -> (Arc<CountingPromoter>, Arc<AtomicUsize>) {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let promotes = Arc::new(AtomicUsize::new(0));
    let promoter = Promoter::new(
        config(shop, &[("SPLIT_BRAIN_GUARD", "false")]),
        CountingPromotes {
            inner: RdsInstances::new(b.rds.clone()),
            promotes: promotes.clone(),
        },
        RdsInstances::new(a.rds.clone()),
        DynamoDbLockStore::new(b.dynamodb.clone(), shop.state_table.clone()),
        SsmParameters::new(b.ssm.clone()),
        LambdaMappings::new(a.lambda.clone()),
    );
    (Arc::new(promoter), promotes)
}

#[tokio::test]
async fn ten_concurrent_deliveries_promote_exactly_once() {
    let shop = shop().await;
    let (promoter, promotes) = counting_promoter(&shop).await;

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let (promoter, alarm) = (promoter.clone(), shop.alarm.clone());
        tasks.spawn(async move { promoter.handle(alarm, &invocation(&format!("req-{n}"))).await });
    }
    let mut completed = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(outcome) => {
                completed += 1;
                assert!(
                    matches!(outcome.action, Action::Promoted | Action::AlreadyComplete),
                    "{outcome:?}"
                );
            }
            Err(err) => assert_eq!(
                err.class(),
                ErrorClass::Retryable,
                "duplicates back off and retry: {err}"
            ),
        }
    }
    assert!(completed >= 1);
    assert_eq!(
        promotes.load(Ordering::SeqCst),
        1,
        "exactly one PromoteReadReplica request"
    );
    assert_eq!(lock_stage(&shop).await.as_deref(), Some("published"));

    // Lambda's later retries of the deliveries that backed off find the failover complete.
    let late = promoter
        .handle(shop.alarm.clone(), &invocation("req-late"))
        .await
        .unwrap();
    assert_eq!(late.action, Action::AlreadyComplete);
    assert_eq!(promotes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn two_different_alarms_at_once_promote_exactly_once() {
    let shop = shop().await;
    let (promoter, promotes) = counting_promoter(&shop).await;
    // The health alarm and the database alarm fire together: two failover ids.
    let mut db_alarm = shop.alarm.clone();
    db_alarm["detail"]["alarmName"] = unique_name("shop-failover-primary-db-unhealthy").into();
    db_alarm["detail"]["state"]["timestamp"] = "2026-11-21T03:00:02.400+0000".into();

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..6 {
        let (promoter, alarm) = (promoter.clone(), [&shop.alarm, &db_alarm][n % 2].clone());
        tasks.spawn(async move { promoter.handle(alarm, &invocation(&format!("req-{n}"))).await });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(outcome) => results.push(format!("{:?} {:?}", outcome.action, outcome.failover_id)),
            Err(err) => {
                assert_eq!(err.class(), ErrorClass::Retryable, "the other alarm backs off: {err}");
                results.push(err.to_string());
            }
        }
    }
    assert_eq!(
        promotes.load(Ordering::SeqCst),
        1,
        "one PromoteReadReplica for both alarms: {results:#?}"
    );

    // Lambda's retries of both alarms finish: each publishes the same endpoint, none promotes.
    for (n, alarm) in [&shop.alarm, &db_alarm].into_iter().enumerate() {
        let outcome = promoter
            .handle(alarm.clone(), &invocation(&format!("retry-{n}")))
            .await
            .unwrap();
        assert!(
            matches!(
                outcome.action,
                Action::Promoted | Action::AlreadyPromoted | Action::AlreadyComplete | Action::Resumed
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(promotes.load(Ordering::SeqCst), 1);
    let b = Emulator::shared().clients(SECONDARY).await;
    assert_eq!(
        ssm::get_parameter(&b, &format!("{}/active-region", shop.prefix))
            .await
            .as_deref(),
        Some(SECONDARY)
    );
}

#[tokio::test]
async fn ignored_transitions_and_bad_input_touch_nothing() {
    let emu = Emulator::shared();
    let shop = shop().await;
    let b = emu.clients(SECONDARY).await;
    let promoter = wiring::build(config(&shop, &[])).await;
    let mut ok = shop.alarm.clone();
    ok["detail"]["state"]["value"] = "OK".into();
    let outcome = promoter.handle(ok, &invocation("req-1")).await.unwrap();
    assert_eq!(outcome.action, Action::Ignored);
    let err = promoter
        .handle(serde_json::json!("not an event"), &invocation("req-2"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid event"), "{err}");

    let scan = b.dynamodb.scan().table_name(&shop.state_table).send().await.unwrap();
    assert_eq!(scan.count(), 0, "no lock taken");
    assert_eq!(
        ssm::get_parameter(&b, &format!("{}/active-region", shop.prefix)).await,
        None
    );
    let replica = b
        .rds
        .describe_db_instances()
        .db_instance_identifier(&shop.replica_id)
        .send()
        .await
        .unwrap();
    assert!(replica.db_instances()[0]
        .read_replica_source_db_instance_identifier()
        .is_some());
}

/// The replica gate on the emulator's real MariaDB: with replication stopped on the
/// replica, the promotion is refused (nothing promoted) and says how to override; once
/// the operator writes the override parameter, the retry promotes and the report keeps
/// what was accepted.
#[tokio::test]
async fn a_replica_whose_replication_stopped_is_promoted_only_with_the_override() {
    let emu = Emulator::shared();
    let shop = shop().await;
    let b = emu.clients(SECONDARY).await;
    // As on RDS, where the master user may not STOP SLAVE: the RDS procedure.
    rds::database(&b, &shop.replica_id)
        .await
        .exec("CALL mysql.rds_stop_replication");
    let (promoter, promotes) = counting_promoter(&shop).await;

    let refused = promoter
        .handle(shop.alarm.clone(), &invocation("req-1"))
        .await
        .unwrap_err();
    assert!(matches!(refused, PromoterError::ReplicaGate(_)), "{refused}");
    assert_eq!(refused.class(), ErrorClass::NonRetryable);
    let message = refused.to_string();
    assert!(
        message.contains("stopped") && message.contains("promote-override"),
        "{message}"
    );
    assert_eq!(promotes.load(Ordering::SeqCst), 0, "nothing promoted");

    ssm::put_parameter(
        &b,
        &format!("{}/promote-override", shop.prefix),
        "us-east-1 is lost for good (ticket 4711)",
    )
    .await;
    let promoted = promoter.handle(shop.alarm.clone(), &invocation("req-2")).await.unwrap();
    assert_eq!(promoted.action, Action::Promoted);
    assert_eq!(promotes.load(Ordering::SeqCst), 1);
    let report = serde_json::to_value(&promoted).unwrap();
    let gate = &report["rpoEstimate"]["replicaGate"];
    assert_eq!(gate["gate"], "overridden", "{report}");
    assert!(gate["reason"].as_str().unwrap().contains("ticket 4711"), "{report}");
}
