//! The ports of rds-promoter over the AWS SDK, and the in-memory fakes the tests use.

mod dynamodb_lock;
mod memory;
mod rds;

pub use dynamodb_lock::DynamoDbLockStore;
pub use memory::MemoryLockStore;
pub use rds::RdsInstances;
