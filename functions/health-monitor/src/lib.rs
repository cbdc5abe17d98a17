//! health-monitor: a scheduled heartbeat check of both regions that keeps the durable
//! active-region state, fails over after N failures, and fails back only when it is safe.
//!
//! `handler` is the script (parse → check → emit → load → decide → save → publish →
//! report); `steps` its other steps; `domain` the pure state machine; `ports` the AWS
//! traits and `adapters` their SDK implementations and in-memory fakes; `wiring` builds
//! the production handler.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
pub mod event;
pub mod handler;
pub mod ports;
pub mod report;
mod steps;
pub mod wiring;

pub use config::{MonitorConfig, ObserverRole};
pub use error::MonitorError;
pub use event::MonitorEvent;
pub use handler::{MetricSink, Monitor};
pub use report::MonitorReport;

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "health-monitor";
