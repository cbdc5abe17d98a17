//! `--scenario flapping`: the primary region goes down and comes back every few seconds
//! (down for two checks, up for one, four times over). Each outage is shorter than
//! health-monitor's threshold of consecutive failed checks, so the shop must stay where
//! it is: no switch decided, the active region unchanged. The monitor must also have seen
//! every outage (the check is not passed by a monitor that looked at nothing).

use std::time::Instant;

use failover_testkit::fault_proxy::{Fault, FaultProxy};
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::PRIMARY;
use serde_json::Value;

use crate::report::DrillReport;
use crate::scenario::sample;
use crate::vantage::{self, Witness};
use crate::world::World;

/// The primary's state per health-monitor run: `true` down.
const PATTERN: [bool; 12] = [
    true, true, false, true, true, false, true, true, false, true, true, false,
];

/// Whether health-monitor's report of a run has the primary's check failed.
pub(crate) fn primary_check_failed(report: &Value) -> bool {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|check| check["region"] == PRIMARY && check["healthy"] == false)
}

/// Runs the flapping primary past health-monitor and checks that nothing switched.
pub async fn run(
    world: &World,
    proxy: &FaultProxy,
    watch: &LambdaWatch,
    witness: &Witness,
    report: &mut DrillReport,
    started: Instant,
) -> Result<(), String> {
    let scheduled = sample("scheduled-event.json");
    let before = world.active_region().await;
    let healthy = vantage::round(watch, witness, &scheduled)?;
    report.note(started, format!("health-monitor: {}", healthy["decision"]["decision"]));
    let (mut switches, mut outages_seen) = (Vec::new(), 0);
    for (run, down) in PATTERN.iter().enumerate() {
        vantage::fail_primary(proxy, witness, down.then_some(Fault::ServerError));
        let decided = vantage::round(watch, witness, &scheduled)?;
        let decision = decided["decision"]["decision"].as_str().unwrap_or("?").to_owned();
        let reason = decided["quorum"]["reason"].as_str().unwrap_or("").to_owned();
        if *down && primary_check_failed(&decided) {
            outages_seen += 1;
        }
        if decision == "switch" {
            switches.push(run + 1);
        }
        report.note(
            started,
            format!(
                "run {}: {PRIMARY} {} → {decision} ({reason})",
                run + 1,
                if *down { "down" } else { "up" }
            ),
        );
    }
    vantage::fail_primary(proxy, witness, None);
    let after = world.active_region().await;
    report.detection_runs = PATTERN.len() as u32;
    report.final_active_region = after.clone().unwrap_or_default();
    let down_runs = PATTERN.iter().filter(|d| **d).count();
    report.check(
        "no failover while the primary flaps",
        switches.is_empty() && before == after,
        format!("switch decided on runs {switches:?}; active region {before:?} before, {after:?} after"),
    );
    report.check(
        "the monitor saw every outage",
        outages_seen == down_runs,
        format!("{outages_seen} of {down_runs} down runs reported as failed checks"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_of_the_primary_is_told_from_a_healthy_one() {
        let run = |healthy: bool| {
            serde_json::json!({"checks": [
                {"region": "us-west-2", "healthy": true},
                {"region": PRIMARY, "healthy": healthy}
            ]})
        };
        assert!(primary_check_failed(&run(false)));
        assert!(!primary_check_failed(&run(true)));
        assert!(!primary_check_failed(&serde_json::json!({})));
    }

    #[test]
    fn no_outage_of_the_pattern_reaches_the_threshold() {
        let longest = PATTERN.split(|down| !down).map(<[bool]>::len).max().unwrap_or(0);
        assert_eq!(
            longest, 2,
            "each outage shorter than the drill's FAILURE_THRESHOLD of 3"
        );
    }
}
