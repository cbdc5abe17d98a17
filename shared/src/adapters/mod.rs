//! The ports implemented over the AWS SDK clients.

mod dynamodb_health;
mod dynamodb_lock;
mod ec2_instances;
mod rds;
mod ssm_commands;
mod ssm_parameters;

pub use dynamodb_health::{DynamoDbHealthStore, DynamoDbHeartbeats};
pub use dynamodb_lock::DynamoDbLockStore;
pub use ec2_instances::Ec2Instances;
pub use rds::RdsInstances;
pub use ssm_commands::SsmCommands;
pub use ssm_parameters::SsmParameters;
