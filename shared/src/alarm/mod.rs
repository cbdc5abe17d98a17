//! CloudWatch alarm transitions: one type for both ways an alarm reaches a function,
//! and the policy deciding whether a transition should trigger a failover.

mod policy;
mod transition;

pub use policy::{AlarmPolicy, IgnoreReason, Verdict};
pub use transition::{AlarmEventError, AlarmState, AlarmTransition, Suppression, TransitionSource};
