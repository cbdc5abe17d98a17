//! One monitor run: check both regions, update the durable state, switch when the state
//! machine says so, publish the active region, emit metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use failover_core::emf::{MetricLine, Unit};
use failover_core::health::{approval_is_current, decide, CheckResult, Decision, HealthState, SwitchKind};
use failover_core::ports::{ApprovalReader, HealthStateStore, HeartbeatProbe, ParameterWriter};
use failover_core::FailoverError;
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::MonitorConfig;

/// What started the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorEvent {
    /// The EventBridge schedule.
    Scheduled,
    /// A manual `{"approveFailback": true}`: approves a pending failback.
    ApproveFailback,
}

impl MonitorEvent {
    /// Recognises a Scheduled Event or a failback approval.
    pub fn from_value(value: &Value) -> Result<Self, FailoverError> {
        if value.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return Ok(Self::Scheduled);
        }
        if value.get("approveFailback").and_then(Value::as_bool) == Some(true)
            && value.as_object().is_some_and(|o| o.len() == 1)
        {
            return Ok(Self::ApproveFailback);
        }
        Err(FailoverError::InvalidEvent(
            "expected an EventBridge Scheduled Event or {\"approveFailback\": true}".into(),
        ))
    }
}

/// The report of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// The state machine's decision.
    pub decision: Decision,
    /// The active region after this run.
    pub active_region: String,
    /// Each region's check.
    pub checks: Vec<CheckResult>,
    /// Age of each region's heartbeat copy in the other region, when replicated.
    pub replication_lag_ms: BTreeMap<String, u64>,
    /// True when another run updated the state first and this run changed nothing.
    pub conflict: bool,
    /// True when this run wrote the active region to Parameter Store.
    pub published: bool,
}

/// Where metric lines go: stdout (for Lambda's log agent) unless replaced.
pub type MetricSink = Arc<dyn Fn(&MetricLine) + Send + Sync>;

