//! The rewrite flow: trigger → target → discovery → SendCommand → per-instance results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use failover_core::alarm::Verdict;
use failover_core::emf::{MetricLine, Unit};
use failover_core::ports::{CommandRunner, InstanceFinder, NodeDirectory, ParameterReader};
use failover_core::retry::{Backoff, Deadline};
use failover_core::rewrite::{
    batch_commands, select_targets, InstanceResult, InvocationStatus, RewriteTarget, RewriteTrigger, Selection, Skipped,
};
use failover_core::{ErrorClass, FailoverError};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::RewriterConfig;
use crate::outcome::{InstanceReport, Report, Status};
use crate::plan::{assign_profiles, document_parameters};

/// The env-rewriter handler, generic over its AWS dependencies.
pub struct Rewriter<F, N, C, P> {
    config: RewriterConfig,
    finder: F,
    nodes: N,
    commands: C,
    parameters: P,
}

/// What the trigger asks for, or why nothing is to be done.
enum Decision {
    Rewrite {
        target: RewriteTarget,
        failover_id: String,
        dry_run: bool,
    },
    Ignore(String),
}

impl<F, N, C, P> Rewriter<F, N, C, P>
where
    F: InstanceFinder,
    N: NodeDirectory,
    C: CommandRunner,
    P: ParameterReader,
{
    /// Wires the handler to its ports (all in the app servers' region, except `parameters`,
    /// which reads where rds-promoter and health-monitor publish).
    pub fn new(config: RewriterConfig, finder: F, nodes: N, commands: C, parameters: P) -> Self {
        Self {
            config,
            finder,
            nodes,
            commands,
            parameters,
        }
    }

    /// The command runner (e.g. to inspect a recording runner in tests).
    pub fn commands(&self) -> &C {
        &self.commands
    }

    /// [`Self::handle`], plus the summary log line and EMF metrics.
    pub async fn handle_and_report(&self, payload: Value, deadline: Deadline) -> Result<Value, FailoverError> {
        let result = self.handle(payload, deadline).await;
        match &result {
            Ok(report) => {
                info!(report = %serde_json::to_value(report).unwrap_or_default(), "env-rewriter finished");
                report.metric_line().emit();
            }
            Err(err) => {
                error!(error = %err, error_type = err.class().as_str(), "env-rewriter failed");
                MetricLine::new("ShopFailover")
                    .dimension("Function", "env-rewriter")
                    .metric("Errors", 1.0, Unit::Count)
                    .property("ErrorType", err.class().as_str())
                    .emit();
            }
        }
        result.map(|report| serde_json::to_value(report).unwrap_or_default())
    }

    /// Handles one event. A partial failure is an `Incomplete` (retryable) error whose
    /// message names each server that did not succeed; the full report is logged. So is a
    /// run in which servers matched but none could be commanded (all skipped).
    pub async fn handle(&self, payload: Value, deadline: Deadline) -> Result<Report, FailoverError> {
        let trigger = RewriteTrigger::from_value(payload).map_err(|e| FailoverError::InvalidEvent(e.to_string()))?;
        let trigger_name = match &trigger {
            RewriteTrigger::ParameterChange { change, .. } => format!("parameter-change {}", change.name),
            RewriteTrigger::Alarm(t) => format!("alarm {}", t.alarm_name),
            RewriteTrigger::Manual { .. } => "manual".to_owned(),
        };
        let (target, failover_id, dry_run) = match self.decide(trigger).await? {
            Decision::Ignore(reason) => {
                info!(%reason, "event ignored");
                let mut report = Report::new(Status::Ignored, &trigger_name);
                report.ignored_because = Some(reason);
                return Ok(report);
            }
            Decision::Rewrite {
                target,
                failover_id,
                dry_run,
            } => (target, failover_id, dry_run || self.config.dry_run),
        };
        let mut report = Report::new(if dry_run { Status::DryRun } else { Status::Success }, &trigger_name);
        report.target = Some(target.clone());
        report.failover_id = Some(failover_id.clone());

        let selection = self.discover().await?;
        if selection.targets.is_empty() && selection.skipped.is_empty() {
            return Err(FailoverError::Refused(format!(
                "no running servers tagged App in {:?} and Environment={} in {}: nothing was repointed",
                self.config.apps(),
                self.config.environment,
                self.config.app_region
            )));
        }
        let selection = assign_profiles(selection, &self.config.profiles);
        let per_instance: Vec<(String, BTreeMap<String, String>)> = selection
            .targets
            .iter()
            .map(|(t, profile)| {
                (
                    t.instance_id.clone(),
                    document_parameters(&self.config, *profile, &target),
                )
            })
            .collect();
        let apps: BTreeMap<String, String> = selection
            .targets
            .iter()
            .map(|(t, _)| (t.instance_id.clone(), t.app.clone()))
            .collect();
        let batches = batch_commands(&per_instance, &failover_id);

        let mut results: BTreeMap<String, InstanceResult> = BTreeMap::new();
        if dry_run {
            for (t, _) in &selection.targets {
                results.insert(
                    t.instance_id.clone(),
                    InstanceResult::Skipped {
                        reason: "dry run".into(),
                    },
                );
            }
        } else {
            let mut sent = Vec::new();
            for batch in &batches {
                match self.commands.send(batch, &self.config.command).await {
                    Ok(command_id) => {
                        info!(%command_id, instances = batch.instance_ids.len(), "command sent");
                        report.command_ids.push(command_id.clone());
                        sent.extend(batch.instance_ids.iter().map(|id| (command_id.clone(), id.clone())));
                    }
                    Err(failure) => {
                        warn!(error = %failure, "SendCommand failed");
                        for id in &batch.instance_ids {
                            results.insert(
                                id.clone(),
                                InstanceResult::NotSent {
                                    error: failure.to_string(),
                                },
                            );
                        }
                    }
                }
            }
            results.extend(self.collect_results(sent, deadline).await);
        }
        report.instances = self.instance_reports(&selection.skipped, &apps, results);
        if !dry_run && selection.targets.is_empty() {
            report.status = Status::PartialFailure;
            info!(report = %serde_json::to_value(&report).unwrap_or_default(), "env-rewriter reached no server");
            report.metric_line().emit();
            return Err(FailoverError::Incomplete(format!(
                "none of the {} matching servers could be commanded, so nothing was repointed (a retry is safe: the script is idempotent): {}",
                selection.skipped.len(),
                report.skipped_summary()
            )));
        }
        let failures = report.count(|r| !r.is_success() && !matches!(r, InstanceResult::Skipped { .. }));
        if failures > 0 {
            report.status = Status::PartialFailure;
            let summary = report.failures_summary();
            info!(report = %serde_json::to_value(&report).unwrap_or_default(), "env-rewriter partial failure");
            report.metric_line().emit();
            return Err(FailoverError::Incomplete(format!(
                "{failures} of {} servers were not repointed (a retry is safe: the script is idempotent): {summary}",
                selection.targets.len()
            )));
        }
        Ok(report)
    }

    /// Turns the trigger into a target (reading Parameter Store when it changed).
    async fn decide(&self, trigger: RewriteTrigger) -> Result<Decision, FailoverError> {
        match trigger {
            RewriteTrigger::Manual {
                region,
                db_host,
                db_port,
                dry_run,
            } => Ok(Decision::Rewrite {
                failover_id: format!("manual {region}"),
                target: RewriteTarget {
                    region,
                    db_host,
                    db_port,
                },
                dry_run,
            }),
            RewriteTrigger::ParameterChange { change, trigger_id } => {
                let names = &self.config.parameters;
                if change.name != names.active_region() {
                    return Ok(Decision::Ignore(format!(
                        "{} is not {}: the active region is published last, and its change triggers the rewrite",
                        change.name,
                        names.active_region()
                    )));
                }
                if change.operation == "Delete" {
                    return Ok(Decision::Ignore(format!("{} was deleted", change.name)));
                }
                let wanted = vec![names.db_host(), names.db_port(), names.active_region()];
                let values = self.parameters.get(&wanted).await?;
                let target = RewriteTarget::from_parameters(names, &values)
                    .map_err(|e| FailoverError::Refused(format!("the published parameters cannot be used: {e}")))?;
                Ok(Decision::Rewrite {
                    failover_id: trigger_id,
                    target,
                    dry_run: false,
                })
            }
            RewriteTrigger::Alarm(transition) => {
                let (Some(policy), Some(region)) = (&self.config.alarm_policy, &self.config.failover_region) else {
                    return Err(FailoverError::Refused(
                        "alarm events are not configured for env-rewriter (set ALLOWED_ALARM_NAMES or ALLOWED_ALARM_PREFIXES and FAILOVER_REGION)".into(),
                    ));
                };
                match policy.evaluate(&transition) {
                    Verdict::Ignored { reason } => Ok(Decision::Ignore(reason.to_string())),
                    Verdict::Act => Ok(Decision::Rewrite {
                        failover_id: transition.failover_id(),
                        target: RewriteTarget {
                            region: region.clone(),
                            db_host: None,
                            db_port: None,
                        },
                        dry_run: false,
                    }),
                }
            }
        }
    }

    /// Running tagged EC2 instances and tagged hybrid nodes, with their SSM status.
    async fn discover(&self) -> Result<Selection, FailoverError> {
        let apps = self.config.apps();
        let instances = self
            .finder
            .running_app_instances(&apps, &self.config.environment)
            .await?;
        let mut nodes = Vec::new();
        for app in &apps {
            nodes.extend(self.nodes.tagged_nodes(app, &self.config.environment).await?);
        }
        let selection = select_targets(&instances, &nodes);
        info!(
            targets = selection.targets.len(),
            skipped = selection.skipped.len(),
            "servers discovered"
        );
        Ok(selection)
    }

    /// Polls each sent (command, instance) until terminal, with growing jittered pauses,
    /// until every one is done or the wait budget runs out.
    async fn collect_results(
        &self,
        sent: Vec<(String, String)>,
        deadline: Deadline,
    ) -> BTreeMap<String, InstanceResult> {
        let deadline = deadline.min(Deadline::after(self.config.max_wait));
        let backoff = Backoff {
            base: self.config.poll_initial,
            cap: self.config.poll_max,
            max_attempts: u32::MAX,
        };
        let started = Instant::now();
        let mut pending = sent;
        let mut results = BTreeMap::new();
        for round in 1..=u32::MAX {
            let mut still_pending = Vec::new();
            for (command_id, instance_id) in pending {
                match self.commands.invocation(&command_id, &instance_id).await {
                    Ok(InvocationStatus::Done(result)) => {
                        results.insert(instance_id, result);
                    }
                    Ok(InvocationStatus::NotYetVisible | InvocationStatus::Running(_)) => {
                        still_pending.push((command_id, instance_id))
                    }
                    Err(failure) if failure.class == ErrorClass::Retryable => {
                        still_pending.push((command_id, instance_id))
                    }
                    Err(failure) => {
                        results.insert(
                            instance_id,
                            InstanceResult::Undeliverable {
                                detail: failure.to_string(),
                            },
                        );
                    }
                }
            }
            pending = still_pending;
            if pending.is_empty() {
                break;
            }
            let delay = backoff.ceiling(round).mul_f64(0.5 + 0.5 * fastrand::f64());
            if delay >= deadline.remaining() {
                let waited = Duration::from_secs_f64(started.elapsed().as_secs_f64());
                for (_, instance_id) in pending.drain(..) {
                    results.insert(
                        instance_id,
                        InstanceResult::TimedOut {
                            detail: format!("no final status after {waited:.1?}"),
                        },
                    );
                }
                break;
            }
            tokio::time::sleep(delay).await;
        }
        results
    }

    fn instance_reports(
        &self,
        skipped: &[Skipped],
        apps: &BTreeMap<String, String>,
        results: BTreeMap<String, InstanceResult>,
    ) -> Vec<InstanceReport> {
        let mut reports: Vec<InstanceReport> = results
            .into_iter()
            .map(|(instance_id, result)| InstanceReport {
                app: apps.get(&instance_id).cloned().unwrap_or_default(),
                instance_id,
                result,
            })
            .collect();
        reports.extend(skipped.iter().map(|s| InstanceReport {
            instance_id: s.instance_id.clone(),
            app: s.app.clone(),
            result: InstanceResult::Skipped {
                reason: s.reason.clone(),
            },
        }));
        reports.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        reports
    }
}
