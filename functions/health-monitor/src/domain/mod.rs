//! Regional health and the active region: the pure state machine behind health-monitor.

mod active;
mod approval;
mod check;
mod state;
mod transition;

pub use active::primary_active;
pub use approval::approval_is_current;
pub use check::CheckResult;
pub use state::{HealthState, RegionCounters, Switch, SwitchKind};
pub use transition::{decide, Decision, Evidence, Thresholds};