/// The health-monitor handler, generic over its AWS dependencies.
pub struct Monitor<H, S, P> {
    config: MonitorConfig,
    probe: H,
    store: S,
    parameters: P,
    metrics: MetricSink,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl<H, S, P> Monitor<H, S, P>
where
    H: HeartbeatProbe,
    S: HealthStateStore,
    P: ApprovalReader + ParameterWriter,
{
    /// Wires the handler to its ports.
    pub fn new(config: MonitorConfig, probe: H, store: S, parameters: P) -> Self {
        Self {
            config,
            probe,
            store,
            parameters,
            metrics: Arc::new(MetricLine::emit),
        }
    }

    /// Sends metric lines to `sink` instead of stdout (e.g. to inspect them in tests).
    pub fn with_metric_sink(mut self, sink: impl Fn(&MetricLine) + Send + Sync + 'static) -> Self {
        self.metrics = Arc::new(sink);
        self
    }

    /// The parameter store (e.g. to inspect an in-memory one in tests).
    pub fn parameters(&self) -> &P {
        &self.parameters
    }

    /// The state store (e.g. to inspect an in-memory one in tests).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// [`Self::run`] plus the summary log line.
    pub async fn handle_and_report(&self, payload: Value) -> Result<Value, FailoverError> {
        match self.run(payload).await {
            Ok(report) => {
                info!(report = %serde_json::to_value(&report).unwrap_or_default(), "health-monitor run");
                Ok(serde_json::to_value(report).unwrap_or_default())
            }
            Err(err) => {
                error!(error = %err, error_type = err.class().as_str(), "health-monitor failed");
                (self.metrics)(
                    &MetricLine::new("ShopFailover")
                        .dimension("Function", "health-monitor")
                        .metric("Errors", 1.0, Unit::Count),
                );
                Err(err)
            }
        }
    }

    /// One run.
    pub async fn run(&self, payload: Value) -> Result<RunReport, FailoverError> {
        let event = MonitorEvent::from_value(&payload)?;
        let (primary, secondary) = (&self.config.regions.primary, &self.config.regions.secondary);
        let (primary_check, secondary_check) = tokio::join!(self.probe.check(primary), self.probe.check(secondary));
        let checks = vec![primary_check, secondary_check];
        let mut replication_lag_ms = BTreeMap::new();
        for (source, replica) in [(primary, secondary), (secondary, primary)] {
            if let Some(lag) = self.probe.replication_lag_ms(source, replica).await {
                replication_lag_ms.insert(format!("{source}->{replica}"), lag);
            }
        }

        // Before anything can fail: the failover alarm treats a missing RegionHealthy
        // datapoint as breaching, so a state-table problem must not silence the checks.
        self.emit_check_metrics(&checks, &replication_lag_ms);

        let (state, version) = match self.store.load().await? {
            Some((state, version)) => (state, Some(version)),
            None => (HealthState::initial(primary, secondary), None),
        };
        let approval_name = self.config.approval_parameter();
        let approved_by_parameter = match self.parameters.approval(&approval_name).await {
            Ok(stored) => {
                let current = approval_is_current(stored.as_ref(), &state);
                if !current && stored.is_some_and(|s| s.value.trim().eq_ignore_ascii_case("true")) {
                    info!("{approval_name} is true but was not set after the last switch; ignoring it");
                }
                current
            }
            Err(e) => {
                warn!(error = %e, "cannot read the failback approval parameter; treating as not approved");
                false
            }
        };
        let approved = approved_by_parameter || event == MonitorEvent::ApproveFailback;

        let (mut next, decision) = decide(
            &state,
            primary,
            secondary,
            &checks,
            self.config.thresholds,
            approved,
            now_ms(),
        );
        let mut report = RunReport {
            decision: decision.clone(),
            active_region: next.active_region.to_string(),
            checks,
            replication_lag_ms,
            conflict: false,
            published: false,
        };
        if !self.store.save(&next, version).await? {
            info!("another monitor run updated the health state first; this run changed nothing");
            report.conflict = true;
            report.active_region = state.active_region.to_string();
            self.emit_run_metrics(None, &state);
            return Ok(report);
        }
        // Only a run that saved has switched (or counted): metrics follow the saved state.
        self.emit_run_metrics(Some(&decision), &next);
        match &decision {
            Decision::Switch(switch) => {
                warn!(kind = ?switch.kind, from = %switch.from, to = %switch.to, reason = %switch.reason, "switching the active region")
            }
            Decision::BothUnhealthy => error!(
                critical = true,
                "CRITICAL: both regions failed their heartbeat check; no switch is safe, staying on {}",
                next.active_region
            ),
            Decision::NoUsableRegion { awaiting_approval } => error!(
                critical = true,
                "CRITICAL: {} failed {} consecutive checks and {primary} may not take over yet ({}); staying on {}",
                next.active_region,
                next.counters(&next.active_region).consecutive_failures,
                if *awaiting_approval {
                    format!("failback awaits approval: set {approval_name}=true or send {{\"approveFailback\": true}}")
                } else {
                    format!(
                        "{primary} has been healthy for {} of {} required checks",
                        next.counters(primary).consecutive_successes,
                        self.config.thresholds.failback_after
                    )
                },
                next.active_region
            ),
            Decision::FailbackAwaitingApproval => info!(
                "{primary} has been healthy for {} checks; set {approval_name}=true or send {{\"approveFailback\": true}} to fail back",
                self.config.thresholds.failback_after
            ),
            Decision::Stay => {}
        }
        if !next.published {
            self.parameters
                .put(&self.config.parameters.active_region(), next.active_region.as_str())
                .await?;
            next.published = true;
            report.published = true;
            if !self.store.save(&next, Some(version.unwrap_or(0) + 1)).await? {
                info!("the state changed after publishing; the next run re-checks it");
            }
            // Tidy only: an approval older than the last switch is ignored anyway, so a
            // failed reset must not fail a run whose failback is already published.
            if matches!(&decision, Decision::Switch(s) if s.kind == SwitchKind::Failback) && approved_by_parameter {
                if let Err(e) = self.parameters.put(&approval_name, "false").await {
                    warn!(error = %e, "could not reset {approval_name} after the failback; it is ignored from now on");
                }
            }
        }
        Ok(report)
    }

    /// Per region, from the checks alone: `RegionHealthy`, latencies, replication lag.
    fn emit_check_metrics(&self, checks: &[CheckResult], replication_lag_ms: &BTreeMap<String, u64>) {
        for check in checks {
            let mut line = MetricLine::new("ShopFailover")
                .dimension("Region", check.region.as_str())
                .metric("RegionHealthy", if check.healthy { 1.0 } else { 0.0 }, Unit::None);
            if let Some(ms) = check.write_ms {
                line = line.metric("HeartbeatWriteMs", ms as f64, Unit::Milliseconds);
            }
            if let Some(ms) = check.read_ms {
                line = line.metric("HeartbeatReadMs", ms as f64, Unit::Milliseconds);
            }
            if let Some(error) = &check.error {
                line = line.property("CheckError", error.as_str());
            }
            let lag = replication_lag_ms
                .iter()
                .find(|(path, _)| path.starts_with(&format!("{}->", check.region)))
                .map(|(_, ms)| *ms);
            if let Some(ms) = lag {
                line = line.metric("ReplicationLagMs", ms as f64, Unit::Milliseconds);
            }
            (self.metrics)(&line);
        }
    }

    /// After the save: the saved counters per region and what this run did (`decision` is
    /// `None` when another run saved first, so this run switched nothing).
    fn emit_run_metrics(&self, decision: Option<&Decision>, state: &HealthState) {
        if decision.is_some() {
            for (region, counters) in &state.regions {
                let line = MetricLine::new("ShopFailover")
                    .dimension("Region", region.as_str())
                    .metric("ConsecutiveFailures", counters.consecutive_failures as f64, Unit::Count)
                    .property("ActiveRegion", state.active_region.as_str());
                (self.metrics)(&line);
            }
        }
        let mut summary = MetricLine::new("ShopFailover").dimension("Function", "health-monitor");
        summary = match decision {
            Some(Decision::Switch(switch)) => summary
                .metric("ActiveRegionSwitches", 1.0, Unit::Count)
                .property("SwitchKind", serde_json::to_value(switch.kind).unwrap_or_default()),
            Some(Decision::BothUnhealthy) => summary.metric("ActiveRegionSwitches", 0.0, Unit::Count).metric(
                "BothRegionsUnhealthy",
                1.0,
                Unit::Count,
            ),
            Some(Decision::NoUsableRegion { .. }) => summary
                .metric("ActiveRegionSwitches", 0.0, Unit::Count)
                .metric("BothRegionsUnhealthy", 1.0, Unit::Count)
                .property("Critical", "failover region failed; failback not allowed yet"),
            _ => summary.metric("ActiveRegionSwitches", 0.0, Unit::Count),
        };
        (self.metrics)(&summary);
    }
}
