//! The local failover drill: a two-region shop on the emulator, the real Lambda binaries
//! under `cargo lambda watch`, a regional failure through the fault proxy, and a report.

pub mod checkout;
pub mod flapping;
pub mod html;
pub mod order_figures;
pub mod orders;
pub mod outage;
pub mod partition;
pub mod plans;
pub mod report;
pub mod scenario;
pub mod shop;
pub mod traffic;
pub mod vantage;
pub mod workload;
pub mod world;

pub use report::DrillReport;
pub use scenario::{run, Defect, Options, Scenario};
