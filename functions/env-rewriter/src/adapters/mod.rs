//! The ports of env-rewriter over the AWS SDK, and the in-memory fakes the tests use.

mod ec2_instances;
mod memory;
mod ssm_commands;

pub use ec2_instances::Ec2Instances;
pub use memory::MemoryInventory;
pub use ssm_commands::SsmCommands;
