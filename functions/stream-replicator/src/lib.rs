//! stream-replicator: keeps the secondary region's DynamoDB table a faithful copy of the
//! primary's by replaying the primary table's stream, lossless under faults.
//!
//! The pipeline for one batch, in one pass over the payload: [`wire`] reads the records one
//! at a time, [`decode`] checks each into a change (its new image still raw JSON),
//! [`coalesce`] keeps each key's last change, whose image alone is then built, [`decide`]
//! picks the action per key, [`engine`] applies the actions through the [`ports`] (the
//! [`dynamodb`] adapter in production), and [`checkpoint`] finds where Lambda must resume.
//! Everything but the engine and the adapter is plain synchronous code.

pub mod allocator;
pub mod batching;
pub mod change;
pub mod checkpoint;
pub mod coalesce;
pub mod config;
pub mod decide;
pub mod decode;
pub mod dynamo_json;
pub mod dynamodb;
pub mod engine;
pub mod handler;
pub mod init;
pub mod item;
pub mod key;
pub mod marker;
pub mod memory;
pub mod metrics;
pub mod number;
pub mod ports;
pub mod wire;

pub use config::ReplicatorConfig;
pub use handler::{Handled, Plan, Replicator};
pub use init::init;
