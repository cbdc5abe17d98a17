//! The drill's settings, scenarios and injected defects, what every scenario shares (the
//! shop, the fault proxies, the functions under `cargo lambda watch`, the witness, Lambda's
//! way of delivering events), and the scenario dispatch.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::report::DrillReport;
use crate::shop::Shops;
use crate::vantage::{self, Witness};
use crate::world::{World, WITNESS};
use failover_testkit::fault_proxy::{FaultPlan, FaultProxy};
use failover_testkit::lambda_watch::{FunctionError, LambdaWatch};
use failover_testkit::{Emulator, SECONDARY};

/// What a scenario with customers runs against: the shop, its links, the witness, the
/// WordPress servers, the settings.
#[derive(Clone, Copy)]
pub struct Stage<'a> {
    /// The emulator (its MariaDB servers are frozen and inspected through its state dir).
    pub emulator: &'a Emulator,
    /// The shop's AWS side and its servers' trees.
    pub world: &'a World,
    /// The decider's link (every function's, but the witness's).
    pub proxy: &'a FaultProxy,
    /// The witness.
    pub witness: &'a Witness,
    /// The running WordPress servers.
    pub shops: &'a Shops,
    /// The drill's settings.
    pub options: &'a Options,
    /// The drill's start.
    pub started: Instant,
}

/// Drill settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Writes in the workload.
    pub writes: usize,
    /// Records per stream-replicator invocation.
    pub batch: usize,
    /// Upper bound of monitor runs while waiting for a switch.
    pub max_monitor_runs: u32,
    /// Orders the customers attempt per second, through the failure.
    pub orders_per_second: u32,
    /// Defects injected to show the checks catch them (tests only; none in a real drill).
    pub defects: Vec<Defect>,
    /// What the drill puts the shop through.
    pub scenario: Scenario,
    /// Whether the outage scenarios fail back once the primary region is healthy again
    /// (`--no-failback` leaves the shop in the failover region).
    pub failback: bool,
}

/// The drill's scenarios (`--scenario NAME`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scenario {
    /// `region-outage` (the default): the primary region fails, the shop fails over and back.
    #[default]
    RegionOutage,
    /// `flapping`: the primary goes down and up every few seconds; nothing may switch.
    Flapping,
    /// `server-failure`: a region outage in which one app server's web server fails to
    /// reload: that server is reported failed, every other one is repointed.
    ServerFailure,
    /// `partition`: the secondary region loses its path to the primary, which the witness
    /// and the customers still reach; nothing may switch and checkout never stops.
    Partition,
    /// `chaos`: the region outage with 20% of every AWS call failing throughout (throttled,
    /// HTTP 500, or the connection dropped before or after the call reached AWS).
    Chaos,
}

/// The share of AWS calls that fail under `chaos`.
pub const CHAOS_FAULT_RATE: f64 = 0.2;

impl Scenario {
    /// The name `--scenario` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::RegionOutage => "region-outage",
            Self::Flapping => "flapping",
            Self::ServerFailure => "server-failure",
            Self::Partition => "partition",
            Self::Chaos => "chaos",
        }
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "region-outage" => Ok(Self::RegionOutage),
            "flapping" => Ok(Self::Flapping),
            "server-failure" => Ok(Self::ServerFailure),
            "partition" => Ok(Self::Partition),
            "chaos" => Ok(Self::Chaos),
            other => Err(format!(
                "unknown scenario {other:?}: expected region-outage, flapping, server-failure, partition or chaos"
            )),
        }
    }
}

/// A fault the drill can inject, each one behind a check that must then fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The registered repoint document succeeds without changing anything (what moto's
    /// SSM did): "every app server repointed" must fail although every command succeeds.
    DocumentDoesNothing,
    /// After the promotion the database is read-only again (behind the product's back):
    /// "replica promoted exactly once" must fail although rds-promoter reports a promotion.
    PromotedDatabaseReadOnly,
    /// health-monitor decides on the first failed check (FAILURE_THRESHOLD=1): under
    /// `flapping`, "no failover while the primary flaps" must fail.
    NoDampening,
    /// health-monitor decides from one vantage point (the decider without WITNESS_REGION):
    /// under `partition`, "no failover under a partition" must fail.
    NoQuorum,
    /// One cart item's stream record is never delivered (a replicator that loses a record):
    /// "orders lost only in the replication window" must fail.
    DropStreamRecord,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            writes: 300,
            batch: 100,
            max_monitor_runs: 10,
            orders_per_second: 20,
            defects: Vec::new(),
            scenario: Scenario::RegionOutage,
            failback: true,
        }
    }
}

pub(crate) fn sample(name: &str) -> Value {
    let path = failover_testkit::venv::repo_root().join("events").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("sample event is JSON")
}

pub(crate) fn invoke(
    watch: &LambdaWatch,
    function: &str,
    payload: &Value,
) -> Result<Result<Value, FunctionError>, String> {
    watch
        .invoke(function, payload)
        .map_err(|e| format!("invoking {function}: {e}"))
}

