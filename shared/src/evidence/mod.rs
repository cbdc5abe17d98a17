//! Evidence that a region is down, as health-monitor gathers it from more than one vantage
//! point and as the region-switch plan's decide step re-reads it: what one check found
//! (`outcome`), each observer's consecutive tallies (`tally`), and the quorum rule that
//! turns two observers' tallies into "the primary is down" or "a partition" (`quorum`).

mod outcome;
mod quorum;
mod tally;

pub use outcome::CheckOutcome;
pub use quorum::{quorum, QuorumRule, QuorumVerdict};
pub use tally::{Observation, RegionTally};
