//! Core crate of the shop failover functions: configuration, errors, retry, metrics,
//! SDK clients, and the pure decisions every function shares.

pub mod adapters;
pub mod alarm;
pub mod clients;
pub mod config;
pub mod emf;
pub mod error;
pub mod health;
pub mod parameter_change;
pub mod ports;
pub mod promotion;
pub mod region;
pub mod retry;
pub mod rewrite;
pub mod telemetry;

pub use config::{ConfigError, EnvReader, RegionPair};
pub use error::{AwsFailure, ErrorClass, FailoverError};
pub use region::Region;