/// Runs health-monitor rounds until the decider's decision is `wanted` (bounded); returns
/// the runs made.
pub(crate) fn monitor_until(
    watch: &LambdaWatch,
    witness: &Witness,
    payload: &Value,
    wanted: &str,
    max_runs: u32,
) -> Result<(u32, Value), String> {
    let mut seen = Vec::new();
    for run in 1..=max_runs {
        // A failed run is what a failed scheduled invocation is: the next one follows.
        let report = match vantage::round(watch, witness, payload) {
            Ok(report) => report,
            Err(e) => {
                seen.push(format!("run {run} failed: {e}"));
                continue;
            }
        };
        if report["decision"]["decision"] == wanted {
            return Ok((run, report));
        }
        seen.push(format!(
            "run {run}: {} ({})",
            report["decision"]["decision"],
            report["quorum"]["reason"].as_str().unwrap_or("")
        ));
    }
    Err(format!(
        "health-monitor did not decide {wanted} within {max_runs} runs; the last ones: {}",
        seen[seen.len().saturating_sub(4)..].join("; ")
    ))
}

/// Delivers `payload` to `function` as Lambda delivers an event, retrying a failed
/// invocation (up to `attempts`): always when the function says `Retryable`, and for any
/// error when `any_error` (Lambda retries asynchronous invocations whatever failed).
pub(crate) fn deliver(
    watch: &LambdaWatch,
    function: &str,
    payload: &Value,
    (attempts, any_error): (u32, bool),
    report: &mut DrillReport,
    started: Instant,
) -> Result<Value, String> {
    for attempt in 1..=attempts {
        match invoke(watch, function, payload)? {
            Ok(result) => return Ok(result),
            Err(e) if attempt < attempts && (any_error || e.error_type == "Retryable") => {
                report.note(started, format!("{function} attempt {attempt}: {e} (Lambda retries)"));
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(format!("{function} failed (attempt {attempt}): {e}")),
        }
    }
    Err(format!("{function} did not complete in {attempts} attempts"))
}

/// Provisions the shop on `emulator`, runs the whole drill, and returns the report
/// (its checks say whether it passed).
pub async fn run(emulator: &Emulator, options: &Options) -> Result<DrillReport, String> {
    let started = Instant::now();
    let mut report = DrillReport {
        scenario: options.scenario.name().into(),
        ..DrillReport::default()
    };
    let world = World::provision(emulator, options.defects.contains(&Defect::DocumentDoesNothing)).await;
    report.note(
        started,
        format!(
            "provisioned: tables, MySQL {} → replica {} in {SECONDARY}, {} app servers",
            world.database.primary_id,
            world.database.replica_id,
            world.app_servers.len()
        ),
    );

    let proxy =
        FaultProxy::start(&emulator.endpoint(), FaultPlan::none(), 7).map_err(|e| format!("fault proxy: {e}"))?;
    let log = std::env::temp_dir().join(format!("failover-drill-watch-{}.log", std::process::id()));
    let mut env = world.function_env(&proxy.endpoint());
    if options.defects.contains(&Defect::NoDampening) {
        for (key, value) in &mut env {
            if key == "FAILURE_THRESHOLD" {
                *value = "1".into();
            }
        }
    }
    if options.defects.contains(&Defect::NoQuorum) {
        env.retain(|(key, _)| key != "WITNESS_REGION");
    }
    let watch = LambdaWatch::start(&failover_testkit::venv::repo_root(), &env, &log)
        .map_err(|e| format!("cargo lambda watch: {e}"))?;
    report.note(
        started,
        format!(
            "cargo lambda watch on 127.0.0.1:{} (log {})",
            watch.port(),
            log.display()
        ),
    );

    let witness = Witness::start(&world, &emulator.endpoint())?;
    report.note(
        started,
        format!("health-monitor's witness watches from {WITNESS} over its own link"),
    );
    let chaos = options.scenario == Scenario::Chaos;
    if chaos {
        proxy.set_plan(FaultPlan::even(CHAOS_FAULT_RATE));
        witness.link.set_plan(FaultPlan::even(CHAOS_FAULT_RATE));
        report.note(
            started,
            format!(
                "chaos: {:.0}% of every AWS call fails from now on (both links)",
                CHAOS_FAULT_RATE * 100.0
            ),
        );
    }
    if options.scenario == Scenario::Flapping {
        crate::flapping::run(&world, &proxy, &watch, &witness, &mut report, started).await?;
        return Ok(report);
    }
    let (shops, installed) = world.start_shops(&witness.link.endpoint())?;
    report.note(
        started,
        format!(
            "WordPress under nginx + PHP-FPM on {} servers ({}); the Magento servers are fixture trees with a stub bin/magento (Magento cannot be installed here)",
            shops.servers.len(),
            installed.trim_start_matches("installed: ")
        ),
    );
    let stage = Stage {
        emulator,
        world: &world,
        proxy: &proxy,
        witness: &witness,
        shops: &shops,
        options,
        started,
    };
    if options.scenario == Scenario::Partition {
        crate::partition::run(&stage, &watch, &mut report).await?;
    } else {
        crate::outage::run(stage, watch, &mut report).await?;
    }
    Ok(report)
}
