//! The region outage (`region-outage`, `server-failure`, `chaos`): customers and the
//! workload before the failure, the failure itself (the region's APIs cut, its MySQL
//! frozen), detection from both vantage points, promotion, repointing, the customers'
//! figures, the recovery and the approved failback, then the checks, read from the parts
//! themselves.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::order_figures::{self, Moments};
use crate::orders;
use crate::plans::{Plans, PLAN_LIMIT};
use crate::report::DrillReport;
use crate::scenario::{deliver, monitor_until, sample, Defect, Scenario, Stage};
use crate::vantage;
use crate::workload::{self, Acknowledged, Replication};
use crate::world::{self, FrozenServer, ALARM};
use failover_testkit::fault_proxy::Fault;
use failover_testkit::fixtures::{node, rds};
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::{PRIMARY, SECONDARY};

/// health-monitor runs while both regions are up, before the failure.
const RUNS_BEFORE_FAILURE: u32 = 5;

/// Runs the outage with `watch` (stopped before the final checks) and adds to `report`.
pub async fn run(stage: Stage<'_>, watch: LambdaWatch, report: &mut DrillReport) -> Result<(), String> {
    let Stage {
        emulator,
        world,
        proxy,
        witness,
        shops,
        options,
        started,
    } = stage;
    let chaos = options.scenario == Scenario::Chaos;
    // Under chaos a failed invocation is retried as Lambda retries it, whatever failed.
    let retries = (5, chaos);
    let plans = Plans::deploy(emulator, &format!("http://127.0.0.1:{}", watch.port())).await?;
    report.note(
        started,
        format!(
            "deployed the region-switch plan ({}) and the template's rule {} in {SECONDARY}",
            plans.region_switch, plans.rule_name
        ),
    );
    let plans = &plans;
    // Normal operation: the shop writes, the stream is replicated, the monitor sees two healthy regions.
    let scheduled = sample("scheduled-event.json");
    match vantage::round(&watch, witness, &scheduled) {
        Ok(healthy) => report.note(started, format!("health-monitor: {}", healthy["decision"]["decision"])),
        Err(e) if chaos => report.note(started, format!("health-monitor run failed: {e}")),
        Err(e) => return Err(e),
    }
    let streams = emulator.streams(PRIMARY).await;
    let traffic = orders::start_traffic(&stage);
    report.note(
        started,
        format!(
            "customers order {}/s, routed by the active region",
            options.orders_per_second
        ),
    );
    let mut acknowledged = Acknowledged::default();
    let mut replication = Replication {
        drop_next_matching: options
            .defects
            .contains(&Defect::DropStreamRecord)
            .then(|| "CART#".into()),
        ..Replication::default()
    };
    let mut rng = fastrand::Rng::with_seed(42);
    for _ in 0..3 {
        workload::write(&world.a, &mut acknowledged, options.writes / 3, &mut rng).await;
        workload::replicate(&watch, &streams, &world.stream_arn, options.batch, &mut replication).await?;
    }
    // The monitor's scheduled runs before the failure (it has run for days when a region
    // fails: the primary was seen healthy); none may switch, chaos or not.
    let mut early_switches = Vec::new();
    for run in 1..=RUNS_BEFORE_FAILURE {
        if let Ok(decided) = vantage::round(&watch, witness, &scheduled) {
            if decided["decision"]["decision"] == "switch" {
                early_switches.push(run);
            }
        }
    }
    report.note(
        started,
        format!("health-monitor: {RUNS_BEFORE_FAILURE} runs before the failure, switches on runs {early_switches:?}"),
    );
    // Steady state: the customers' orders replicate as they come, every 250 ms.
    orders::until_acknowledged(&traffic, 0, 40, Duration::from_secs(20)).await;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        workload::replicate(&watch, &streams, &world.stream_arn, options.batch, &mut replication).await?;
    }
    report.writes_acknowledged = acknowledged.writes;
    report.records_replicated = replication.records;
    report.replicator_invocations = replication.invocations;
    report.note(
        started,
        format!(
            "{} writes acknowledged in {PRIMARY}, {} stream records replicated in {} invocations",
            acknowledged.writes, replication.records, replication.invocations
        ),
    );

    // The primary region fails: every request signed for it gets HTTP 500, and its database
    // server freezes mid-traffic (connections accepted, never answered).
    let (before_failure, _) = traffic.progress();
    let frozen = FrozenServer::freeze(emulator, &world.database.primary_id)?;
    let frozen_shops = shops.freeze(PRIMARY);
    vantage::fail_primary(proxy, witness, Some(Fault::ServerError));
    let failed_at = Instant::now();
    report.note(
        started,
        format!("region {PRIMARY} fails (every AWS request answered 500, its MySQL and its web servers frozen) after {before_failure} orders"),
    );
    let (runs, switched) = monitor_until(&watch, witness, &scheduled, "switch", options.max_monitor_runs)?;
    report.detection_runs = runs;
    report.detection_seconds = failed_at.elapsed().as_secs_f64();
    report.detection_seconds_at_schedule = runs * 60;
    report.note(
        started,
        format!(
            "health-monitor switched after {runs} runs: {}",
            switched["decision"]["reason"].as_str().unwrap_or("")
        ),
    );

    // The alarm on RegionHealthy enters ALARM: CloudWatch puts its state change on the
    // failover region's default bus, where the template's rule starts the region-switch plan.
    let mut alarm = sample("alarm-state-change-to-alarm.json");
    let now = chrono::Utc::now();
    alarm["time"] = json!(now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    alarm["detail"]["alarmName"] = json!(ALARM);
    alarm["detail"]["state"]["timestamp"] = json!(now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
    // server-failure: the first app server's web server refuses to reload.
    let failing = (options.scenario == Scenario::ServerFailure).then(|| {
        node::fail_restart(&world.node_roots[0], "nginx");
        world.app_servers[0].0.clone()
    });
    let earlier = plans.executions().await?;
    let alarm_at = Instant::now();
    plans.raise_alarm(&alarm).await?;
    let execution = started_by_the_rule(plans, &earlier).await?;
    report.note(
        started,
        format!(
            "{ALARM} in ALARM: the template's rule {} started the region-switch plan {}",
            plans.rule_name,
            execution.rsplit(':').next().unwrap_or("")
        ),
    );
    let (status, plan) = plans.finished(&execution, PLAN_LIMIT).await?;
    report.automation_seconds = alarm_at.elapsed().as_secs_f64();
    let endpoint_of = |plan: &Value| plan["published"]["endpoint"].clone();
    report.promotion = json!({
        "action": plan["promotion"],
        "replica": plan["replica"],
        "endpoint": endpoint_of(&plan),
        "rpoEstimate": plan["rpoEstimate"],
    });
    report.instances = plan["instances"].as_array().cloned().unwrap_or_default();
    let rewrite_status = match plan["outcome"].as_str() {
        Some("switched") => "success".to_owned(),
        Some("switched-with-failures") => "partial".to_owned(),
        other => other.unwrap_or("?").to_owned(),
    };
    report.note(
        started,
        format!(
            "region-switch plan {status:?}: {} (promotion {}, endpoint {}), {} servers reported, pending: {}",
            plan["outcome"],
            plan["promotion"],
            endpoint_of(&plan)["address"],
            report.instances.len(),
            plan["pending"]
        ),
    );
    let subjects = plans.notifications().await?;
    report.note(started, format!("the pager received: {subjects:?}"));
    report.plan = Some(plan);
    let switched_at = Instant::now();
    let (at_switch, failed_so_far) = traffic.progress();
    report.note(
        started,
        format!("customers: {at_switch} orders acknowledged, {failed_so_far} failed so far"),
    );
    orders::until_acknowledged(&traffic, at_switch, 20, Duration::from_secs(20)).await;
    report.final_active_region = world.active_region().await.unwrap_or_default();
    report.rpo_lost_writes = workload::lost_writes(&world.b, &acknowledged).await?;
    report.note(
        started,
        format!(
            "RPO: {} of {} acknowledged writes missing in {SECONDARY}",
            report.rpo_lost_writes, acknowledged.writes
        ),
    );

    // The primary region recovers, its database with it; the customers keep ordering a
    // moment (a server still writing to the old primary would now succeed), then stop.
    drop(frozen);
    drop(frozen_shops);
    vantage::fail_primary(proxy, witness, None);
    let recovered_at = Instant::now();
    report.note(started, format!("region {PRIMARY} recovers (its MySQL runs again)"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = traffic.stop()?;
    let seconds = |at: Instant| at.duration_since(started).as_secs_f64();
    let moments = Moments {
        failed_at: seconds(failed_at),
        switched_at: seconds(switched_at),
        recovered_at: seconds(recovered_at),
    };
    let mut figures = order_figures::measure(&attempts, moments, &orders::holdings(world).await?);
    figures.orders_per_second = options.orders_per_second;
    figures.replica_lag_at_promotion_seconds = report.promotion["rpoEstimate"]["replicaLagSeconds"].as_f64();
    figures.last_replication_read_seconds = replication.last_read_at.map(seconds);
    report.note(
        started,
        format!(
            "customers stop: {} orders, {} acknowledged; downtime {:.1} s; lost MySQL {:?}, DynamoDB {:?}",
            figures.attempted,
            figures.acknowledged,
            figures.downtime_seconds.unwrap_or(f64::NAN),
            figures.mysql.lost,
            figures.dynamodb.lost
        ),
    );
    report.orders = Some(figures);

    // Failback: the monitor waits for M healthy runs, then an approval.
    if options.failback {
        failback(&stage, &watch, &scheduled, retries, report).await?;
    } else {
        report.note(started, "--no-failback: the shop stays in the failover region");
    }
    drop(watch);
    for (link, stats) in [("decider's", proxy.stats()), ("witness's", witness.link.stats())] {
        report.note(
            started,
            format!(
                "fault proxy, {link} link: {} requests, {} answered with faults",
                stats.requests,
                stats.faults()
            ),
        );
    }
    report.note(
        started,
        format!(
            "PromoteReadReplica calls RDS accepted: {}",
            proxy.accepted("PromoteReadReplica")
        ),
    );

    // What the shop relies on, read from the parts themselves: the promoted database takes
    // writes, and every server's env file names it.
    if options.defects.contains(&Defect::PromotedDatabaseReadOnly) {
        world::make_read_only(emulator, &world.database.replica_id)?;
    }
    let promoted_db = rds::database(&world.b, &world.database.replica_id).await;
    let writable = promoted_db.run("CREATE DATABASE IF NOT EXISTS drill_promotion_check");
    let endpoint = format!(
        "{}:{}",
        report.promotion["endpoint"]["address"].as_str().unwrap_or("?"),
        report.promotion["endpoint"]["port"]
    );
    // Both files a server reads its database from: the env file and the PHP-FPM pool.
    let pool_file = world.php.pool_file();
    let names_promoted = |root: &&std::path::PathBuf| {
        node::read(root, node::ENV_FILE).contains(&format!("DB_HOST={endpoint}\n"))
            && node::read(root, &pool_file).contains(&format!("env[DB_HOST] = {endpoint}\n"))
    };
    let repointed = world.node_roots.iter().filter(names_promoted).count();
    let all_succeeded = !report.instances.is_empty()
        && report.instances.iter().all(|i| i["result"] == "success")
        && repointed == world.node_roots.len();
    // A retried delivery finds the replica already detached by the first attempt's call
    // (its answer lost under chaos): `already-promoted`. That RDS accepted exactly one
    // PromoteReadReplica is what says the failover promoted once.
    let promote_calls = proxy.accepted("PromoteReadReplica");
    let promoted = matches!(
        report.promotion["action"].as_str(),
        Some("promoted" | "resumed" | "already-promoted")
    ) && writable.is_ok()
        && promote_calls == 1;
    let (rpo, writes, final_region, failback_region, runs) = (
        report.rpo_lost_writes,
        report.writes_acknowledged,
        report.final_active_region.clone(),
        report.failback_active_region.clone(),
        report.detection_runs,
    );
    report.check("RPO is zero", rpo == 0 && writes > 0, format!("{rpo} lost of {writes}"));
    report.check(
        "no switch before the failure",
        early_switches.is_empty(),
        format!("{RUNS_BEFORE_FAILURE} runs while both regions were up, switch decided on runs {early_switches:?}"),
    );
    if !chaos {
        report.check(
            "switch on exactly the 3rd failed run",
            runs == 3,
            format!("{runs} runs"),
        );
    }
    report.check(
        "replica promoted exactly once",
        promoted,
        format!(
            "{}, PromoteReadReplica accepted {promote_calls} times, accepts writes: {:?}",
            report.promotion["action"],
            writable.map(|_| ()).map_err(|e| e.message)
        ),
    );
    match &failing {
        None => report.check(
            "every app server repointed",
            all_succeeded,
            format!(
                "{} servers reported, {repointed} name {endpoint} in their env file and PHP-FPM pool",
                report.instances.len()
            ),
        ),
        Some(failing) => {
            let reported_failed: Vec<String> = report
                .instances
                .iter()
                .filter(|i| i["result"] != "success")
                .map(|i| i["instanceId"].as_str().unwrap_or("?").to_owned())
                .collect();
            report.check(
                "the failed server is reported",
                reported_failed == [failing.clone()] && rewrite_status == "partial",
                format!("status {rewrite_status}, failed {reported_failed:?} (the failing one: {failing})"),
            );
            let others_repointed = world.node_roots[1..].iter().filter(names_promoted).count();
            let others_succeeded = report
                .instances
                .iter()
                .filter(|i| i["instanceId"] != failing.as_str() && i["result"] == "success")
                .count();
            let others = world.node_roots.len() - 1;
            report.check(
                "every other server repointed",
                others_repointed == others && others_succeeded == others,
                format!("{others_succeeded} of {others} succeeded, {others_repointed} name {endpoint} in their env file and PHP-FPM pool"),
            );
        }
    }
    if let Some(figures) = report.orders.clone() {
        orders::check(report, &figures, &endpoint);
    }
    report.check("active region after failover", final_region == SECONDARY, final_region);
    if options.failback {
        report.check(
            "active region after failback",
            failback_region == PRIMARY,
            failback_region,
        );
    }
    Ok(())
}

/// The execution the rule started for the alarm (one not in `earlier`), waited for (bounded):
/// EventBridge delivers asynchronously.
async fn started_by_the_rule(plans: &Plans, earlier: &[String]) -> Result<String, String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(new) = plans.executions().await?.into_iter().find(|e| !earlier.contains(e)) {
            return Ok(new);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "the alarm reached the bus but the rule {} started no execution of {} within 10 s",
        plans.rule_name, plans.region_switch
    ))
}

/// The approved failback: health-monitor's healthy runs of the primary, then the approval.
async fn failback(
    stage: &Stage<'_>,
    watch: &LambdaWatch,
    scheduled: &Value,
    retries: (u32, bool),
    report: &mut DrillReport,
) -> Result<(), String> {
    let Stage {
        world,
        witness,
        options,
        started,
        ..
    } = *stage;
    let (runs, _) = monitor_until(
        watch,
        witness,
        scheduled,
        "failback-awaiting-approval",
        options.max_monitor_runs,
    )?;
    report.note(
        started,
        format!("health-monitor: {PRIMARY} healthy for {runs} runs, failback awaits approval"),
    );
    let approved = deliver(
        watch,
        "health-monitor",
        &json!({"approveFailback": true}),
        retries,
        report,
        started,
    )?;
    report.failback_runs = runs + 1;
    report.failback_active_region = world.active_region().await.unwrap_or_default();
    report.note(
        started,
        format!(
            "failback approved: {} → active region {}",
            approved["decision"]["decision"], report.failback_active_region
        ),
    );
    Ok(())
}
