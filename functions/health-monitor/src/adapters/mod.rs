//! The ports of health-monitor over the AWS SDK, and the in-memory fakes the tests use.

mod dynamodb_health;
mod memory;

pub use dynamodb_health::{DynamoDbHealthStore, DynamoDbHeartbeats};
pub use memory::{MemoryHealthStore, ScriptedHeartbeats};
