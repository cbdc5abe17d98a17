//! The test kit: the local AWS emulator (moto server with its fidelity layer), the fault
//! proxy, `cargo lambda watch`, and two-region fixtures, shared by the emulator tests and
//! the drill.

pub mod clients;
pub mod emulator;
pub mod fault_answers;
pub mod fault_proxy;
pub mod fixtures;
pub mod http;
pub mod kept_child;
pub mod lambda_watch;
pub mod mysql;
pub mod naming;
pub mod stream_pump;
pub mod venv;

pub use emulator::Emulator;
pub use fault_proxy::{FaultPlan, FaultProxy};
pub use naming::unique_name;

/// The primary region of every test and of the drill.
pub const PRIMARY: &str = "us-east-1";
/// The secondary (failover) region.
pub const SECONDARY: &str = "us-west-2";
