//! health-monitor: a scheduled heartbeat check of both regions that keeps the durable
//! active-region state, fails over after N failures, and fails back only when it is safe.

pub mod config;
pub mod handler;
pub mod wiring;

pub use config::MonitorConfig;
pub use handler::{MetricSink, Monitor, MonitorEvent, RunReport};
