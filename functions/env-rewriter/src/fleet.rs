//! Steps "discover", "send" and "collect": the tagged servers and their SSM status, one
//! SendCommand per batch, and each server's final result, polled until the wait budget ends.

use std::collections::BTreeMap;

use failover_core::parameters::ParameterReader;
use failover_core::retry::{Deadline, Poller};
use failover_core::ErrorClass;
use tracing::{info, warn};

use crate::domain::{select_targets, CommandBatch, InstanceResult, InvocationStatus, Selection, Skipped};
use crate::error::RewriterError;
use crate::fleets::Fleet;
use crate::handler::Rewriter;
use crate::ports::{CommandRunner, InstanceFinder, NodeDirectory};
use crate::report::{InstanceReport, PendingCommand, RewriteReport, RewriteStatus};

impl<F, N, C, P> Rewriter<F, N, C, P>
where
    F: InstanceFinder,
    N: NodeDirectory,
    C: CommandRunner,
    P: ParameterReader,
{
    /// Running tagged EC2 instances and tagged hybrid nodes of `fleet`, with their SSM status.
    pub(crate) async fn discover(&self, fleet: &Fleet<F, N, C>) -> Result<Selection, RewriterError> {
        let apps = self.config.apps();
        let instances = fleet
            .finder
            .running_app_instances(&apps, &self.config.environment)
            .await?;
        let mut nodes = Vec::new();
        for app in &apps {
            nodes.extend(fleet.nodes.tagged_nodes(app, &self.config.environment).await?);
        }
        let selection = select_targets(&instances, &nodes);
        info!(
            region = %fleet.region,
            targets = selection.targets.len(),
            unreachable = selection.skipped.len(),
            "servers discovered"
        );
        Ok(selection)
    }

    /// Sends each batch; returns the (command, instance) pairs to poll, and a `NotSent`
    /// result for every instance of a batch SendCommand refused. Command ids go to `ids`.
    pub(crate) async fn send(
        &self,
        fleet: &Fleet<F, N, C>,
        batches: &[CommandBatch],
        ids: &mut Vec<String>,
    ) -> (Vec<(String, String)>, BTreeMap<String, InstanceResult>) {
        let mut sent = Vec::new();
        let mut results = BTreeMap::new();
        for batch in batches {
            match fleet.commands.send(batch, &self.config.command).await {
                Ok(command_id) => {
                    info!(%command_id, instances = batch.instance_ids.len(), "command sent");
                    ids.push(command_id.clone());
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
        (sent, results)
    }

    /// Polls each sent (command, instance) until terminal, with growing jittered pauses,
    /// until every one is done or the wait budget runs out.
    pub(crate) async fn collect_results(
        &self,
        fleet: &Fleet<F, N, C>,
        sent: Vec<(String, String)>,
        deadline: Deadline,
    ) -> BTreeMap<String, InstanceResult> {
        let deadline = deadline.min(Deadline::after(self.config.max_wait));
        let mut poller = Poller::new(self.config.poll_initial, self.config.poll_max, deadline);
        let mut pending = sent;
        let mut results = BTreeMap::new();
        loop {
            let (still_pending, done) = self.look(fleet, pending).await;
            results.extend(done);
            pending = still_pending;
            if pending.is_empty() {
                break;
            }
            if !poller.pause_before_next().await {
                let waited = poller.waited();
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
        }
        results
    }

    /// One look at each sent (command, instance): the ones still running, and the results
    /// of the others.
    pub(crate) async fn look(
        &self,
        fleet: &Fleet<F, N, C>,
        pending: Vec<(String, String)>,
    ) -> (Vec<(String, String)>, BTreeMap<String, InstanceResult>) {
        let mut still_pending = Vec::new();
        let mut results = BTreeMap::new();
        for (command_id, instance_id) in pending {
            match fleet.commands.invocation(&command_id, &instance_id).await {
                Ok(InvocationStatus::Done(result)) => {
                    results.insert(instance_id, result);
                }
                Ok(InvocationStatus::NotYetVisible | InvocationStatus::Running(_)) => {
                    still_pending.push((command_id, instance_id))
                }
                Err(failure) if failure.class == ErrorClass::Retryable => still_pending.push((command_id, instance_id)),
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
        (still_pending, results)
    }
}

/// The answer of a `sendOnly` run: status `sent`, the commands still to collect, and the
/// servers already done with (not sent, not commandable).
pub(crate) fn sent_report(
    mut report: RewriteReport,
    sent: &[(String, String)],
    results: BTreeMap<String, InstanceResult>,
    skipped: &[Skipped],
    apps: &BTreeMap<String, String>,
) -> RewriteReport {
    report.status = RewriteStatus::Sent;
    report.sent_at_ms = Some(crate::collect::now_ms());
    report.pending = pending_commands(sent, apps);
    report.instances = instance_reports(skipped, apps, results);
    report
}

/// The commands of `sent` as the report hands them to the plan, each with its App tag.
pub(crate) fn pending_commands(sent: &[(String, String)], apps: &BTreeMap<String, String>) -> Vec<PendingCommand> {
    sent.iter()
        .map(|(command_id, instance_id)| PendingCommand {
            command_id: command_id.clone(),
            instance_id: instance_id.clone(),
            app: apps.get(instance_id).cloned().unwrap_or_default(),
        })
        .collect()
}

/// One line per server: every commanded one with its result, and every one that could not
/// be commanded as `undeliverable`, with why: it was not repointed, the convergence
/// association repoints it once its agent is back.
pub(crate) fn instance_reports(
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
        result: InstanceResult::Undeliverable {
            detail: format!("not commanded: {}; left to the convergence association", s.reason),
        },
    }));
    reports.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    reports
}
