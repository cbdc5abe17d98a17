//! rds-promoter: on a failover alarm, promotes the cross-region RDS read replica exactly
//! once, waits until it is writable, and publishes its endpoint and the active region; as
//! steps of the region-switch plan, it does the same one step per invocation and fences
//! the old writers (the database, the forward replicator), and on a schedule completes
//! the fences that were pending.
//!
//! `handler` is the script (parse → policy → lock → stages → report); `request` what an
//! invocation asks for; `lock`, `stages`, `fence`, `dry_run` and `plan_report` its steps; `domain` the pure decisions; `ports` the AWS traits and `adapters`
//! their SDK implementations and in-memory fakes; `wiring` builds the production handler.

pub mod adapters;
pub mod config;
mod construction;
pub mod domain;
mod dry_run;
pub mod error;
mod failback;
pub mod failback_config;
mod failback_report;
mod fence;
pub mod handler;
pub mod invocation;
mod lock;
mod plan_report;
pub mod ports;
pub mod report;
pub mod request;
mod stages;
pub mod wiring;

pub use config::PromoterConfig;
pub use error::PromoterError;
pub use handler::Promoter;
pub use invocation::Invocation;
pub use report::{PromotionAction, PromotionReport};

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "rds-promoter";
