//! The drill's report: a timeline, the figures, and pass/fail checks.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Seconds since the drill started.
    pub at_seconds: f64,
    /// What happened.
    pub event: String,
}

/// One pass/fail check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The observed value.
    pub detail: String,
}

/// Everything the drill measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillReport {
    /// The scenario run (`region-outage`, `flapping`).
    pub scenario: String,
    /// Writes acknowledged by the primary but missing or different in the secondary.
    pub rpo_lost_writes: usize,
    /// Writes the primary acknowledged.
    pub writes_acknowledged: usize,
    /// Stream records delivered to stream-replicator.
    pub records_replicated: usize,
    /// stream-replicator invocations.
    pub replicator_invocations: usize,
    /// health-monitor runs from the failure until it switched.
    pub detection_runs: u32,
    /// Wall time from the failure to the switch (runs back to back).
    pub detection_seconds: f64,
    /// The same with the production schedule of one run per minute.
    pub detection_seconds_at_schedule: u32,
    /// From the alarm's state change on the bus until the region-switch plan ended.
    pub automation_seconds: f64,
    /// The promotion as the plan reported it (action, replica, endpoint, RPO estimate).
    pub promotion: Value,
    /// The region-switch plan's report (its output: outcome, per-step timeline from the
    /// execution history, fences, pending work), when the scenario ran it.
    pub plan: Option<Value>,
    /// Active region published after the failover.
    pub final_active_region: String,
    /// Active region published after the approved failback.
    pub failback_active_region: String,
    /// health-monitor runs after the primary recovered, until failback.
    pub failback_runs: u32,
    /// The customers' orders through the failure (scenarios with traffic).
    pub orders: Option<crate::order_figures::OrderFigures>,
    /// env-rewriter's per-instance results.
    pub instances: Vec<Value>,
    /// What happened when.
    pub timeline: Vec<TimelineEntry>,
    /// Pass/fail checks.
    pub checks: Vec<Check>,
}

impl DrillReport {
    /// Records a timeline entry and prints it at once.
    pub fn note(&mut self, started: Instant, event: impl Into<String>) {
        let entry = TimelineEntry {
            at_seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            event: event.into(),
        };
        println!("  +{:>6.1}s  {}", entry.at_seconds, entry.event);
        self.timeline.push(entry);
    }

    /// Records a check.
    pub fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        });
    }

    /// The names of the checks that failed, in order.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// True when every check passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// The human-readable summary.
    pub fn print_summary(&self) {
        println!();
        println!("== failover drill report: {} ==", self.scenario);
        println!("writes acknowledged by the primary  {}", self.writes_acknowledged);
        println!(
            "records replicated                  {} in {} invocations",
            self.records_replicated, self.replicator_invocations
        );
        println!("RPO (acknowledged writes lost)      {}", self.rpo_lost_writes);
        if let Some(orders) = &self.orders {
            let seconds = |v: Option<f64>| v.map_or("none".to_owned(), |s| format!("{s:.1} s"));
            println!(
                "orders ({}/s)                       {} attempted, {} acknowledged, {} failed",
                orders.orders_per_second, orders.attempted, orders.acknowledged, orders.failed
            );
            println!(
                "checkout downtime (RTO)             {} (last order {} before the failure, first {} after, on {})",
                seconds(orders.downtime_seconds),
                seconds(
                    orders
                        .last_acknowledged_before_seconds
                        .map(|t| orders.failed_at_seconds - t)
                ),
                seconds(
                    orders
                        .first_acknowledged_after_seconds
                        .map(|t| t - orders.failed_at_seconds)
                ),
                orders.first_acknowledged_after_on.as_deref().unwrap_or("nothing")
            );
            for (store, figures) in [("MySQL", &orders.mysql), ("DynamoDB", &orders.dynamodb)] {
                println!(
                    "RPO {store:<9}                       {} lost of {} acknowledged {:?}",
                    figures.lost.len(),
                    figures.acknowledged,
                    figures.lost
                );
            }
            println!(
                "replica lag at promotion            {}",
                seconds(orders.replica_lag_at_promotion_seconds)
            );
            println!("orders on the old primary after switch {:?}", orders.split_brain);
        }
        println!(
            "detection                           {} monitor runs, {:.1} s back to back ({} s at one run per minute)",
            self.detection_runs, self.detection_seconds, self.detection_seconds_at_schedule
        );
        println!("automation (alarm → servers done)   {:.1} s", self.automation_seconds);
        println!("active region after failover       {}", self.final_active_region);
        println!(
            "active region after failback       {} ({} monitor runs)",
            self.failback_active_region, self.failback_runs
        );
        println!("commands per instance:");
        for instance in &self.instances {
            println!(
                "  {:<22} {:<12} {}",
                instance["instanceId"].as_str().unwrap_or("?"),
                instance["app"].as_str().unwrap_or("?"),
                instance["result"].as_str().unwrap_or("?")
            );
        }
        println!("checks:");
        for check in &self.checks {
            println!(
                "  [{}] {} ({})",
                if check.passed { "PASS" } else { "FAIL" },
                check.name,
                check.detail
            );
        }
        println!("drill: {}", if self.passed() { "PASSED" } else { "FAILED" });
    }
}
