//! One monitor run as a script of named steps: check both regions, emit their verdicts,
//! load the durable state, read the failback approval, decide, save, publish the active
//! region when it changed, report. The steps that talk to AWS beyond that are in `steps.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use failover_core::emf::MetricLine;
use failover_core::parameters::{ParameterWriter, TimedParameterReader};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{error, info};

use crate::config::{MonitorConfig, ObserverRole};
use crate::domain::{decide, CheckResult, Decision, Evidence, HealthState};
use crate::error::MonitorError;
use crate::event::MonitorEvent;
use crate::ports::{HealthStateStore, HeartbeatProbe};
use crate::report::{check_metric_lines, primary_active_line, quorum_metric_lines, run_metric_lines, MonitorReport};
use failover_core::evidence::Observation;

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

    /// The Lambda entry point: [`Self::run_invocation`] until the invocation's deadline,
    /// plus the summary log line.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Value>) -> Result<Value, MonitorError> {
        let remaining_ms = (event.context.deadline as i64 - now_ms()).max(0) as u64;
        let deadline = Instant::now() + Duration::from_millis(remaining_ms);
        match self.run_invocation(event.payload, deadline).await {
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

    /// One invocation: a scheduled one runs a round every `CHECK_INTERVAL_SECONDS` for
    /// `RUN_SECONDS` (sub-minute detection from a one-minute schedule), stopping early
    /// enough to finish before `deadline`; an approval runs one round. Returns the report
    /// of the round that switched, else of the last round; `rounds` counts them. A round
    /// that fails is logged and counted, and the next one runs; the invocation fails only
    /// when its last round failed.
    pub async fn run_invocation(&self, payload: Value, deadline: Instant) -> Result<MonitorReport, MonitorError> {
        let event = MonitorEvent::from_value(&payload)?;
        let started = Instant::now();
        let (interval, run_for) = (self.config.check_interval, self.config.run_for);
        let mut rounds = 0u32;
        let mut kept: Option<MonitorReport> = None;
        let mut last_error: Option<MonitorError>;
        loop {
            // Boxed: the round is a deep future; inline in the loop it overflows the
            // compiler's layout depth in the binary's async main.
            let result = Box::pin(self.round(event)).await;
            rounds += 1;
            match result {
                Ok(report) => {
                    last_error = None;
                    let kept_a_switch = kept.as_ref().is_some_and(|k| matches!(k.decision, Decision::Switch(_)));
                    if matches!(report.decision, Decision::Switch(_)) || !kept_a_switch {
                        kept = Some(report);
                    }
                }
                Err(err) if event == MonitorEvent::Scheduled => last_error = Some(err),
                Err(err) => return Err(err),
            }
            let next = started + interval * rounds;
            // The next round must start within RUN_SECONDS and end (a check timeout and
            // the state writes) before the invocation's deadline.
            let round_budget = self.config.check_timeout + Duration::from_secs(2);
            if event != MonitorEvent::Scheduled || next - started > run_for || next + round_budget > deadline {
                break;
            }
            // A failed round that is not the last: reported here (the last one is the
            // invocation's error, reported by the entry point).
            if let Some(err) = &last_error {
                error!(error = %err, round = rounds, "health-monitor round failed; the next round runs");
                self.emit(vec![MetricLine::invocation_error(crate::FUNCTION, err.class())]);
            }
            tokio::time::sleep_until(next.into()).await;
        }
        if let Some(err) = last_error {
            return Err(err);
        }
        let mut report = kept.expect("the last round succeeded, so a report is kept");
        report.rounds = rounds;
        Ok(report)
    }

    /// One round of checks, as the payload asks (no loop).
    pub async fn run(&self, payload: Value) -> Result<MonitorReport, MonitorError> {
        let event = MonitorEvent::from_value(&payload)?;
        self.round(event).await
    }

    async fn round(&self, event: MonitorEvent) -> Result<MonitorReport, MonitorError> {
        let witness = match &self.config.role {
            ObserverRole::Witness => return self.witness_round().await,
            ObserverRole::Decider { witness } => witness.clone(),
        };
        let (primary, secondary) = (&self.config.regions.primary, &self.config.regions.secondary);
        let (checks, replication_lag_ms) = self.check_regions().await;

        // Before anything can fail: the checks are the evidence, and a state-table problem
        // must not silence them.
        self.emit(check_metric_lines(&checks, &replication_lag_ms, &self.config.observer));
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
        let witness_view = match &witness {
            Some(region) => self.witness_observation(region).await,
            None => None,
        };
        let evidence = Evidence {
            witness: witness_view.as_ref(),
            rule: self.config.quorum_rule(),
        };
        let (mut next, decision, verdict) = decide(
            &state,
            primary,
            secondary,
            &checks,
            thresholds,
            evidence,
            approved,
            now_ms(),
        );
        self.emit(quorum_metric_lines(&verdict));
        let mut report = MonitorReport {
            observer: self.config.observer.to_string(),
            rounds: 1,
            quorum: Some(verdict),
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

    /// The witness's round: check both regions, count the results into its observation
    /// (beside the health state), save it for the decider. It decides nothing.
    async fn witness_round(&self) -> Result<MonitorReport, MonitorError> {
        let (checks, replication_lag_ms) = self.check_regions().await;
        let observer = &self.config.observer;
        self.emit(check_metric_lines(&checks, &replication_lag_ms, observer));
        let (mut observation, version) = match self.store.load_observation(observer).await? {
            Some((observation, version)) => (observation, Some(version)),
            None => (Observation::default(), None),
        };
        let at = now_ms();
        for check in &checks {
            observation.record(&check.region, check.outcome, at);
        }
        let saved = self.store.save_observation(observer, &observation, version).await?;
        if !saved {
            info!("another witness run saved its observation first; this round's checks are not counted");
        }
        Ok(MonitorReport {
            observer: observer.to_string(),
            rounds: 1,
            quorum: None,
            decision: Decision::Stay,
            active_region: String::new(),
            checks,
            replication_lag_ms,
            conflict: !saved,
            published: false,
            primary_active: None,
        })
    }

    /// The witness's last observation; unreadable is "no witness evidence" (the quorum
    /// then refuses to fail over), never a failed round.
    async fn witness_observation(&self, witness: &failover_core::Region) -> Option<Observation> {
        match self.store.load_observation(witness).await {
            Ok(found) => found.map(|(observation, _)| observation),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the witness's observation; no failover without it");
                None
            }
        }
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
