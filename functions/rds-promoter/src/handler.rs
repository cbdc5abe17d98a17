//! The promotion flow as a script of named steps: parse the request, apply the policy, take
//! (or resume) the failover lock, run the stages (promote once, wait until writable,
//! publish) as far as the request asks, release the lease, report. Taking the lock lives in
//! `lock.rs`, each stage in `stages.rs`, the fence and its sweep in `fence.rs`, the plan's
//! closing report in `plan_report.rs`.

use std::time::Instant;

use failover_core::alarm::{AlarmTransition, Verdict};
use failover_core::emf::MetricLine;
use failover_core::parameters::ParameterWriter;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::adapters::MemoryHistory;
use crate::config::PromoterConfig;
use crate::domain::{LockRecord, SplitBrainVerdict, Stage};
use crate::error::PromoterError;
use crate::invocation::Invocation;
use crate::lock::LockStart;
use crate::ports::{DbInstances, ExecutionHistory, FailoverLockStore, FenceStore, ReplicationMappings};
use crate::report::{PromotionAction, PromotionReport};
use crate::request::{PlanStep, Request};
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
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl<R, S, L, P, M> Promoter<R, S, L, P, M> {
    /// Wires the handler: `replica_side` talks to the replica's region, `source_side` and
    /// `mappings` to the primary region (with short timeouts), `lock` to the state table.
    /// Plan reports read an in-memory history until [`Promoter::with_history`] wires one.
    pub fn new(config: PromoterConfig, replica_side: R, source_side: S, lock: L, parameters: P, mappings: M) -> Self {
        Self {
            config,
            replica_side,
            source_side,
            lock,
            parameters,
            mappings,
            history: MemoryHistory::default(),
        }
    }
}

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H> {
    /// The same handler, reading plan execution histories from `history`.
    pub fn with_history<H2: ExecutionHistory>(self, history: H2) -> Promoter<R, S, L, P, M, H2> {
        Promoter {
            config: self.config,
            replica_side: self.replica_side,
            source_side: self.source_side,
            lock: self.lock,
            parameters: self.parameters,
            mappings: self.mappings,
            history,
        }
    }

    /// The execution history the plan reports read (e.g. to record one in tests).
    pub fn history(&self) -> &H {
        &self.history
    }
}

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore + FenceStore,
    P: ParameterWriter,
    M: ReplicationMappings,
{
    /// The Lambda entry point: [`Self::handle`], plus the summary log line, EMF metrics,
    /// and the JSON report.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Value>) -> Result<Value, PromoterError>
    where
        H: ExecutionHistory,
    {
        let invocation = Invocation::from_context(&event.context);
        if let Ok(Request::Report { execution_arn, plan }) = Request::from_value(event.payload.clone()) {
            return Box::pin(self.report_plan(&execution_arn, plan)).await;
        }
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

    /// Handles one event: an alarm (EventBridge state change or alarm-action payload), a
    /// step of the region-switch plan, or the scheduled fence sweep.
    pub async fn handle(&self, payload: Value, invocation: &Invocation) -> Result<PromotionReport, PromoterError> {
        let started = Instant::now();
        let (alarm, goal, dry_run) = match Request::from_value(payload).map_err(PromoterError::InvalidEvent)? {
            Request::SweepFences => return Box::pin(self.sweep_fences()).await,
            Request::Report { .. } => {
                return Err(PromoterError::InvalidEvent(
                    "planStep \"report\" answers with the plan report, not a promotion report: call report_plan".into(),
                ))
            }
            Request::Failover(alarm) => (alarm, Goal::Everything, self.config.dry_run),
            Request::Step { step, alarm, dry_run } => {
                let goal = match step {
                    PlanStep::Promote => Goal::Promoted,
                    PlanStep::CheckWritable => Goal::CheckedWritable,
                    PlanStep::Publish => Goal::Published,
                    PlanStep::Fence => Goal::Fenced,
                };
                (alarm, goal, dry_run || self.config.dry_run)
            }
        };
        let transition = AlarmTransition::from_value(alarm).map_err(|e| PromoterError::InvalidEvent(e.to_string()))?;
        if let Verdict::Ignored { reason } = self.config.policy.evaluate(&transition) {
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
        record.lease_until_ms = 0;
        if let Err(e) = self.lock.save(&record).await {
            warn!(failover_id = %record.failover_id, error = %e, "could not release the lock lease; it lapses at the invocation deadline");
        }
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
