//! health-monitor from its two vantage points, as the template deploys it: the decider in
//! the secondary region (the drill's main `cargo lambda watch`, which serves every function)
//! and the witness in a third region (a second `cargo lambda watch` with the witness's
//! configuration), each reaching AWS over its own link (fault proxy), so a cut between the
//! secondary and the primary alone can be told from an outage.

use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::PRIMARY;
use serde_json::Value;

use crate::scenario::invoke;
use crate::world::World;

/// The witness: its own link and its own function process.
pub struct Witness {
    /// Its network path to AWS (the customers share it: they are not cut off by a partition).
    pub link: FaultProxy,
    watch: LambdaWatch,
}

impl Witness {
    /// Starts the witness's link and its `cargo lambda watch`.
    pub fn start(world: &World, emulator_endpoint: &str) -> Result<Self, String> {
        let link =
            FaultProxy::start(emulator_endpoint, FaultPlan::none(), 11).map_err(|e| format!("witness link: {e}"))?;
        let log = std::env::temp_dir().join(format!("failover-drill-witness-{}.log", std::process::id()));
        let watch = LambdaWatch::start(
            &failover_testkit::venv::repo_root(),
            &world.witness_env(&link.endpoint()),
            &log,
        )
        .map_err(|e| format!("cargo lambda watch (witness): {e}"))?;
        Ok(Self { link, watch })
    }
}

/// Both links of a region failure: the decider's and the witness's.
pub fn fail_primary(decider_link: &FaultProxy, witness: &Witness, fault: Option<Fault>) {
    decider_link.fail_region(PRIMARY, fault);
    witness.link.fail_region(PRIMARY, fault);
}

/// One check round from both vantage points: the witness first (its schedule runs it as
/// often), then the decider; returns the decider's report.
pub fn round(decider: &LambdaWatch, witness: &Witness, payload: &Value) -> Result<Value, String> {
    invoke(&witness.watch, "health-monitor", payload)?.map_err(|e| format!("health-monitor (witness): {e}"))?;
    invoke(decider, "health-monitor", payload)?.map_err(|e| format!("health-monitor: {e}"))
}
