//! The report of one run, and the metric lines it emits: the per-region verdicts the
//! failover alarm reads, and the run's summary.

use std::collections::BTreeMap;

use failover_core::emf::{MetricLine, Unit, NAMESPACE};
use failover_core::evidence::{CheckOutcome, QuorumVerdict};
use failover_core::Region;
use serde::Serialize;

use crate::domain::{CheckResult, Decision, HealthState};

/// The report of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorReport {
    /// The region this monitor observes from.
    pub observer: String,
    /// Check rounds this invocation ran.
    pub rounds: u32,
    /// What the quorum rule made of this round's evidence (the decider's only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumVerdict>,
    /// The state machine's decision.
    pub decision: Decision,
    /// The active region after this run.
    pub active_region: String,
    /// Each region's check.
    pub checks: Vec<CheckResult>,
    /// Age of each region's heartbeat copy in the other region, when replicated.
    pub replication_lag_ms: BTreeMap<String, u64>,
    /// True when another run updated the state first and this run changed nothing.
    pub conflict: bool,
    /// True when this run wrote the active region to Parameter Store.
    pub published: bool,
    /// Whether the published active region is the primary (`None`: nothing readable is
    /// published); emitted as `PrimaryActive` for the Route 53 PRIMARY record's check.
    pub primary_active: Option<bool>,
}

/// `PrimaryActive` (1 while the published active region is the primary, 0 after a switch),
/// or nothing when no active region could be read.
pub fn primary_active_line(primary_active: Option<bool>) -> Vec<MetricLine> {
    primary_active
        .map(|active| {
            MetricLine::for_function(crate::FUNCTION).metric(
                "PrimaryActive",
                if active { 1.0 } else { 0.0 },
                Unit::None,
            )
        })
        .into_iter()
        .collect()
}

/// Per region and observer, from the checks alone, at one-second resolution (alarms read
/// 10-second periods): `RegionHealthy`, `RegionMisconfigured` (a 4xx: our configuration,
/// never evidence of an outage), latencies, replication lag.
pub fn check_metric_lines(
    checks: &[CheckResult],
    replication_lag_ms: &BTreeMap<String, u64>,
    observer: &Region,
) -> Vec<MetricLine> {
    let mut lines = Vec::new();
    for check in checks {
        let misconfigured = check.outcome == CheckOutcome::Misconfigured;
        let mut line = MetricLine::new(NAMESPACE)
            .high_resolution()
            .dimension("Region", check.region.as_str())
            .dimension("Observer", observer.as_str())
            .metric("RegionHealthy", if check.healthy { 1.0 } else { 0.0 }, Unit::None)
            .metric("RegionMisconfigured", if misconfigured { 1.0 } else { 0.0 }, Unit::None);
        if let Some(ms) = check.write_ms {
            line = line.metric("HeartbeatWriteMs", ms as f64, Unit::Milliseconds);
        }
        if let Some(ms) = check.read_ms {
            line = line.metric("HeartbeatReadMs", ms as f64, Unit::Milliseconds);
        }
        if let Some(error) = &check.error {
            line = line.property("CheckError", error.as_str());
        }
        let lag = replication_lag_ms
            .iter()
            .find(|(path, _)| path.starts_with(&format!("{}->", check.region)))
            .map(|(_, ms)| *ms);
        if let Some(ms) = lag {
            line = line.metric("ReplicationLagMs", ms as f64, Unit::Milliseconds);
        }
        lines.push(line);
    }
    lines
}

/// The decider's evidence verdict, at one-second resolution: `PrimaryDownQuorum` (the
/// failover alarm), `PartitionSuspected` and `WitnessUnavailable` (paged, never a failover).
pub fn quorum_metric_lines(verdict: &QuorumVerdict) -> Vec<MetricLine> {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let line = MetricLine::for_function(crate::FUNCTION)
        .high_resolution()
        .metric("PrimaryDownQuorum", flag(verdict.is_primary_down()), Unit::None)
        .metric(
            "PartitionSuspected",
            flag(matches!(verdict, QuorumVerdict::Partition(_))),
            Unit::None,
        )
        .metric(
            "WitnessUnavailable",
            flag(matches!(verdict, QuorumVerdict::WitnessUnavailable(_))),
            Unit::None,
        )
        .property("Quorum", serde_json::to_value(verdict).unwrap_or_default());
    vec![line]
}

/// After the save: the saved counters per region and what this run did (`decision` is
/// `None` when another run saved first, so this run switched nothing).
pub fn run_metric_lines(decision: Option<&Decision>, state: &HealthState) -> Vec<MetricLine> {
    let mut lines = Vec::new();
    if decision.is_some() {
        for (region, counters) in &state.observation.regions {
            let line = MetricLine::new(NAMESPACE)
                .dimension("Region", region.as_str())
                .metric("ConsecutiveFailures", counters.consecutive_failures as f64, Unit::Count)
                .property("ActiveRegion", state.active_region.as_str());
            lines.push(line);
        }
    }
    let mut summary = MetricLine::for_function(crate::FUNCTION);
    summary = match decision {
        Some(Decision::Switch(switch)) => summary
            .metric("ActiveRegionSwitches", 1.0, Unit::Count)
            .property("SwitchKind", serde_json::to_value(switch.kind).unwrap_or_default()),
        Some(Decision::BothUnhealthy) => {
            summary
                .metric("ActiveRegionSwitches", 0.0, Unit::Count)
                .metric("BothRegionsUnhealthy", 1.0, Unit::Count)
        }
        Some(Decision::NoUsableRegion { .. }) => summary
            .metric("ActiveRegionSwitches", 0.0, Unit::Count)
            .metric("BothRegionsUnhealthy", 1.0, Unit::Count)
            .property("Critical", "failover region failed; failback not allowed yet"),
        _ => summary.metric("ActiveRegionSwitches", 0.0, Unit::Count),
    };
    lines.push(summary);
    lines
}
