//! rds-promoter: on a failover alarm, promotes the cross-region RDS read replica exactly
//! once, waits until it is writable, and publishes its endpoint and the active region.

pub mod config;
pub mod handler;
pub mod outcome;
pub mod wiring;

pub use config::PromoterConfig;
pub use handler::{Invocation, Promoter};
pub use outcome::{Action, Outcome};
