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

/// The workspace's `failoverctl` binary, built once per test run.
fn failoverctl_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = failover_testkit::venv::repo_root();
            let status = std::process::Command::new("cargo")
                .args(["build", "--quiet", "-p", "failoverctl", "--bin", "failoverctl"])
                .current_dir(&root)
                .status()
                .expect("cargo build -p failoverctl");
            assert!(status.success(), "cargo build -p failoverctl failed");
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
            target.join("debug").join("failoverctl")
        })
        .clone()
}

/// What failoverctl answered: its exit code, stdout (JSON with `--json`), stderr.
pub(crate) struct Ctl {
    pub(crate) code: i32,
    pub(crate) json: Value,
    pub(crate) stderr: String,
}

/// Runs `failoverctl <words> --json` against the emulator, as an operator would.
pub(crate) fn failoverctl(words: &[&str]) -> Ctl {
    let emu = failover_testkit::Emulator::shared();
    let output = std::process::Command::new(failoverctl_binary())
        .args(words)
        .arg("--json")
        .envs(emu.env())
        .env_remove("AWS_REGION")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("failoverctl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Ctl {
        code: output.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)),
        stderr,
    }
}

const AWAITS: &str = "shop-failover: failback awaits approval";
const REFUSED: &str = "shop-failover: failback refused";
const NOT_APPROVED: &str = "shop-failover: failback not approved";
const FINISHED: &str = "shop-failover: failback finished";

impl Switch {
    /// A failover, the primary region back, the fence swept (the old primary stopped), and
    /// health-monitor's healthy checks of it: ready to fail back.
    async fn failed_over_and_fenced(&self) {
        self.succeeded(&self.run().await);
        self.proxy.fail_region(PRIMARY, None);
        database_fenced(&self.sweep()).unwrap();
        rds::wait_for_status(&self.a, &self.pair.primary_id, "stopped").await;
        self.original_region_healthy(10).await;
    }

    /// failoverctl for this shop (its table, parameters and plans).
    fn ctl(&self, command: &[&str]) -> Ctl {
        // The shop's repoint document (`<name>-repoint`, named after the shop as its prefix).
        let document = format!(
            "{}-repoint",
            self.prefix.trim_start_matches('/').trim_end_matches("/failover")
        );
        let mut words: Vec<&str> = command.to_vec();
        words.extend([
            "--primary-region",
            PRIMARY,
            "--document",
            &document,
            "--region",
            SECONDARY,
            "--state-table",
            &self.state_table,
            "--parameter-prefix",
            &self.prefix,
            "--switch-plan",
            &self.plan,
            "--failback-plan",
            &self.failback_plan,
            "--wait-seconds",
            "300",
        ]);
        failoverctl(&words)
    }

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

