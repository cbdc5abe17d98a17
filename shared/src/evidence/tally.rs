//! An observer's running tallies: per region, how many checks in a row failed or passed,
//! what the last one found, and when the region was last seen healthy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outcome::CheckOutcome;
use crate::region::Region;

/// Consecutive results of one region as one observer saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionTally {
    /// `Down` checks in a row.
    pub consecutive_failures: u32,
    /// `Healthy` checks in a row.
    pub consecutive_successes: u32,
    /// What the last check found (absent in state saved by older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<CheckOutcome>,
    /// `Misconfigured` checks in a row.
    #[serde(default)]
    pub consecutive_misconfigured: u32,
    /// When a check last found the region healthy (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_healthy_at_ms: Option<i64>,
}

impl RegionTally {
    /// Counts one check. A misconfigured check is no evidence either way: it ends both
    /// streaks, so an outage is never decided from checks that a 4xx interrupted.
    pub fn record(&mut self, outcome: CheckOutcome, at_ms: i64) {
        self.last = Some(outcome);
        match outcome {
            CheckOutcome::Healthy => {
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                self.consecutive_failures = 0;
                self.consecutive_misconfigured = 0;
                self.last_healthy_at_ms = Some(at_ms);
            }
            CheckOutcome::Down => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.consecutive_successes = 0;
                self.consecutive_misconfigured = 0;
            }
            CheckOutcome::Misconfigured => {
                self.consecutive_misconfigured = self.consecutive_misconfigured.saturating_add(1);
                self.consecutive_failures = 0;
                self.consecutive_successes = 0;
            }
        }
    }
}

/// One observer's view of every region it checks, as it saves it after each check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Tallies per checked region.
    #[serde(default)]
    pub regions: BTreeMap<Region, RegionTally>,
    /// When its last check finished (epoch ms); absent before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at_ms: Option<i64>,
}

impl Observation {
    /// The tally of `region` (all zero if never checked).
    pub fn tally(&self, region: &Region) -> RegionTally {
        self.regions.get(region).cloned().unwrap_or_default()
    }

    /// Counts one check of `region`.
    pub fn record(&mut self, region: &Region, outcome: CheckOutcome, at_ms: i64) {
        self.regions.entry(region.clone()).or_default().record(outcome, at_ms);
        self.checked_at_ms = Some(self.checked_at_ms.map_or(at_ms, |t| t.max(at_ms)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misconfigured_check_ends_both_streaks_and_is_counted_apart() {
        let mut tally = RegionTally::default();
        tally.record(CheckOutcome::Down, 1);
        tally.record(CheckOutcome::Down, 2);
        tally.record(CheckOutcome::Misconfigured, 3);
        assert_eq!((tally.consecutive_failures, tally.consecutive_misconfigured), (0, 1));
        tally.record(CheckOutcome::Healthy, 4);
        assert_eq!((tally.consecutive_successes, tally.last_healthy_at_ms), (1, Some(4)));
    }

    #[test]
    fn state_saved_before_the_taxonomy_still_reads() {
        let old: RegionTally = serde_json::from_str(r#"{"consecutiveFailures":2,"consecutiveSuccesses":0}"#).unwrap();
        assert_eq!((old.consecutive_failures, old.last), (2, None));
    }
}
