//! Parameter Store: the names the failover publishes (endpoint, active region), the ports
//! that read and write them, their one adapter over SSM and its in-memory fake.

mod history;
mod memory;
mod names;
mod ports;
#[cfg(feature = "ssm")]
mod ssm;
mod stored;

pub use history::{held_since, HeldValue, ParameterVersion};
pub use memory::MemoryParameters;
pub use names::{ParameterNames, PublishedValues};
pub use ports::{ParameterHistoryReader, ParameterReader, ParameterWriter, TimedParameterReader};
#[cfg(feature = "ssm")]
pub use ssm::SsmParameters;
pub use stored::StoredParameter;
