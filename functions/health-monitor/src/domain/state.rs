//! The durable health state: counters per region, the active region, the last switch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use failover_core::evidence::{Observation, RegionTally};
use failover_core::Region;

/// Consecutive results of one region (the core's tally: failures, successes, the last
/// outcome, when last healthy).
pub type RegionCounters = RegionTally;

/// Failover (away from the active region because it failed) or failback (home again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchKind {
    /// The active region failed N times in a row.
    Failover,
    /// The home (primary) region was healthy M times in a row, and failback was approved.
    Failback,
}

impl SwitchKind {
    /// Whether health-monitor itself writes `active-region` for this switch. A failover is
    /// the region-switch plan's to publish, after the promotion and the fence (published
    /// here, servers would be repointed at the old database first); a failback is still
    /// health-monitor's until the failback plan replaces it.
    pub fn published_by_monitor(self) -> bool {
        self == Self::Failback
    }
}

/// A change of active region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Switch {
    /// Which kind.
    pub kind: SwitchKind,
    /// The previous active region.
    pub from: Region,
    /// The new active region.
    pub to: Region,
    /// When (epoch ms).
    pub at_ms: i64,
    /// Why, in words.
    pub reason: String,
}

/// Everything health-monitor remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthState {
    /// The region serving the shop.
    pub active_region: Region,
    /// This observer's tallies per region and the time of its last check (stored as the
    /// state's `regions` and `checkedAtMs`, which the plan's decide step re-reads).
    #[serde(flatten)]
    pub observation: Observation,
    /// The last switch, if any.
    pub last_switch: Option<Switch>,
    /// False between a switch and the successful publication of the active region.
    pub published: bool,
}

impl HealthState {
    /// The state before any run: the primary is active, all counters at zero.
    pub fn initial(primary: &Region, secondary: &Region) -> Self {
        Self {
            active_region: primary.clone(),
            observation: Observation {
                regions: [primary, secondary]
                    .into_iter()
                    .map(|r| (r.clone(), RegionCounters::default()))
                    .collect::<BTreeMap<_, _>>(),
                checked_at_ms: None,
            },
            last_switch: None,
            published: true,
        }
    }

    /// The counters of `region` (zero if unknown).
    pub fn counters(&self, region: &Region) -> RegionCounters {
        self.observation.tally(region)
    }
}
