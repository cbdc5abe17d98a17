//! The durable health state: counters per region, the active region, the last switch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use failover_core::Region;

/// Consecutive results of one region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionCounters {
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Healthy checks in a row.
    pub consecutive_successes: u32,
}

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
    /// Counters per region.
    pub regions: BTreeMap<Region, RegionCounters>,
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
            regions: [primary, secondary]
                .into_iter()
                .map(|r| (r.clone(), RegionCounters::default()))
                .collect(),
            last_switch: None,
            published: true,
        }
    }

    /// The counters of `region` (zero if unknown).
    pub fn counters(&self, region: &Region) -> RegionCounters {
        self.regions.get(region).copied().unwrap_or_default()
    }
}
