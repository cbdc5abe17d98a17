//! Step "fence" of the region-switch plan, and the scheduled sweep that completes pending
//! fences: the old primary database is stopped or renamed (`FENCE_DATABASE`) and the
//! forward replicator's event source mappings are disabled, each where the primary region
//! answers; what it does not answer stays pending in the failover's fence record.

use failover_core::alarm::AlarmTransition;
use failover_core::parameters::{ParameterWriter, TimedParameterReader};
use tracing::{info, warn};

use crate::domain::{
    database_fence_step, replication_fence_step, DatabaseFenceStep, FenceMode, FenceOutcome, FenceRecord,
    ReplicationFenceStep, SourceProbe, Stage,
};
use crate::error::PromoterError;
use crate::handler::Promoter;
use crate::invocation::now_ms;
use crate::ports::{DbInstances, EvidenceStore, FailoverLockStore, FenceStore, ReplicationMappings};
use crate::report::{PromotionAction, PromotionReport};
use crate::stages::split_source;

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore + FenceStore + EvidenceStore,
    P: ParameterWriter + TimedParameterReader,
    M: ReplicationMappings,
{
    /// Fences the old writers of this failover once its replica is writable (RDS refuses to
    /// stop an instance that still has a read replica) and records what is still pending.
    pub(crate) async fn fence(&self, transition: &AlarmTransition) -> Result<PromotionReport, PromoterError> {
        let failover_id = transition.failover_id();
        let lock = self
            .lock
            .load(&failover_id)
            .await?
            .ok_or_else(|| PromoterError::NothingToFence {
                failover_id: failover_id.clone(),
            })?;
        if lock.stage < Stage::Writable {
            return Err(PromoterError::StepOutOfOrder {
                failover_id,
                stage: lock.stage,
                needs: Stage::Writable,
            });
        }
        let mut fence = match self.lock.load_fence(&failover_id).await? {
            Some(fence) => fence,
            None => FenceRecord::new(&failover_id, lock.former_source.clone()),
        };
        self.fence_once(&mut fence).await;
        self.lock.save_fence(&fence).await?;
        let action = if fence.is_pending() {
            warn!(%failover_id, database = ?fence.database, replication = ?fence.replication, "fence pending: the sweep completes it when the primary region answers");
            PromotionAction::FencePending
        } else {
            PromotionAction::Fenced
        };
        let mut report = self.report(transition, &lock, action, None);
        report.fence = Some(fence);
        Ok(report)
    }

    /// The schedule's run: every recorded fence is looked at again, so a pending one
    /// completes once the primary region answers and a done one stays fenced.
    pub(crate) async fn sweep_fences(&self) -> Result<PromotionReport, PromoterError> {
        let mut report = PromotionReport::new(PromotionAction::SweptFences, "schedule");
        for mut fence in self.lock.fences().await? {
            let was_pending = fence.is_pending();
            self.fence_once(&mut fence).await;
            self.lock.save_fence(&fence).await?;
            if was_pending && !fence.is_pending() {
                info!(failover_id = %fence.failover_id, "pending fence completed");
            }
            report.fences.push(fence);
        }
        Ok(report)
    }

    /// One look at each part of the fence, acting where a part can be fenced now.
    async fn fence_once(&self, fence: &mut FenceRecord) {
        let now = now_ms();
        let database = self.fence_database(fence.former_source.as_deref()).await;
        let replication = self.pause_replication().await;
        fence.database = fence.database.after(database, now);
        fence.replication = fence.replication.after(replication, now);
        fence.updated_at_ms = now;
    }

    async fn fence_database(&self, former_source: Option<&str>) -> FenceOutcome {
        let Some(source) = former_source else {
            return FenceOutcome::Off {
                reason: "the replica had no source when this failover began (promoted before it): nothing to fence"
                    .into(),
            };
        };
        let (id, step) = self.database_decision(source).await;
        let refused = |operation: &str, failure: failover_core::AwsFailure| FenceOutcome::NotYet {
            reason: format!("{operation} {id} failed: {failure}"),
        };
        match step {
            DatabaseFenceStep::Known(outcome) => outcome,
            DatabaseFenceStep::Stop => match self.source_side.stop(id).await {
                Ok(()) => FenceOutcome::Fenced {
                    how: format!("StopDBInstance {id} accepted (it was available)"),
                },
                Err(failure) => refused("StopDBInstance", failure),
            },
            DatabaseFenceStep::Rename { to } => match self.source_side.rename(id, &to).await {
                Ok(()) => FenceOutcome::Fenced {
                    how: format!("renamed {id} to {to}: the old endpoint name no longer resolves"),
                },
                Err(failure) => refused("ModifyDBInstance", failure),
            },
        }
    }

    async fn pause_replication(&self) -> FenceOutcome {
        let function = self.config.forward_replicator.as_deref();
        match self.replication_decision().await {
            ReplicationFenceStep::Known(outcome) => outcome,
            ReplicationFenceStep::Disable(uuids) => {
                for uuid in &uuids {
                    if let Err(failure) = self.mappings.disable(uuid).await {
                        return FenceOutcome::NotYet {
                            reason: format!("UpdateEventSourceMapping {uuid} (Enabled=false) failed: {failure}"),
                        };
                    }
                }
                FenceOutcome::Fenced {
                    how: format!(
                        "disabled {} event source mapping(s) of {}: their records stay in the stream",
                        uuids.len(),
                        function.unwrap_or_default()
                    ),
                }
            }
        }
    }

    /// The look at the old primary and what to do about it: the fence acts on the answer,
    /// the dry run describes it.
    async fn database_decision<'a>(&self, source: &'a str) -> (&'a str, DatabaseFenceStep) {
        let (id, _) = split_source(source);
        let probe = if self.config.fence_mode == FenceMode::None {
            SourceProbe::Skipped
        } else {
            self.look_at_source(source).await
        };
        (id, database_fence_step(self.config.fence_mode, id, &probe))
    }

    /// The forward replicator's mappings in the primary region (none when not configured)
    /// and what to do about them: the fence acts on the answer, the dry run describes it.
    async fn replication_decision(&self) -> ReplicationFenceStep {
        let function = self.config.forward_replicator.as_deref();
        let listed = match function {
            Some(function) => self.mappings.list(function).await.map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        };
        replication_fence_step(function, listed.as_deref().map_err(String::as_str))
    }

    /// The dry run's account of the fence: the same decisions, read-only.
    pub(crate) async fn fence_plan(&self, former_source: Option<&str>) -> Vec<String> {
        let mut plan = Vec::new();
        match former_source {
            None => plan.push("would fence no database: the replica names no source".to_owned()),
            Some(source) => {
                let (id, step) = self.database_decision(source).await;
                plan.push(match step {
                    DatabaseFenceStep::Stop => format!(
                        "would fence the old primary: StopDBInstance {id} in {}",
                        self.config.source_region
                    ),
                    DatabaseFenceStep::Rename { to } => format!(
                        "would fence the old primary: rename {id} to {to} in {}",
                        self.config.source_region
                    ),
                    DatabaseFenceStep::Known(outcome) => format!("database fence: {}", describe(&outcome)),
                });
            }
        }
        let function = self.config.forward_replicator.as_deref();
        plan.push(match self.replication_decision().await {
            ReplicationFenceStep::Disable(uuids) => format!(
                "would pause forward replication: disable event source mapping(s) {} of {} in {}",
                uuids.join(", "),
                function.unwrap_or_default(),
                self.config.source_region
            ),
            ReplicationFenceStep::Known(outcome) => format!("replication fence: {}", describe(&outcome)),
        });
        plan
    }
}

fn describe(outcome: &FenceOutcome) -> String {
    match outcome {
        FenceOutcome::Fenced { how } => format!("already fenced ({how})"),
        FenceOutcome::NotYet { reason } => format!("would stay pending ({reason})"),
        FenceOutcome::Off { reason } => format!("not configured ({reason})"),
    }
}
