//! `--scenario partition`: the secondary region loses its path to the primary (its link
//! drops every request to the primary region) while the witness and the customers still
//! reach it. The primary is not down: nothing may switch, the secondary must have seen the
//! primary unreachable on every run (the check is not passed by a monitor that looked at
//! nothing), and the customers' checkout must never stop.

use std::time::Duration;

use failover_testkit::fault_proxy::Fault;
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::PRIMARY;

use crate::flapping::primary_check_failed;
use crate::orders;
use crate::report::DrillReport;
use crate::scenario::{sample, Stage};
use crate::vantage;

/// health-monitor rounds under the partition: twice the drill's FAILURE_THRESHOLD of 3.
const ROUNDS: usize = 6;

/// Runs the partition past health-monitor with customers ordering, and checks that nothing
/// switched and nothing stopped.
pub async fn run(stage: &Stage<'_>, watch: &LambdaWatch, report: &mut DrillReport) -> Result<(), String> {
    let Stage {
        world,
        proxy: decider_link,
        witness,
        options,
        started,
        ..
    } = *stage;
    let scheduled = sample("scheduled-event.json");
    let before = world.active_region().await;
    let healthy = vantage::round(watch, witness, &scheduled)?;
    report.note(started, format!("health-monitor: {}", healthy["decision"]["decision"]));
    let traffic = orders::start_traffic(stage);
    orders::until_acknowledged(&traffic, 0, 20, Duration::from_secs(20)).await;
    report.note(
        started,
        format!("customers order {}/s in {PRIMARY}", options.orders_per_second),
    );

    decider_link.fail_region(PRIMARY, Some(Fault::Drop));
    report.note(
        started,
        format!("partition: the secondary's link to {PRIMARY} drops every request (the witness and the customers still reach it)"),
    );
    let (mut switches, mut unreachable_runs) = (Vec::new(), 0);
    for run in 1..=ROUNDS {
        let decided = vantage::round(watch, witness, &scheduled)?;
        let decision = decided["decision"]["decision"].as_str().unwrap_or("?").to_owned();
        if primary_check_failed(&decided) {
            unreachable_runs += 1;
        }
        if decision == "switch" {
            switches.push(run);
        }
        report.note(
            started,
            format!(
                "run {run}: → {decision} ({}: {})",
                decided["quorum"]["verdict"].as_str().unwrap_or("no verdict"),
                decided["quorum"]["reason"].as_str().unwrap_or("")
            ),
        );
    }
    decider_link.fail_region(PRIMARY, None);
    report.note(started, "partition heals");
    let attempts = traffic.stop()?;
    let after = world.active_region().await;
    report.detection_runs = ROUNDS as u32;
    report.final_active_region = after.clone().unwrap_or_default();
    let failed: Vec<u64> = attempts
        .iter()
        .filter(|a| !a.acknowledged())
        .map(|a| a.order_id)
        .collect();
    report.note(
        started,
        format!("customers stop: {} orders, {} failed", attempts.len(), failed.len()),
    );
    report.check(
        "no failover under a partition",
        switches.is_empty() && before == after,
        format!("switch decided on runs {switches:?}; active region {before:?} before, {after:?} after"),
    );
    report.check(
        "the secondary saw the primary unreachable on every run",
        unreachable_runs == ROUNDS,
        format!("{unreachable_runs} of {ROUNDS} runs reported the primary's check failed"),
    );
    report.check(
        "checkout never stopped",
        !attempts.is_empty() && failed.is_empty(),
        format!("{} orders, failed: {failed:?}", attempts.len()),
    );
    Ok(())
}
