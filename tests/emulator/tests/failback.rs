//! The failback plan (`infra/statemachine/failback.asl.json`) on the emulator's Step
//! Functions after a real failover: the real function binaries, real MariaDB replication in
//! both directions, the approval answered through its task token as an operator would.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sfn::types::ExecutionStatus;
use failover_core::evidence::{CheckOutcome, Observation};
use failover_core::Region;
use failover_testkit::fixtures::{node, rds, ssm};
use failover_testkit::{PRIMARY, SECONDARY};
use serde_json::Value;

use crate::region_switch::{database_fenced, Options, Switch, LIMIT};

const AWAITS: &str = "shop-failover: failback awaits approval";
const REFUSED: &str = "shop-failover: failback refused";
const NOT_APPROVED: &str = "shop-failover: failback not approved";
const FINISHED: &str = "shop-failover: failback finished";

impl Switch {
    /// health-monitor's observation: the original region healthy in `checks` checks in a row.
    async fn original_region_healthy(&self, checks: u32) {
        let mut seen = Observation::default();
        let region = Region::new(PRIMARY).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for i in 0..checks {
            seen.record(&region, CheckOutcome::Healthy, now - i64::from(checks - i) * 10_000);
        }
        self.b
            .dynamodb
            .put_item()
            .table_name(&self.state_table)
            .item("pk", AttributeValue::S(format!("health#{PRIMARY}#{SECONDARY}")))
            .item("state", AttributeValue::S(serde_json::to_string(&seen).unwrap()))
            .send()
            .await
            .unwrap();
    }

    async fn start_failback(&self) -> String {
        self.sfn
            .start_execution()
            .state_machine_arn(&self.failback_plan)
            .input("{}")
            .send()
            .await
            .unwrap()
            .execution_arn
    }

