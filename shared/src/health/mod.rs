//! Regional health and the active region: the pure state machine behind health-monitor.

mod check;
mod state;
mod transition;

pub use check::CheckResult;
pub use state::{HealthState, RegionCounters, Switch, SwitchKind};
pub use transition::{decide, Decision, Thresholds};
