//! One monitor run as a script of named steps: check both regions, emit their verdicts,
//! load the durable state, read the failback approval, decide, save, publish the active
//! region when it changed, report. The steps that talk to AWS beyond that are in `steps.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use failover_core::emf::MetricLine;
use failover_core::parameters::{ParameterWriter, TimedParameterReader};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{error, info};

use crate::config::MonitorConfig;
use crate::domain::{decide, CheckResult, HealthState};
use crate::error::MonitorError;
use crate::event::MonitorEvent;
use crate::ports::{HealthStateStore, HeartbeatProbe};
use crate::report::{check_metric_lines, primary_active_line, run_metric_lines, MonitorReport};

/// Where metric lines go: stdout (for Lambda's log agent) unless replaced.
pub type MetricSink = Arc<dyn Fn(&MetricLine) + Send + Sync>;

/// The health-monitor handler, generic over its AWS dependencies.
pub struct Monitor<H, S, P> {
    pub(crate) config: MonitorConfig,
    pub(crate) probe: H,
    pub(crate) store: S,
    pub(crate) parameters: P,
    metrics: MetricSink,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl<H, S, P> Monitor<H, S, P>
where
    H: HeartbeatProbe,
    S: HealthStateStore,
    P: TimedParameterReader + ParameterWriter,
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

    /// The Lambda entry point: [`Self::run`] plus the summary log line.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Value>) -> Result<Value, MonitorError> {
        match self.run(event.payload).await {
            Ok(report) => {
                info!(report = %serde_json::to_value(&report).unwrap_or_default(), "health-monitor run");
                Ok(serde_json::to_value(report).unwrap_or_default())
            }
            Err(err) => {
                error!(error = %err, error_type = err.class().as_str(), "health-monitor failed");
                self.emit(vec![MetricLine::invocation_error(crate::FUNCTION, err.class())]);
                Err(err)
            }
        }
    }

    /// One run.
    pub async fn run(&self, payload: Value) -> Result<MonitorReport, MonitorError> {
        let event = MonitorEvent::from_value(&payload)?;
        let (primary, secondary) = (&self.config.regions.primary, &self.config.regions.secondary);
        let (checks, replication_lag_ms) = self.check_regions().await;

        // Before anything can fail: the failover alarm treats a missing RegionHealthy
        // datapoint as breaching, so a state-table problem must not silence the checks.
        self.emit(check_metric_lines(&checks, &replication_lag_ms));
        // What DNS may follow: the published active region (the plan's), not endpoint health.
        let primary_active = self.primary_active().await;
        self.emit(primary_active_line(primary_active));

        let (state, version) = match self.store.load().await? {
            Some((state, version)) => (state, Some(version)),
            None => (HealthState::initial(primary, secondary), None),
        };
        let approved_by_parameter = self.approved_by_parameter(&state).await;
        let approved = approved_by_parameter || event == MonitorEvent::ApproveFailback;
        let thresholds = self.config.thresholds;
        let (mut next, decision) = decide(&state, primary, secondary, &checks, thresholds, approved, now_ms());
        let mut report = MonitorReport {
            decision: decision.clone(),
            active_region: next.active_region.to_string(),
            checks,
            replication_lag_ms,
            conflict: false,
            published: false,
            primary_active,
        };
        if !self.store.save(&next, version).await? {
            info!("another monitor run updated the health state first; this run changed nothing");
            report.conflict = true;
            report.active_region = state.active_region.to_string();
            self.emit(run_metric_lines(None, &state));
            return Ok(report);
        }
        // Only a run that saved has switched (or counted): metrics follow the saved state.
        self.emit(run_metric_lines(Some(&decision), &next));
        self.log_decision(&decision, &next);
        if !next.published {
            report.published = self
                .publish(&mut next, version, &decision, approved_by_parameter)
                .await?;
        }
        Ok(report)
    }

    /// Both regions' heartbeat checks (concurrently), and the age of each region's
    /// heartbeat copy in the other region where the table is replicated.
    async fn check_regions(&self) -> (Vec<CheckResult>, BTreeMap<String, u64>) {
        let (primary, secondary) = (&self.config.regions.primary, &self.config.regions.secondary);
        let (primary_check, secondary_check) = tokio::join!(self.probe.check(primary), self.probe.check(secondary));
        let mut replication_lag_ms = BTreeMap::new();
        for (source, replica) in [(primary, secondary), (secondary, primary)] {
            if let Some(lag) = self.probe.replication_lag_ms(source, replica).await {
                replication_lag_ms.insert(format!("{source}->{replica}"), lag);
            }
        }
        (vec![primary_check, secondary_check], replication_lag_ms)
    }

    fn emit(&self, lines: Vec<MetricLine>) {
        for line in &lines {
            (self.metrics)(line);
        }
    }
}
