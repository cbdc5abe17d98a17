//! The rewrite flow as a script of named steps: parse the trigger, resolve the target,
//! discover the servers, plan one command per batch, send (unless a dry run), collect each
//! server's result, report. The steps that talk to AWS live in `resolve.rs` and `fleet.rs`.

use failover_core::emf::MetricLine;
use failover_core::parameters::ParameterReader;
use failover_core::retry::Deadline;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{error, info};

use crate::config::RewriterConfig;
use crate::domain::{batch_commands, InstanceResult, RewriteTrigger};
use crate::error::RewriterError;
use crate::fleets::Fleet;
use crate::plan::assign_profiles;
use crate::ports::{CommandRunner, InstanceFinder, NodeDirectory};
use crate::report::{RewriteReport, RewriteStatus};
use crate::resolve::Resolution;

/// The env-rewriter handler, generic over its AWS dependencies.
pub struct Rewriter<F, N, C, P> {
    pub(crate) config: RewriterConfig,
    pub(crate) home: Fleet<F, N, C>,
    pub(crate) fence: Option<Fleet<F, N, C>>,
    pub(crate) parameters: P,
}

impl<F, N, C, P> Rewriter<F, N, C, P>
where
    F: InstanceFinder,
    N: NodeDirectory,
    C: CommandRunner,
    P: ParameterReader,
{
    /// Wires the handler to its ports (the fleet of APP_REGION; `parameters` reads where
    /// rds-promoter and health-monitor publish). [`Self::with_fence_fleet`] adds the other.
    pub fn new(config: RewriterConfig, finder: F, nodes: N, commands: C, parameters: P) -> Self {
        let home = Fleet::new(config.app_region.clone(), finder, nodes, commands);
        Self {
            config,
            home,
            fence: None,
            parameters,
        }
    }

    /// APP_REGION's command runner (e.g. to inspect a recording runner in tests).
    pub fn commands(&self) -> &C {
        &self.home.commands
    }

    /// The Lambda entry point: [`Self::handle`], plus the summary log line and EMF metrics.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Value>) -> Result<Value, RewriterError> {
        let deadline = Deadline::for_invocation(&event.context);
        let result = self.handle(event.payload, deadline).await;
        match &result {
            Ok(report) => {
                info!(report = %serde_json::to_value(report).unwrap_or_default(), "env-rewriter finished");
                report.metric_line().emit();
            }
            Err(err) => {
                error!(error = %err, error_type = err.class().as_str(), "env-rewriter failed");
                MetricLine::invocation_error(crate::FUNCTION, err.class()).emit();
            }
        }
        result.map(|report| serde_json::to_value(report).unwrap_or_default())
    }

    /// Handles one event. A partial failure is a retryable error whose message names each
    /// server that was not repointed (failed, or could not be commanded); the full report is
    /// logged. With `reportPartial` the report of status `partial` is the answer instead.
    pub async fn handle(&self, payload: Value, deadline: Deadline) -> Result<RewriteReport, RewriterError> {
        if let Some(sent) = payload.get("collect") {
            return Box::pin(self.collect(sent.clone())).await;
        }
        let trigger = RewriteTrigger::from_value(payload).map_err(|e| RewriterError::InvalidEvent(e.to_string()))?;
        let trigger_name = trigger.describe();
        let (target, failover_id, mut mode, fleet_region) = match self.resolve(trigger).await? {
            Resolution::Ignore(reason) => {
                info!(%reason, "event ignored");
                let mut report = RewriteReport::new(RewriteStatus::Ignored, &trigger_name);
                report.ignored_because = Some(reason);
                return Ok(report);
            }
            Resolution::Rewrite {
                target,
                failover_id,
                mode,
                fleet_region,
            } => (target, failover_id, mode, fleet_region),
        };
        let fleet = self.fleet(fleet_region.as_ref())?;
        mode.dry_run |= self.config.dry_run;
        let status = if mode.dry_run {
            RewriteStatus::DryRun
        } else {
            RewriteStatus::Success
        };
        let mut report = RewriteReport::new(status, &trigger_name);
        report.target = Some(target.clone());
        report.failover_id = Some(failover_id.clone());
        report.fleet_region = Some(fleet.region.clone());

        let selection = self.discover(fleet).await?;
        if selection.targets.is_empty() && selection.skipped.is_empty() {
            let none = RewriterError::NoServers {
                apps: self.config.apps(),
                environment: self.config.environment.clone(),
                region: fleet.region.to_string(),
            };
            // The plan applies its repoint failure policy to an empty fleet too (pilot light).
            if mode.report_partial {
                report.status = RewriteStatus::Partial;
                report.ignored_because = Some(none.to_string());
                return Ok(report);
            }
            return Err(none);
        }
        let selection = assign_profiles(selection, &self.config.profiles);
        let per_instance = selection.document_parameters(&self.config, &fleet.region, &target);
        let apps = selection.apps();
        let batches = batch_commands(&per_instance, &failover_id);

        let (results, commanded) = if mode.dry_run {
            let dry = || InstanceResult::Skipped {
                reason: "dry run".into(),
            };
            (per_instance.iter().map(|(id, _)| (id.clone(), dry())).collect(), false)
        } else {
            let (sent, mut results) = self.send(fleet, &batches, &mut report.command_ids).await;
            if mode.send_only && !sent.is_empty() {
                return Ok(crate::fleet::sent_report(
                    report,
                    &sent,
                    results,
                    &selection.skipped,
                    &apps,
                ));
            }
            let commanded = !sent.is_empty();
            results.extend(self.collect_results(fleet, sent, deadline).await);
            (results, commanded)
        };
        report.instances = crate::fleet::instance_reports(&selection.skipped, &apps, results);
        if mode.dry_run {
            return Ok(report);
        }
        self.verdict(report, commanded, mode.report_partial)
    }

    /// Success only when every matching server was repointed: one that failed, timed out or
    /// could not be commanded (agent offline, not registered) makes the run `partial`. Then
    /// the report is logged and the error names each server that was not repointed (or,
    /// when `report_partial`, the report with status `partial` is the answer).
    pub(crate) fn verdict(
        &self,
        mut report: RewriteReport,
        commanded: bool,
        report_partial: bool,
    ) -> Result<RewriteReport, RewriterError> {
        let matching = report.instances.len();
        let failed = report.count(|r| !r.is_success());
        let error = if !commanded {
            RewriterError::NoneCommanded {
                matching,
                summary: report.failures_summary(),
            }
        } else if failed > 0 {
            RewriterError::NotRepointed {
                failed,
                matching,
                summary: report.failures_summary(),
            }
        } else {
            return Ok(report);
        };
        report.status = RewriteStatus::Partial;
        if report_partial {
            return Ok(report);
        }
        let message = if !commanded {
            "env-rewriter reached no server"
        } else {
            "env-rewriter partial failure"
        };
        info!(report = %serde_json::to_value(&report).unwrap_or_default(), "{message}");
        report.metric_line().emit();
        Err(error)
    }
}
