//! The emulator's RDS behaves as RDS documents it, over real MariaDB servers (see
//! `tools/fidelity/rds_mariadb.py`): each test asserts AWS's behaviour, not moto's.
//! Promotion takes `FIDELITY_RDS_PROMOTION_SECONDS` (3 s unless set), in two halves.

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::clients::RegionClients;
use failover_testkit::fixtures::rds;
use failover_testkit::mysql::{Mysql, MASTER_PASSWORD, MASTER_USER};
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};

const PROMOTION: Duration = Duration::from_secs(3);

async fn regions() -> (RegionClients, RegionClients) {
    let emu = Emulator::shared();
    (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await)
}

/// Polls `check` every 100 ms for at most `limit`; true as soon as it holds.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

fn order_ids(db: &Mysql) -> Vec<String> {
    db.column("SELECT id FROM shop.orders ORDER BY id")
}

fn error_code<E: aws_sdk_rds::error::ProvideErrorMetadata>(error: &E) -> String {
    format!("{}: {}", error.code().unwrap_or("?"), error.message().unwrap_or(""))
}

async fn promote_error(clients: &RegionClients, id: &str) -> String {
    let error = clients
        .rds
        .promote_read_replica()
        .db_instance_identifier(id)
        .send()
        .await
        .expect_err("the promotion must be refused");
    error_code(&error.into_service_error())
}

#[tokio::test]
async fn a_replica_copies_committed_writes_and_promotion_detaches_it_after_modifying_and_rebooting() {
    let (a, b) = regions().await;
    let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &unique_name("fidelitydb")).await;
    let primary = rds::database(&a, &pair.primary_id).await;
    let replica = rds::database(&b, &pair.replica_id).await;
    primary.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY); INSERT INTO shop.orders VALUES (1)",
    );
    assert!(
        eventually(Duration::from_secs(20), || replica
            .run("SELECT id FROM shop.orders")
            .is_ok_and(|r| r.len() == 1))
        .await,
        "the committed order reaches the replica"
    );
    let refused = replica
        .run("INSERT INTO shop.orders VALUES (99)")
        .expect_err("a replica is read-only");
    assert!(refused.message.contains("read-only"), "{refused}");
    let described = rds::describe(&b, &pair.replica_id).await;
    let info = &described.status_infos()[0];
    assert_eq!(
        (info.status_type(), info.status(), info.normal()),
        (Some("read replication"), Some("replicating"), Some(true))
    );
    assert_eq!(
        described.endpoint().and_then(|e| e.address()),
        Some("127.0.0.1"),
        "the real loopback endpoint"
    );
    let stop = a
        .rds
        .stop_db_instance()
        .db_instance_identifier(&pair.primary_id)
        .send()
        .await;
    assert!(error_code(
        &stop
            .expect_err("a source with replicas cannot be stopped")
            .into_service_error()
    )
    .starts_with("InvalidDBInstanceState"),);

    let started = Instant::now();
    b.rds
        .promote_read_replica()
        .db_instance_identifier(&pair.replica_id)
        .backup_retention_period(7)
        .send()
        .await
        .unwrap();
    let statuses = rds::wait_for_status(&b, &pair.replica_id, "available").await;
    let took = started.elapsed();
    assert_eq!(
        statuses,
        ["modifying", "rebooting", "available"],
        "the RDS status sequence"
    );
    assert!(
        took >= PROMOTION && took < PROMOTION * 4,
        "promotion took {took:?}, configured {PROMOTION:?}"
    );
    let promoted = rds::describe(&b, &pair.replica_id).await;
    assert_eq!(promoted.read_replica_source_db_instance_identifier(), None);
    assert!(rds::describe(&a, &pair.primary_id)
        .await
        .read_replica_db_instance_identifiers()
        .is_empty());
    replica.exec("INSERT INTO shop.orders VALUES (2)");
    primary.exec("INSERT INTO shop.orders VALUES (3)");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        order_ids(&replica),
        ["1", "2"],
        "the old primary's later write never arrives"
    );

    assert!(promote_error(&b, &pair.replica_id)
        .await
        .contains("InvalidDBInstanceState: DB Instance is not a read replica"));
    assert!(promote_error(&b, &unique_name("no-such-db"))
        .await
        .starts_with("DBInstanceNotFound"));

    // Failback's first step: a replica of the promoted instance back in the first region.
    let back_id = format!("{}-back", pair.primary_id);
    a.rds
        .create_db_instance_read_replica()
        .db_instance_identifier(&back_id)
        .source_db_instance_identifier(&pair.replica_arn)
        .db_instance_class("db.t3.micro")
        .send()
        .await
        .unwrap();
    rds::wait_for_status(&a, &back_id, "available").await;
    let back = rds::database(&a, &back_id).await;
    assert_eq!(order_ids(&back), ["1", "2"], "seeded from the promoted instance");
    replica.exec("INSERT INTO shop.orders VALUES (4)");
    assert!(
        eventually(Duration::from_secs(20), || order_ids(&back) == ["1", "2", "4"]).await,
        "and replicating from it: {:?}",
        order_ids(&back)
    );
}