    async fn finished(&self, execution: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        let started = Instant::now();
        loop {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(execution)
                .send()
                .await
                .unwrap();
            if described.status() != &ExecutionStatus::Running {
                return described;
            }
            assert!(
                started.elapsed() < LIMIT,
                "{execution} still running after {LIMIT:?}; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The task token of the approval request notified for `execution` (bounded wait).
    async fn approval_token(&self, execution: &str) -> String {
        for _ in 0..60 {
            for (subject, message) in self.notifications().await {
                if subject == AWAITS && message.contains(execution) {
                    let token = message
                        .split("failoverctl approve --token ")
                        .nth(1)
                        .and_then(|rest| rest.split(" (or").next())
                        .unwrap_or_else(|| panic!("no token in {message}"));
                    return token.to_owned();
                }
            }
        }
        panic!("no approval request for {execution}");
    }
}

/// The shop's orders: a table on the current writer.
fn place_orders(db: &failover_testkit::mysql::Mysql, first: u32, count: u32, region: &str) {
    db.exec("CREATE DATABASE IF NOT EXISTS shop");
    db.exec("CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, placed_in VARCHAR(32), total DECIMAL(10,2))");
    for id in first..first + count {
        db.exec(&format!(
            "INSERT INTO shop.orders VALUES ({id}, '{region}', {}.{:02})",
            id * 3,
            id % 100
        ));
    }
}

fn orders(db: &failover_testkit::mysql::Mysql) -> Vec<Vec<String>> {
    db.exec("SELECT id, placed_in, total FROM shop.orders ORDER BY id")
}

/// Seconds between the first entry into `from` and the last exit from `to` in the history.
fn seconds_between(history: &[aws_sdk_sfn::types::HistoryEvent], from: &str, to: &str) -> f64 {
    let entered = history
        .iter()
        .find(|e| e.state_entered_event_details().is_some_and(|d| d.name() == from))
        .unwrap_or_else(|| panic!("{from} never entered"));
    let exited = history
        .iter()
        .rev()
        .find(|e| e.state_exited_event_details().is_some_and(|d| d.name() == to))
        .unwrap_or_else(|| panic!("{to} never exited"));
    (exited.timestamp().as_secs_f64() - entered.timestamp().as_secs_f64()).max(0.0)
}

#[tokio::test]
async fn failback_moves_every_order_back_reprotects_and_repoints_both_fleets() {
    let switch = Switch::set_up(Options {
        primary_fleet: 2,
        ..Options::default()
    })
    .await;
    let failed_over = switch.run().await;
    switch.succeeded(&failed_over);
    let secondary_db = rds::database(&switch.b, &switch.pair.replica_id).await;
    // Orders taken in the failover region during the outage.
    place_orders(&secondary_db, 1, 40, SECONDARY);
    switch.original_region_healthy(10).await;

    // The original region answers again, but its old primary's fence is still pending:
    // failback is refused and nothing is changed.
    switch.proxy.fail_region(PRIMARY, None);
    let refused = switch.start_failback().await;
    let done = switch.finished(&refused).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed, "{:?}", done.output());
    assert_eq!(done.error(), Some("FailbackRefused"));
    let notes = switch.notifications().await;
    assert!(
        notes
            .iter()
            .any(|(s, m)| s == REFUSED && m.contains("fence") && m.contains("pending")),
        "{notes:?}"
    );

    let swept = switch.sweep();
    database_fenced(&swept).unwrap();
    rds::wait_for_status(&switch.a, &switch.pair.primary_id, "stopped").await;

    // An operator rejects the first request: the plan ends and nothing is changed.
    let rejected = switch.start_failback().await;
    let token = switch.approval_token(&rejected).await;
    switch
        .sfn
        .send_task_failure()
        .task_token(&token)
        .error("Rejected")
        .cause("not during the sale")
        .send()
        .await
        .unwrap();
    let done = switch.finished(&rejected).await;
    let output: Value = serde_json::from_str(done.output().unwrap_or("{}")).unwrap();
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{output}");
    assert_eq!(output["outcome"], "rejected", "{output}");
    let new_primary = output["check"]["plan"]["newPrimary"].as_str().unwrap().to_owned();
    assert!(
        switch
            .a
            .rds
            .describe_db_instances()
            .db_instance_identifier(&new_primary)
            .send()
            .await
            .is_err(),
        "rejected, yet {new_primary} was created"
    );
    assert!(
        switch.notifications().await.iter().any(|(s, _)| s == NOT_APPROVED),
        "the rejection is notified"
    );

    // Approved: the switchover runs.
    let execution = switch.start_failback().await;
    let token = switch.approval_token(&execution).await;
    switch
        .sfn
        .send_task_success()
        .task_token(&token)
        .output("true")
        .send()
        .await
        .unwrap();
    // Orders keep arriving in the failover region while the new replica catches up.
    place_orders(&secondary_db, 41, 20, SECONDARY);
    let placed = orders(&secondary_db);
    assert_eq!(placed.len(), 60);
    let done = switch.finished(&execution).await;
    let report = switch.succeeded(&done);

    // RPO 0, row by row: every order is on the new primary in the original region.
    assert_eq!(report["outcome"], "failed-back", "{report}");
    let new_primary = report["topology"]["primary"].as_str().unwrap().to_owned();
    assert_eq!(report["topology"]["primaryRegion"], PRIMARY, "{report}");
    assert_eq!(
        report["topology"]["replica"],
        switch.pair.replica_id.as_str(),
        "{report}"
    );
    let promoted = rds::describe(&switch.a, &new_primary).await;
    assert!(
        promoted.read_replica_source_db_instance_identifier().is_none(),
        "{new_primary} still replicates"
    );
    let primary_db = rds::database(&switch.a, &new_primary).await;
    assert_eq!(orders(&primary_db), placed, "orders on the new primary");
    // It takes writes, and they replicate to the new replica in the failover region.
    place_orders(&primary_db, 61, 5, PRIMARY);
    let replica = rds::describe(&switch.b, &switch.pair.replica_id).await;
    assert!(
        replica
            .read_replica_source_db_instance_identifier()
            .is_some_and(|s| s.contains(&new_primary)),
        "{} replicates from {:?}",
        switch.pair.replica_id,
        replica.read_replica_source_db_instance_identifier()
    );
    let replica_db = rds::database(&switch.b, &switch.pair.replica_id).await;
    let wanted = orders(&primary_db);
    let started = Instant::now();
    while orders(&replica_db) != wanted {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new replica did not replicate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The old writer is renamed away and stopped.
    let retired = report["topology"]["retired"].as_str().unwrap().to_owned();
    rds::wait_for_status(&switch.b, &retired, "stopped").await;

    // Published: the new endpoint and the original region.
    let endpoint = promoted.endpoint().unwrap();
    let address = endpoint.address().unwrap().to_owned();
    assert_eq!(
        ssm::get_parameter(&switch.b, &format!("{}/db-host", switch.prefix)).await,
        Some(address.clone())
    );
    assert_eq!(
        ssm::get_parameter(&switch.b, &format!("{}/active-region", switch.prefix))
            .await
            .as_deref(),
        Some(PRIMARY)
    );
    // Both fleets name it, are out of maintenance, and only the original region runs cron.
    let db_address = format!("{address}:{}", endpoint.port().unwrap());
    for (region, roots) in [(SECONDARY, &switch.roots), (PRIMARY, &switch.primary_roots)] {
        for root in roots.iter() {
            let magento = node::read(root, "/var/www/magento/app/etc/env.php");
            assert!(
                magento.contains(&format!("'host' => '{db_address}'")),
                "{region}: {magento}"
            );
            assert!(
                !node::inside(root, "/var/www/magento/var/.maintenance.flag").exists(),
                "{region} server still in maintenance"
            );
            let cron = node::crontab(root).contains("#~ MAGENTO START");
            assert_eq!(cron, region == PRIMARY, "{region}: cron {cron}");
        }
    }

    // The measured timeline: the write freeze is the switchover's only downtime.
    let history = switch.history(&execution).await;
    let freeze = seconds_between(&history, "Freeze", "Switch");
    let total = seconds_between(&history, "Begin", "Reprotect");
    eprintln!("failback: {total:.1} s from Begin to re-protected; writes frozen {freeze:.1} s (Freeze .. Switch)");
    for step in [
        "Begin",
        "CheckReplica",
        "Freeze",
        "CheckDrained",
        "Promote",
        "CheckWritable",
        "Publish",
        "Switch",
        "Retire",
        "Reprotect",
    ] {
        eprintln!("failback: {step:14} +{:.1} s", seconds_between(&history, "Begin", step));
    }
    // The report's freeze is the history's.
    let reported = report["writeFreeze"]["seconds"].as_f64().unwrap();
    assert!(
        (reported - freeze).abs() < 0.01,
        "reported {reported} s, history {freeze} s"
    );
    assert_eq!(report["writeFreeze"]["stillFrozen"], false);
    assert_eq!(
        report["servers"].as_array().unwrap().len(),
        4,
        "both fleets, every server: {report}"
    );
    assert_eq!(report["notSwitched"], serde_json::json!([]), "{report}");
    eprintln!(
        "failback: lag when drained {} s; {} orders checked row by row; approval waited {} s",
        report["lagWhenDrainedS"],
        wanted.len(),
        report["approvalWaitedS"]
    );
    assert!(switch.notifications().await.iter().any(|(s, _)| s == FINISHED));

    // A second start is a no-op.
    let again = switch.start_failback().await;
    let done = switch.finished(&again).await;
    let output: Value = serde_json::from_str(done.output().unwrap_or("{}")).unwrap();
    assert_eq!(output["outcome"], "already-failed-back", "{output}");
}
