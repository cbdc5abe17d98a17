//! The dry run: every read-only check of the real run (the same [`Promoter::assess`]
//! decision and the fence's decisions), no lock, no promotion, no parameter write; the report lists what would happen.

use failover_core::alarm::AlarmTransition;
use failover_core::parameters::{ParameterWriter, TimedParameterReader};

use crate::domain::{PromotionStep, SplitBrainVerdict};
use crate::error::PromoterError;
use crate::handler::Promoter;
use crate::ports::{DbInstances, EvidenceStore, FailoverLockStore, FenceStore, ReplicationMappings};
use crate::report::{PromotionAction, PromotionReport};

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore + FenceStore + EvidenceStore,
    P: ParameterWriter + TimedParameterReader,
    M: ReplicationMappings,
{
    /// Runs the checks and describes the plan.
    pub(crate) async fn dry_run(&self, transition: &AlarmTransition) -> Result<PromotionReport, PromoterError> {
        let failover_id = transition.failover_id();
        let replica = &self.config.replica.id;
        let mut report = PromotionReport::new(PromotionAction::DryRun, &transition.alarm_name);
        report.failover_id = Some(failover_id.clone());
        report.replica = Some(replica.clone());
        report.active_region = Some(self.config.replica.region.to_string());
        if let Some(existing) = self.lock.load(&failover_id).await? {
            report.stage = Some(existing.stage);
            report.plan.push(format!(
                "failover already recorded at stage {}",
                existing.stage.as_str()
            ));
        }
        let (_, step) = self.assess(transition).await?;
        match step {
            PromotionStep::PublishOnly => report
                .plan
                .push(format!("{replica} is no longer a read replica: would not promote")),
            PromotionStep::WaitForReplica { status } => {
                report.plan.push(format!(
                    "{replica} is {status}: would fail with a retryable error and try again later"
                ));
                return Ok(report);
            }
            PromotionStep::Refuse { source, verdict } | PromotionStep::LookAgain { source, verdict } => {
                let would = if matches!(verdict, SplitBrainVerdict::Refuse { .. }) {
                    "would refuse"
                } else {
                    "would fail with a retryable error and look again"
                };
                report.plan.push(format!("{would}: {}", verdict.reason()));
                report.former_source = Some(source);
                report.split_brain = Some(verdict);
                return Ok(report);
            }
            PromotionStep::Promote { source, verdict } => {
                let rpo = self.rpo_estimate().await;
                report.plan.push(format!(
                    "would call PromoteReadReplica {replica} (BackupRetentionPeriod={}) in {}; {}",
                    self.config.backup_retention_days, self.config.replica.region, rpo.meaning
                ));
                report.rpo_estimate = Some(rpo);
                report.former_source = Some(source);
                report.split_brain = Some(verdict);
            }
        }
        report.plan.push(format!(
            "would wait up to {}s for {replica} to be writable",
            self.config.max_wait.as_secs()
        ));
        let fence_plan = self.fence_plan(report.former_source.as_deref()).await;
        report.plan.extend(fence_plan);
        let names = &self.config.parameters;
        report.plan.push(format!(
            "would publish {}, {} and {} = {}",
            names.db_host(),
            names.db_port(),
            names.active_region(),
            self.config.replica.region
        ));
        Ok(report)
    }
}
