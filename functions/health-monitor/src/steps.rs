//! The steps of a run beyond the checks: read the failback approval, log the decision for
//! the person on call, publish the active region (and tidy the approval after a failback).

use failover_core::parameters::{ParameterWriter, TimedParameterReader};
use tracing::{error, info, warn};

use crate::domain::{approval_is_current, primary_active, Decision, HealthState, SwitchKind};
use crate::error::MonitorError;
use crate::handler::Monitor;
use crate::ports::{HealthStateStore, HeartbeatProbe};

impl<H, S, P> Monitor<H, S, P>
where
    H: HeartbeatProbe,
    S: HealthStateStore,
    P: TimedParameterReader + ParameterWriter,
{
    /// Whether the approval parameter approves a failback now: `true` and written after
    /// the last switch. An unreadable parameter is "not approved", never a failed run.
    pub(crate) async fn approved_by_parameter(&self, state: &HealthState) -> bool {
        let approval_name = self.config.approval_parameter();
        match self.parameters.get_with_modified_time(&approval_name).await {
            Ok(stored) => {
                let current = approval_is_current(stored.as_ref(), state);
                if !current && stored.is_some_and(|s| s.value.trim().eq_ignore_ascii_case("true")) {
                    info!("{approval_name} is true but was not set after the last switch; ignoring it");
                }
                current
            }
            Err(e) => {
                warn!(error = %e, "cannot read the failback approval parameter; treating as not approved");
                false
            }
        }
    }

    /// Whether the published `active-region` is the primary. Unreadable is `None` (no
    /// datapoint), never a failed run: the heartbeat checks matter more.
    pub(crate) async fn primary_active(&self) -> Option<bool> {
        let name = self.config.parameters.active_region();
        match self.parameters.get_with_modified_time(&name).await {
            Ok(stored) => primary_active(stored.as_ref().map(|s| s.value.as_str()), &self.config.regions.primary),
            Err(e) => {
                warn!(error = %e, "cannot read {name}; PrimaryActive is not emitted this run");
                None
            }
        }
    }

    /// One log line per decision that matters, CRITICAL where no switch is safe.
    pub(crate) fn log_decision(&self, decision: &Decision, next: &HealthState) {
        let primary = &self.config.regions.primary;
        let approval_name = self.config.approval_parameter();
        match decision {
            Decision::Switch(switch) => {
                warn!(kind = ?switch.kind, from = %switch.from, to = %switch.to, reason = %switch.reason, "switching the active region")
            }
            Decision::BothUnhealthy => error!(
                critical = true,
                "CRITICAL: both regions failed their heartbeat check; no switch is safe, staying on {}",
                next.active_region
            ),
            Decision::NoUsableRegion { awaiting_approval } => error!(
                critical = true,
                "CRITICAL: {} failed {} consecutive checks and {primary} may not take over yet ({}); staying on {}",
                next.active_region,
                next.counters(&next.active_region).consecutive_failures,
                if *awaiting_approval {
                    format!("failback awaits approval: set {approval_name}=true or send {{\"approveFailback\": true}}")
                } else {
                    format!(
                        "{primary} has been healthy for {} of {} required checks",
                        next.counters(primary).consecutive_successes,
                        self.config.thresholds.failback_after
                    )
                },
                next.active_region
            ),
            Decision::FailbackAwaitingApproval => info!(
                "{primary} has been healthy for {} checks; set {approval_name}=true or send {{\"approveFailback\": true}} to fail back",
                self.config.thresholds.failback_after
            ),
            Decision::Stay => {}
        }
    }

    /// Writes the active region, marks the state published (saved as the next version),
    /// and after an approved failback resets the approval; `false` when the switch is not
    /// health-monitor's to publish (a failover: the region-switch plan publishes it).
    pub(crate) async fn publish(
        &self,
        next: &mut HealthState,
        version: Option<u64>,
        decision: &Decision,
        approved_by_parameter: bool,
    ) -> Result<bool, MonitorError> {
        let kind = next.last_switch.as_ref().map(|s| s.kind);
        if kind.is_some_and(|k| !k.published_by_monitor()) {
            info!(
                active_region = %next.active_region,
                "failover recorded; the region-switch plan (started by the failover alarm) publishes the active region after promoting and fencing"
            );
            next.published = true;
            if !self.store.save(next, Some(version.unwrap_or(0) + 1)).await? {
                info!("the state changed after the switch was recorded; the next run re-checks it");
            }
            return Ok(false);
        }
        self.parameters
            .put(&self.config.parameters.active_region(), next.active_region.as_str())
            .await?;
        next.published = true;
        if !self.store.save(next, Some(version.unwrap_or(0) + 1)).await? {
            info!("the state changed after publishing; the next run re-checks it");
        }
        // Tidy only: an approval older than the last switch is ignored anyway, so a
        // failed reset must not fail a run whose failback is already published.
        if matches!(decision, Decision::Switch(s) if s.kind == SwitchKind::Failback) && approved_by_parameter {
            let approval_name = self.config.approval_parameter();
            if let Err(e) = self.parameters.put(&approval_name, "false").await {
                warn!(error = %e, "could not reset {approval_name} after the failback; it is ignored from now on");
            }
        }
        Ok(true)
    }
}
