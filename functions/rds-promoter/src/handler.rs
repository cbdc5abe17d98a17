//! The promotion flow as a script of named steps: parse the request, apply the policy, take
//! (or resume) the failover lock, run the stages (promote once, wait until writable,
//! publish) as far as the request asks, release the lease, report. Taking the lock lives in
//! `lock.rs`, each stage in `stages.rs`, the fence and its sweep in `fence.rs`, the plan's
//! closing report in `plan_report.rs`.

use std::time::Instant;

use failover_core::alarm::{AlarmState, AlarmTransition, IgnoreReason, Verdict};
use failover_core::emf::MetricLine;
use failover_core::parameters::{ParameterWriter, TimedParameterReader};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{error, info};

use crate::adapters::MemoryHistory;
use crate::config::PromoterConfig;
use crate::domain::{LockRecord, SplitBrainVerdict, Stage};
use crate::error::PromoterError;
use crate::invocation::Invocation;
use crate::lock::LockStart;
use crate::ports::{
    DbInstances, EvidenceStore, ExecutionHistory, FailbackStore, FailoverLockStore, FenceStore, ReplicationMappings,
};
use crate::report::{PromotionAction, PromotionReport};
use crate::request::Request;
use crate::stages::Goal;

/// The rds-promoter handler, generic over its AWS dependencies.
pub struct Promoter<R, S, L, P, M, H = MemoryHistory> {
    pub(crate) config: PromoterConfig,
    pub(crate) replica_side: R,
    pub(crate) source_side: S,
    pub(crate) lock: L,
    pub(crate) parameters: P,
    pub(crate) mappings: M,
    pub(crate) history: H,
    /// The reverse replicator's mappings (failover region), which failback turns on and off.
    pub(crate) reverse_mappings: Option<M>,
}

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore + FenceStore + EvidenceStore + FailbackStore,
    P: ParameterWriter + TimedParameterReader,
    M: ReplicationMappings,
{
    /// The Lambda entry point: [`Self::handle`], plus the summary log line, EMF metrics,
    /// and the JSON report.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Value>) -> Result<Value, PromoterError>
    where
        H: ExecutionHistory,
    {
        let invocation = Invocation::from_context(&event.context);
        let result = match Request::from_value(event.payload).map_err(PromoterError::InvalidEvent) {
            Ok(Request::FailbackReport { execution_arn, plan }) => {
                return Box::pin(self.report_failback(&execution_arn, &plan)).await
            }
            Ok(Request::Report { execution_arn, plan }) => {
                return Box::pin(self.report_plan(&execution_arn, plan)).await
            }
            Ok(Request::Failback { step, execution_arn }) => Box::pin(self.failback(step, &execution_arn))
                .await
                .inspect(|report| info!(%report, "rds-promoter failback step finished")),
            Ok(request) => self.handle_request(request, &invocation).await.map(|report| {
                let json = serde_json::to_value(&report).unwrap_or_default();
                info!(report = %json, "rds-promoter finished");
                report.metric_line().emit();
                json
            }),
            Err(err) => Err(err),
        };
        if let Err(err) = &result {
            error!(error = %err, error_type = err.class().as_str(), "rds-promoter failed");
            MetricLine::invocation_error(crate::FUNCTION, err.class()).emit();
        }
        result
    }

    /// Handles one event: an alarm (EventBridge state change or alarm-action payload), a
    /// step of the region-switch plan, or the scheduled fence sweep.
    pub async fn handle(&self, payload: Value, invocation: &Invocation) -> Result<PromotionReport, PromoterError> {
        let request = Request::from_value(payload).map_err(PromoterError::InvalidEvent)?;
        self.handle_request(request, invocation).await
    }

    /// The parsed request, as far as it asks (the plan report is [`Self::report_plan`]).
    async fn handle_request(
        &self,
        request: Request,
        invocation: &Invocation,
    ) -> Result<PromotionReport, PromoterError> {
        let started = Instant::now();
        // A plan's steps hold the failover lock as their execution, not as one invocation.
        let invocation = &request
            .plan_execution()
            .map_or_else(|| invocation.clone(), |arn| invocation.owned_by(arn));
        let (alarm, goal, dry_run) = match request {
            Request::SweepFences => return Box::pin(self.sweep_fences()).await,
            Request::Failback { .. } => {
                return Err(PromoterError::InvalidEvent(
                    "a failbackStep answers with its own report: call failback".into(),
                ))
            }
            Request::Report { .. } | Request::FailbackReport { .. } => {
                return Err(PromoterError::InvalidEvent(
                    "planStep \"report\" answers with the plan report, not a promotion report: call report_plan".into(),
                ))
            }
            Request::Failover(alarm) => (alarm, Goal::Everything, self.config.dry_run),
            Request::Step {
                step, alarm, dry_run, ..
            } => (alarm, Goal::from(step), dry_run || self.config.dry_run),
        };
        let transition = AlarmTransition::from_value(alarm).map_err(|e| PromoterError::InvalidEvent(e.to_string()))?;
        // An alarm of health-monitor's that came from INSUFFICIENT_DATA (created or replaced
        // during an outage) is not dropped: the evidence gate decides it from the monitors'
        // observations, which require the primary to have been seen healthy before.
        let verdict = match self.config.policy.evaluate(&transition) {
            Verdict::Ignored {
                reason:
                    IgnoreReason::NotHealthyBefore {
                        state: AlarmState::InsufficientData,
                    },
            } if self.config.needs_quorum(&transition.alarm_name) => Verdict::Act,
            verdict => verdict,
        };
        if let Verdict::Ignored { reason } = verdict {
            info!(alarm = %transition.alarm_name, %reason, "transition ignored");
            let mut report = PromotionReport::new(PromotionAction::Ignored, &transition.alarm_name);
            report.ignored_because = Some(reason);
            return Ok(report);
        }
        // Boxed: each branch is a deep future, and nested inline they overflow the
        // compiler's layout depth in the binary's async main.
        let mut report = match (dry_run, goal) {
            (true, _) => Box::pin(self.dry_run(&transition)).await?,
            (false, Goal::Fenced) => Box::pin(self.fence(&transition)).await?,
            (false, goal) => Box::pin(self.fail_over(&transition, invocation, goal)).await?,
        };
        report.timings.invocation_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Takes (or resumes) the lock, runs the remaining stages, and always releases the lease.
    async fn fail_over(
        &self,
        transition: &AlarmTransition,
        invocation: &Invocation,
        goal: Goal,
    ) -> Result<PromotionReport, PromoterError> {
        let (mut record, start) = self.take_lock(transition, invocation).await?;
        if start == LockStart::Finished {
            return Ok(self.report(transition, &record, PromotionAction::AlreadyComplete, None));
        }
        let resumed = start == LockStart::Resumed;
        let result = self
            .run_stages(transition, &mut record, invocation, resumed, goal)
            .await;
        self.release_lease(&mut record).await;
        result
    }

    /// Advances the record stage by stage, as far as `goal`.
    async fn run_stages(
        &self,
        transition: &AlarmTransition,
        record: &mut LockRecord,
        invocation: &Invocation,
        resumed: bool,
        goal: Goal,
    ) -> Result<PromotionReport, PromoterError> {
        if let Some(refusal) = goal.out_of_order(record) {
            return Err(refusal);
        }
        let mut action = if resumed {
            PromotionAction::Resumed
        } else {
            PromotionAction::Promoted
        };
        let mut split_brain = None;
        // Bounded: each pass moves the stage forward or stops.
        for _ in 0..4 {
            if goal.reached(record.stage) {
                break;
            }
            match record.stage {
                Stage::Requested => {
                    // This invocation decides and promotes, even when it took the lock over
                    // from an attempt that stopped before promoting: it reports what it did.
                    let (next_action, verdict) = self.promote_once(transition, record).await?;
                    action = next_action;
                    split_brain = verdict;
                }
                Stage::Promoting if goal == Goal::CheckedWritable => {
                    if !self.check_writable(record).await? {
                        break;
                    }
                }
                Stage::Promoting => self.await_writable(record, invocation.deadline).await?,
                Stage::Writable => self.publish(record).await?,
                Stage::Published => break,
            }
            self.save(record).await?;
        }
        Ok(self.report(transition, record, action, split_brain))
    }
}

/// Building a report needs no port, so fence sweeps and dry runs share it.
impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H> {
    pub(crate) fn report(
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
