//! The ports of rds-promoter over the AWS SDK, and the in-memory fakes the tests use.

mod dynamodb_lock;
mod lambda_mappings;
mod memory;
mod rds;
mod sfn_history;

pub use dynamodb_lock::DynamoDbLockStore;
pub use lambda_mappings::LambdaMappings;
pub use memory::{MemoryHistory, MemoryLockStore, MemoryMappings};
pub use rds::RdsInstances;
pub use sfn_history::SfnHistory;
