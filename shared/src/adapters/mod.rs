//! The ports implemented over the AWS SDK clients.

mod dynamodb_lock;
mod rds;
mod ssm_parameters;

pub use dynamodb_lock::DynamoDbLockStore;
pub use rds::RdsInstances;
pub use ssm_parameters::SsmParameters;