#[tokio::test]
async fn a_replica_still_backing_up_is_not_promoted() {
    let (a, b) = regions().await;
    let name = unique_name("backingup");
    let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &name).await;
    let second = format!("{name}-second");
    b.rds
        .create_db_instance_read_replica()
        .db_instance_identifier(&second)
        .source_db_instance_identifier(&pair.primary_arn)
        .db_instance_class("db.t3.micro")
        .send()
        .await
        .unwrap();
    rds::wait_for_status(&b, &second, "backing-up").await;
    let refused = promote_error(&b, &second).await;
    assert!(refused.starts_with("InvalidDBInstanceState"), "{refused}");
    rds::wait_for_status(&b, &second, "available").await;
    assert!(rds::describe(&b, &second)
        .await
        .read_replica_source_db_instance_identifier()
        .is_some());
}

#[tokio::test]
async fn replica_lag_rises_while_the_replica_is_blocked_and_is_minus_one_once_replication_stops() {
    let (a, b) = regions().await;
    let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &unique_name("lagdb")).await;
    let primary = rds::database(&a, &pair.primary_id).await;
    let replica = rds::database(&b, &pair.replica_id).await;
    primary.exec("CREATE DATABASE shop; CREATE TABLE shop.stock (id INT PRIMARY KEY, n INT); INSERT INTO shop.stock VALUES (1, 0)");
    assert!(
        eventually(Duration::from_secs(20), || replica
            .run("SELECT n FROM shop.stock")
            .is_ok_and(|r| r.len() == 1))
        .await
    );
    let cloudwatch =
        aws_sdk_cloudwatch::Client::new(&sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await);

    // A reader on the replica holds the table (read-only servers refuse locking reads, not
    // LOCK TABLES ... READ); the replicated update waits behind it.
    let mut reader = replica.session();
    reader.send("LOCK TABLES shop.stock READ;");
    tokio::time::sleep(Duration::from_millis(500)).await;
    primary.exec("UPDATE shop.stock SET n = n + 1 WHERE id = 1");
    let mut highest = f64::MIN;
    let started = Instant::now();
    while highest < 3.0 && started.elapsed() < Duration::from_secs(25) {
        highest = highest.max(
            lag_values(&cloudwatch, &pair.replica_id, "Maximum")
                .await
                .into_iter()
                .fold(f64::MIN, f64::max),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    reader.end();
    assert!(
        highest >= 3.0,
        "ReplicaLag rose while the replica was blocked (highest {highest})"
    );
    assert!(
        eventually(Duration::from_secs(40), || replica.column("SELECT n FROM shop.stock")
            == ["1"])
        .await
    );

    replica.exec("CALL mysql.rds_stop_replication");
    let stopped = rds::describe(&b, &pair.replica_id).await;
    assert_eq!(stopped.status_infos()[0].status(), Some("stopped"));
    let started = Instant::now();
    let mut latest = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        latest = lag_values(&cloudwatch, &pair.replica_id, "Minimum").await;
        if latest.contains(&-1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        latest.contains(&-1.0),
        "ReplicaLag is -1 once replication is not running: {latest:?}"
    );
}

async fn lag_values(cloudwatch: &aws_sdk_cloudwatch::Client, replica_id: &str, stat: &str) -> Vec<f64> {
    let metric = Metric::builder()
        .namespace("AWS/RDS")
        .metric_name("ReplicaLag")
        .dimensions(
            Dimension::builder()
                .name("DBInstanceIdentifier")
                .value(replica_id)
                .build(),
        )
        .build();
    let query = MetricDataQuery::builder()
        .id("lag")
        .metric_stat(MetricStat::builder().metric(metric).period(1).stat(stat).build())
        .build();
    let now = aws_smithy_types::DateTime::from_secs(chrono::Utc::now().timestamp());
    let output = cloudwatch
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(aws_smithy_types::DateTime::from_secs(now.secs() - 20))
        .end_time(aws_smithy_types::DateTime::from_secs(now.secs() + 5))
        .send()
        .await
        .unwrap();
    output
        .metric_data_results()
        .iter()
        .flat_map(|r| r.values().to_vec())
        .collect()
}

#[tokio::test]
async fn stop_and_rename_take_the_old_endpoint_away_as_fencing_needs() {
    let (a, _) = regions().await;
    let id = unique_name("fencedb");
    a.rds
        .create_db_instance()
        .db_instance_identifier(&id)
        .engine("mysql")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username(MASTER_USER)
        .master_user_password(MASTER_PASSWORD)
        .send()
        .await
        .unwrap();
    rds::wait_for_status(&a, &id, "available").await;
    let before = rds::database(&a, &id).await;
    before.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY); INSERT INTO shop.orders VALUES (1)",
    );

    a.rds
        .stop_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(rds::wait_for_status(&a, &id, "stopped").await, ["stopping", "stopped"]);
    assert!(
        before.run("SELECT 1").is_err(),
        "a stopped instance takes no connection"
    );
    a.rds
        .start_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    rds::wait_for_status(&a, &id, "available").await;
    assert_eq!(
        order_ids(&rds::database(&a, &id).await),
        ["1"],
        "started again with its data"
    );

    let renamed = format!("{id}-fenced");
    let old = rds::database(&a, &id).await;
    a.rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .new_db_instance_identifier(&renamed)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    rds::wait_for_status(&a, &renamed, "available").await;
    let gone = a.rds.describe_db_instances().db_instance_identifier(&id).send().await;
    assert!(
        error_code(&gone.expect_err("the old name is gone").into_service_error()).starts_with("DBInstanceNotFound")
    );
    assert!(
        old.run("SELECT 1").is_err(),
        "the old endpoint no longer reaches the server"
    );
    assert_eq!(order_ids(&rds::database(&a, &renamed).await), ["1"]);
}
