//! The promotion flow as a script of named steps: parse the alarm, apply the policy, take
//! (or resume) the failover lock, run the stages (promote once, wait until writable,
//! publish), release the lease, report. Taking the lock lives in `lock.rs`, each stage in
//! `stages.rs`.

use std::time::Instant;

use failover_core::alarm::{AlarmTransition, Verdict};
use failover_core::emf::MetricLine;
use failover_core::parameters::ParameterWriter;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::PromoterConfig;
use crate::domain::{LockRecord, SplitBrainVerdict, Stage};
use crate::error::PromoterError;
use crate::invocation::Invocation;
use crate::lock::LockStart;
use crate::ports::{DbInstances, FailoverLockStore};
use crate::report::{PromotionAction, PromotionReport};

/// The rds-promoter handler, generic over its AWS dependencies.
pub struct Promoter<R, S, L, P> {
    pub(crate) config: PromoterConfig,
    pub(crate) replica_side: R,
    pub(crate) source_side: S,
    pub(crate) lock: L,
    pub(crate) parameters: P,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl<R, S, L, P> Promoter<R, S, L, P>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore,
    P: ParameterWriter,
{
    /// Wires the handler: `replica_side` talks to the replica's region, `source_side` to
    /// the primary region (with short timeouts), `lock` to the state table.
    pub fn new(config: PromoterConfig, replica_side: R, source_side: S, lock: L, parameters: P) -> Self {
        Self {
            config,
            replica_side,
            source_side,
            lock,
            parameters,
        }
    }

    /// The Lambda entry point: [`Self::handle`], plus the summary log line, EMF metrics,
    /// and the JSON report.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Value>) -> Result<Value, PromoterError> {
        let invocation = Invocation::from_context(&event.context);
        match self.handle(event.payload, &invocation).await {
            Ok(report) => {
                let json = serde_json::to_value(&report).unwrap_or_default();
                info!(report = %json, "rds-promoter finished");
                report.metric_line().emit();
                Ok(json)
            }
            Err(err) => {
                error!(error = %err, error_type = err.class().as_str(), "rds-promoter failed");
                MetricLine::invocation_error(crate::FUNCTION, err.class()).emit();
                Err(err)
            }
        }
    }

    /// Handles one event (EventBridge alarm state change or direct alarm-action payload).
    pub async fn handle(&self, payload: Value, invocation: &Invocation) -> Result<PromotionReport, PromoterError> {
        let started = Instant::now();
        let transition =
            AlarmTransition::from_value(payload).map_err(|e| PromoterError::InvalidEvent(e.to_string()))?;
        if let Verdict::Ignored { reason } = self.config.policy.evaluate(&transition) {
            info!(alarm = %transition.alarm_name, %reason, "transition ignored");
            let mut report = PromotionReport::new(PromotionAction::Ignored, &transition.alarm_name);
            report.ignored_because = Some(reason);
            return Ok(report);
        }
        let mut report = if self.config.dry_run {
            self.dry_run(&transition).await?
        } else {
            self.fail_over(&transition, invocation).await?
        };
        report.timings.invocation_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Takes (or resumes) the lock, runs the remaining stages, and always releases the lease.
    async fn fail_over(
        &self,
        transition: &AlarmTransition,
        invocation: &Invocation,
    ) -> Result<PromotionReport, PromoterError> {
        let (mut record, start) = self.take_lock(transition, invocation).await?;
        if start == LockStart::Finished {
            return Ok(self.report(transition, &record, PromotionAction::AlreadyComplete, None));
        }
        let resumed = start == LockStart::Resumed;
        let result = self.run_stages(transition, &mut record, invocation, resumed).await;
        record.lease_until_ms = 0;
        if let Err(e) = self.lock.save(&record).await {
            warn!(failover_id = %record.failover_id, error = %e, "could not release the lock lease; it lapses at the invocation deadline");
        }
        result
    }

    /// Advances the record stage by stage until published.
    async fn run_stages(
        &self,
        transition: &AlarmTransition,
        record: &mut LockRecord,
        invocation: &Invocation,
        resumed: bool,
    ) -> Result<PromotionReport, PromoterError> {
        let mut action = if resumed {
            PromotionAction::Resumed
        } else {
            PromotionAction::Promoted
        };
        let mut split_brain = None;
        // Bounded: each pass moves the stage forward or returns.
        for _ in 0..4 {
            match record.stage {
                Stage::Requested => {
                    let (next_action, verdict) = self.promote_once(transition, record).await?;
                    action = if resumed { PromotionAction::Resumed } else { next_action };
                    split_brain = verdict;
                }
                Stage::Promoting => self.await_writable(record, invocation.deadline).await?,
                Stage::Writable => self.publish(record).await?,
                Stage::Published => break,
            }
            self.save(record).await?;
        }
        Ok(self.report(transition, record, action, split_brain))
    }

    fn report(
        &self,
        transition: &AlarmTransition,
        record: &LockRecord,
        action: PromotionAction,
        split_brain: Option<SplitBrainVerdict>,
    ) -> PromotionReport {
        let region = self.config.replica.region.as_str();
        PromotionReport::for_record(
            &transition.alarm_name,
            record,
            action,
            split_brain,
            &self.config.parameters,
            region,
        )
    }
}
