//! Core crate of the shop failover functions: only what two or more of them use. Errors
//! and their Lambda classes, retry, polling and deadlines, the environment reader, regions,
//! the SDK configuration, EMF metrics, tracing, alarm transitions and the alarm policy,
//! Parameter Store change events, the Parameter Store names with their one adapter, and the
//! evidence of an outage with its quorum rule (health-monitor gathers it, rds-promoter re-reads it).
//! Each function's own decisions, ports and adapters live in its crate (see ARCHITECTURE.md).

pub mod alarm;
pub mod clients;
pub mod config;
pub mod emf;
pub mod error;
pub mod evidence;
pub mod parameter_change;
pub mod parameters;
pub mod region;
pub mod retry;
pub mod startup;
pub mod telemetry;

pub use config::{ConfigError, EnvReader, RegionPair};
pub use error::{AwsFailure, ErrorClass, FailoverError};
pub use region::Region;