    async fn finished(&self, execution: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        failover_testkit::fixtures::stack::finished_execution(&self.sfn, execution, LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{e}; see {}", self.log.display()))
    }

    /// The report of the failure notification (`shop-failover: failback FAILED`).
    async fn failure_notification(&self) -> Value {
        let notes = self.notifications().await;
        notes
            .iter()
            .find(|(s, _)| s == "shop-failover: failback FAILED")
            .map(|(_, m)| serde_json::from_str::<Value>(m).unwrap())
            .unwrap_or_else(|| panic!("no failure notification: {notes:?}"))
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

/// A cart/order item in the shop's DynamoDB table.
async fn put_item(clients: &failover_testkit::clients::RegionClients, table: &str, pk: &str, status: &str) {
    clients
        .dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(pk.into()))
        .item("status", AttributeValue::S(status.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem {pk} in {}: {e:?}", clients.region));
}

/// Every item's status in the table, by key (the replicator's marker aside).
async fn items(
    clients: &failover_testkit::clients::RegionClients,
    table: &str,
) -> std::collections::BTreeMap<String, String> {
    let page = clients.dynamodb.scan().table_name(table).send().await.unwrap();
    page.items()
        .iter()
        .filter_map(|item| match (item.get("pk"), item.get("status")) {
            (Some(AttributeValue::S(pk)), Some(AttributeValue::S(status))) => Some((pk.clone(), status.clone())),
            _ => None,
        })
        .collect()
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
        reverse_replication: true,
        ..Options::default()
    })
    .await;
    // DynamoDB before the outage: order X paid in the primary table, a write the forward
    // replicator never copied (stranded); the copy holds its older state, copied earlier.
    put_item(&switch.a, &switch.data_table, "order-X", "paid").await;
    put_item(&switch.b, &switch.data_table, "order-X", "pending").await;
    // failoverctl's dry run: what a switch would do, nothing changed.
    let dry = switch.ctl(&["failover", "--dry-run"]);
    assert_eq!(dry.code, 0, "{} {}", dry.json, dry.stderr);
    assert!(
        dry.json["output"]["dryRunPromotion"]["report"]["plan"]
            .to_string()
            .contains("would call PromoteReadReplica"),
        "{}",
        dry.json
    );
    let failed_over = switch.run().await;
    switch.succeeded(&failed_over);
    let secondary_db = rds::database(&switch.b, &switch.pair.replica_id).await;
    // Orders taken in the failover region during the outage, in MySQL and DynamoDB.
    place_orders(&secondary_db, 1, 40, SECONDARY);
    for i in 1..=20 {
        put_item(&switch.b, &switch.data_table, &format!("cart-{i:03}"), "outage").await;
    }
    switch.original_region_healthy(10).await;
    let status = switch.ctl(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(status.json["activeRegion"]["value"], SECONDARY, "{}", status.json);
    assert_eq!(status.json["lastFailover"]["stage"], "published", "{}", status.json);
    assert_eq!(status.json["fence"]["database"]["state"], "pending", "{}", status.json);
    // Each app server's latest repoint: the failover region's both point at the promoted replica.
    assert_eq!(status.json["fleets"][0]["region"], SECONDARY, "{}", status.json);
    assert_eq!(status.json["fleets"][0]["converged"], 2, "{}", status.json);

    // The original region answers again, but its old primary's fence is still pending:
    // failback is refused (exit 4) and nothing is changed.
    switch.proxy.fail_region(PRIMARY, None);
    let refused = switch.ctl(&["failback"]);
    assert_eq!(refused.code, 4, "{} {}", refused.json, refused.stderr);
    assert!(refused.stderr.contains("FailbackRefused"), "{}", refused.stderr);
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
    let asked = switch.ctl(&["failback"]);
    assert_eq!(asked.code, 0, "{} {}", asked.json, asked.stderr);
    assert_eq!(asked.json["state"], "AskApproval", "{}", asked.json);
    let rejected = asked.json["executionArn"].as_str().unwrap().to_owned();
    let status = switch.ctl(&["status"]);
    let pending = &status.json["pendingApprovals"];
    assert_eq!(pending[0]["executionArn"], rejected.as_str(), "{}", status.json);
    assert_eq!(pending[0]["token"], asked.json["token"], "{}", status.json);
    let answered = switch.ctl(&["reject", "--execution", &rejected, "--reason", "not during the sale"]);
    assert_eq!(answered.code, 0, "{}", answered.stderr);
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
    let late = switch.ctl(&["approve", "--execution", &rejected]);
    assert_eq!(late.code, 3, "nothing left to approve: {} {}", late.json, late.stderr);

    // Approved with the token the notification carries: the switchover runs.
    let asked = switch.ctl(&["failback"]);
    let execution = asked.json["executionArn"].as_str().unwrap().to_owned();
    let token = switch.approval_token(&execution).await;
    let approved = switch.ctl(&["approve", "--token", &token]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    // Orders keep arriving in the failover region while the new replica catches up.
    place_orders(&secondary_db, 41, 20, SECONDARY);
    for i in 21..=25 {
        put_item(&switch.b, &switch.data_table, &format!("cart-{i:03}"), "catching-up").await;
    }
    let placed = orders(&secondary_db);
    assert_eq!(placed.len(), 60);
    // A second start while it runs changes nothing (once the failback is recorded as its).
    let started = Instant::now();
    while switch.ctl(&["status"]).json["failback"]["execution"] != execution.as_str() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the failback was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let concurrent = switch.ctl(&["failback"]);
    assert_eq!(concurrent.code, 0, "{} {}", concurrent.json, concurrent.stderr);
    assert_eq!(
        concurrent.json["outcome"], "in-progress-elsewhere",
        "{}",
        concurrent.json
    );
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
    // DynamoDB, item by item: every outage write back in the primary table, the stranded
    // write kept (the copy's older state of it was never sent back).
    let primary_items = items(&switch.a, &switch.data_table).await;
    let copy_items = items(&switch.b, &switch.data_table).await;
    for (pk, status) in copy_items.iter().filter(|(pk, _)| pk.starts_with("cart-")) {
        assert_eq!(primary_items.get(pk), Some(status), "{pk} in the primary table");
    }
    assert_eq!(copy_items.keys().filter(|k| k.starts_with("cart-")).count(), 25);
    assert_eq!(
        primary_items.get("order-X").map(String::as_str),
        Some("paid"),
        "the stranded write"
    );
    let drained = &report["dynamodbDrained"];
    assert_eq!(drained["keysInTarget"], 25, "{report}");
    assert_eq!(drained["keysPending"], 0, "{report}");
    assert_eq!(
        drained["keysNothingToWrite"], 1,
        "order-X's copy from before the failover: {report}"
    );
    eprintln!(
        "failback: DynamoDB {} keys back in the primary table ({} stream records read, {} delivered by the poller), \
         {} skipped as copies, {} conflicts",
        drained["keysInTarget"],
        drained["recordsRead"],
        switch.pump.as_ref().map_or(0, |p| p.delivered()),
        drained["keysNothingToWrite"],
        drained["conflictsLogged"]
    );
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

    // What the on-call person sees afterwards.
    let status = switch.ctl(&["status"]);
    assert_eq!(status.json["activeRegion"]["value"], PRIMARY, "{}", status.json);
    assert_eq!(status.json["failback"]["stage"], "done", "{}", status.json);
    assert_eq!(status.json["replica"]["role"], "replica", "{}", status.json);
    assert_eq!(
        status.json["pendingApprovals"],
        serde_json::json!([]),
        "{}",
        status.json
    );
    for fleet in status.json["fleets"].as_array().unwrap() {
        assert_eq!(fleet["converged"], 2, "both fleets point at the new primary: {fleet}");
        assert_eq!(fleet["notConverged"], serde_json::json!([]), "{fleet}");
        assert_eq!(fleet["servers"][0]["pointedAt"]["region"], PRIMARY, "{fleet}");
    }
    let history = switch.ctl(&["history"]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    let rows = history.json["executions"].as_array().unwrap();
    let outcome = |arn: &str| {
        rows.iter()
            .find(|r| r["executionArn"] == arn)
            .map(|r| (r["status"].clone(), r["outcome"].clone()))
    };
    assert_eq!(
        outcome(&execution),
        Some((Value::from("SUCCEEDED"), Value::from("failed-back"))),
        "{}",
        history.json
    );
    assert_eq!(outcome(&rejected).map(|o| o.1), Some(Value::from("rejected")));
    assert_eq!(
        rows.iter()
            .filter(|r| r["plan"] == "region-switch" && r["outcome"] == "switched")
            .count(),
        1,
        "{}",
        history.json
    );

    // A second start is a no-op.
    let again = switch.ctl(&["failback"]);
    assert_eq!(again.code, 0, "{} {}", again.json, again.stderr);
    assert_eq!(again.json["outcome"], "already-failed-back", "{}", again.json);
}

#[tokio::test]
async fn failoverctl_names_a_missing_table_region_or_plan() {
    let missing = failoverctl(&[
        "status",
        "--region",
        SECONDARY,
        "--state-table",
        "no-such-failover-state",
    ]);
    assert_eq!(missing.code, 3, "{} {}", missing.json, missing.stderr);
    assert!(missing.stderr.contains("no-such-failover-state"), "{}", missing.stderr);
    let no_region = failoverctl(&["status"]);
    assert_eq!(no_region.code, 2, "{}", no_region.stderr);
    assert!(no_region.stderr.contains("--region"), "{}", no_region.stderr);
    let no_plan = failoverctl(&["history", "--region", SECONDARY, "--name-prefix", "no-such-shop"]);
    assert_eq!(no_plan.code, 3, "{}", no_plan.stderr);
    assert!(
        no_plan.stderr.contains("no-such-shop-region-switch"),
        "{}",
        no_plan.stderr
    );
}

#[tokio::test]
async fn an_unanswered_approval_times_out_and_changes_nothing() {
    let switch = Switch::set_up(Options {
        approval_timeout_seconds: Some(3),
        ..Options::default()
    })
    .await;
    switch.failed_over_and_fenced().await;

    let asked = switch.ctl(&["failback"]);
    assert_eq!(asked.code, 0, "{} {}", asked.json, asked.stderr);
    let execution = asked.json["executionArn"].as_str().unwrap().to_owned();
    let done = switch.finished(&execution).await;
    let output: Value = serde_json::from_str(done.output().unwrap_or("{}")).unwrap();
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{output}");
    assert_eq!(output["outcome"], "not-approved", "{output}");
    assert_eq!(output["approval"]["Error"], "States.Timeout", "{output}");
    // Nothing was changed: no failback recorded, no replica created, still active where it was.
    let new_primary = output["check"]["plan"]["newPrimary"].as_str().unwrap();
    assert!(
        switch
            .a
            .rds
            .describe_db_instances()
            .db_instance_identifier(new_primary)
            .send()
            .await
            .is_err(),
        "timed out, yet {new_primary} was created"
    );
    let status = switch.ctl(&["status"]);
    assert_eq!(status.json["failback"], Value::Null, "{}", status.json);
    assert_eq!(status.json["activeRegion"]["value"], SECONDARY, "{}", status.json);
    let late = switch.ctl(&["approve", "--execution", &execution]);
    assert_eq!(late.code, 3, "{} {}", late.json, late.stderr);
    assert!(
        switch
            .notifications()
            .await
            .iter()
            .any(|(s, m)| s == NOT_APPROVED && m.contains("timed out")),
        "the timeout is notified"
    );
}

#[tokio::test]
async fn a_replica_that_stops_replicating_during_the_freeze_is_never_promoted_and_the_freeze_is_lifted() {
    let switch = Switch::set_up(Options {
        primary_fleet: 1,
        ..Options::default()
    })
    .await;
    switch.failed_over_and_fenced().await;
    let asked = switch.ctl(&["failback"]);
    let execution = asked.json["executionArn"].as_str().unwrap().to_owned();
    let token = switch.approval_token(&execution).await;
    assert_eq!(switch.ctl(&["approve", "--token", &token]).code, 0);

    // Writes are frozen and the plan waits for the replica to drain: its replication stops.
    let started = Instant::now();
    loop {
        let status = switch.ctl(&["status"]);
        let state = status.json["running"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["executionArn"] == execution.as_str())
            .and_then(|r| r["state"].as_str().map(str::to_owned));
        if matches!(state.as_deref(), Some("CheckDrained" | "WaitForDrain")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never reached the drain: {}",
            status.json
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let new_primary = switch.ctl(&["status"]).json["failback"]["newPrimary"]
        .as_str()
        .unwrap()
        .to_owned();
    for root in switch.roots.iter().chain(&switch.primary_roots) {
        assert!(
            node::inside(root, "/var/www/magento/var/.maintenance.flag").exists(),
            "frozen: every server in maintenance"
        );
    }
    rds::database(&switch.a, &new_primary)
        .await
        .exec("CALL mysql.rds_stop_replication");

    let done = switch.finished(&execution).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed, "{:?}", done.output());
    assert_eq!(done.error(), Some("FailbackFailed"));
    let failed = switch.failure_notification().await;
    assert_eq!(failed["failedAt"], "DrainFailed", "{failed}");
    assert_eq!(
        failed["writeFreeze"]["stillFrozen"], false,
        "the freeze was lifted: {failed}"
    );
    // Never promoted, nothing published, every server out of maintenance, the writer unchanged.
    assert!(rds::describe(&switch.a, &new_primary)
        .await
        .read_replica_source_db_instance_identifier()
        .is_some());
    assert_eq!(
        ssm::get_parameter(&switch.b, &format!("{}/active-region", switch.prefix))
            .await
            .as_deref(),
        Some(SECONDARY)
    );
    for root in switch.roots.iter().chain(&switch.primary_roots) {
        assert!(
            !node::inside(root, "/var/www/magento/var/.maintenance.flag").exists(),
            "the freeze is lifted on every server"
        );
    }
    let writer = rds::describe(&switch.b, &switch.pair.replica_id).await;
    assert_eq!(writer.db_instance_status(), Some("available"));
    assert!(failed["pending"].to_string().contains("stays a replica"), "{failed}");
    let cause = failed["failure"]["Cause"].as_str().unwrap_or_default().to_owned();

    // Replication repaired, the next approved failback takes the abandoned one over and
    // completes from the same replica.
    rds::database(&switch.a, &new_primary)
        .await
        .exec("CALL mysql.rds_start_replication");
    let asked = switch.ctl(&["failback"]);
    assert_eq!(asked.code, 0, "{} {}", asked.json, asked.stderr);
    let retry = asked.json["executionArn"].as_str().unwrap().to_owned();
    let token = switch.approval_token(&retry).await;
    assert_eq!(switch.ctl(&["approve", "--token", &token]).code, 0);
    let report = switch.succeeded(&switch.finished(&retry).await);
    assert_eq!(report["outcome"], "failed-back", "{report}");
    assert_eq!(report["topology"]["primary"], new_primary.as_str(), "{report}");
    let failed = serde_json::json!({"failure": {"Cause": cause}, "writeFreeze": failed["writeFreeze"]});
    eprintln!(
        "failback: replication stopped during the drain: {} after {} s frozen",
        failed["failure"]["Cause"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>(),
        failed["writeFreeze"]["seconds"]
    );
}

/// The defect the DynamoDB drain check guards against: one DynamoDB write of the outage
/// never reaches the primary table (the stream poller loses it). With writes frozen the plan
/// waits for it, then lifts the freeze and gives up: nothing is switched.
#[tokio::test]
async fn a_dynamodb_write_lost_on_its_way_back_keeps_the_switch_from_happening() {
    let lose: failover_testkit::stream_pump::LoseRecord =
        std::sync::Arc::new(|record: &Value| record["dynamodb"]["Keys"]["pk"]["S"] == "cart-lost");
    let switch = Switch::set_up(Options {
        primary_fleet: 1,
        reverse_replication: true,
        lose_record: Some(lose),
        // The lost write is pending from the start: only the freeze's drain check may stop it.
        extra: &[
            ("DRAIN_MAX_WAIT_SECONDS", "60"),
            ("FAILBACK_MAX_REPLICA_LAG_SECONDS", "600"),
        ],
        ..Options::default()
    })
    .await;
    switch.failed_over_and_fenced().await;
    put_item(&switch.b, &switch.data_table, "cart-kept", "outage").await;
    put_item(&switch.b, &switch.data_table, "cart-lost", "outage").await;
    let asked = switch.ctl(&["failback"]);
    let execution = asked.json["executionArn"].as_str().unwrap().to_owned();
    let token = switch.approval_token(&execution).await;
    assert_eq!(switch.ctl(&["approve", "--token", &token]).code, 0);

    let done = switch.finished(&execution).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed, "{:?}", done.output());
    let failed = switch.failure_notification().await;
    assert_eq!(failed["failedAt"], "DrainFailed", "{failed}");
    let cause = failed["failure"]["Cause"].as_str().unwrap_or_default();
    assert!(cause.contains("1 DynamoDB keys"), "{cause}");
    assert_eq!(failed["writeFreeze"]["stillFrozen"], false, "{failed}");
    assert_eq!(
        ssm::get_parameter(&switch.b, &format!("{}/active-region", switch.prefix))
            .await
            .as_deref(),
        Some(SECONDARY),
        "nothing was switched"
    );
    let primary_items = items(&switch.a, &switch.data_table).await;
    assert_eq!(primary_items.get("cart-kept").map(String::as_str), Some("outage"));
    assert!(!primary_items.contains_key("cart-lost"));
    assert!(switch.pump.as_ref().unwrap().dropped() >= 1);
    eprintln!(
        "failback: a lost DynamoDB write stopped the switch after {} s frozen: {}",
        failed["writeFreeze"]["seconds"],
        cause.chars().take(160).collect::<String>()
    );
}
