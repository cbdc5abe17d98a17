//! The stages of a failover, each one idempotent: assess and promote once (`Requested`),
//! wait until writable (`Promoting`), publish (`Writable`). Each moves the lock record to
//! its next stage; the handler saves it after each, and stops at the request's [`Goal`].

use failover_core::alarm::AlarmTransition;
use failover_core::evidence::{quorum, CheckOutcome};
use failover_core::parameters::{ParameterWriter, PublishedValues, TimedParameterReader};
use failover_core::retry::{Deadline, Poller};
use failover_core::{AwsFailure, ErrorClass};
use tracing::info;

use crate::domain::{
    guard_replica, promotion_step, replica_gate, rpo_estimate, split_brain_verdict, writability, DbInstanceView,
    GateOverride, LockRecord, PromotionStep, ReplicaGuard, RpoEstimate, SourceProbe, SplitBrainVerdict, Stage,
    Writability,
};
use crate::error::PromoterError;
use crate::handler::Promoter;
use crate::invocation::now_ms;
use crate::ports::{DbInstances, EvidenceStore, FailoverLockStore};
use crate::report::PromotionAction;
use crate::request::PlanStep;

/// How far one invocation takes the failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// An alarm delivered to the function: every stage, waiting within the invocation.
    Everything,
    /// Plan step `promote`: until PromoteReadReplica is accepted (or found done).
    Promoted,
    /// Plan step `checkWritable`: one look, writable or not.
    CheckedWritable,
    /// Plan step `publish`: from writable to published.
    Published,
    /// Plan step `fence`: no stage moves (see `fence.rs`).
    Fenced,
}

/// Each plan step runs the stages as far as its goal.
impl From<PlanStep> for Goal {
    fn from(step: PlanStep) -> Self {
        match step {
            PlanStep::Promote => Self::Promoted,
            PlanStep::CheckWritable => Self::CheckedWritable,
            PlanStep::Publish => Self::Published,
            PlanStep::Fence => Self::Fenced,
        }
    }
}

impl Goal {
    /// True once `stage` is as far as this goal goes.
    pub(crate) fn reached(self, stage: Stage) -> bool {
        match self {
            Goal::Everything | Goal::Published => stage == Stage::Published,
            Goal::Promoted => stage >= Stage::Promoting,
            Goal::CheckedWritable => stage >= Stage::Writable,
            Goal::Fenced => true,
        }
    }

    /// A plan step that comes before its stage (the plan calls them in order) is refused:
    /// `checkWritable` before `promote`, or `publish` before writable, would skip a guard.
    pub(crate) fn out_of_order(self, record: &LockRecord) -> Option<PromoterError> {
        let needs = match self {
            Goal::CheckedWritable => Stage::Promoting,
            Goal::Published => Stage::Writable,
            _ => return None,
        };
        (record.stage < needs).then(|| PromoterError::StepOutOfOrder {
            failover_id: record.failover_id.clone(),
            stage: record.stage,
            needs,
        })
    }
}

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore + EvidenceStore,
    P: ParameterWriter + TimedParameterReader,
{
    /// Reads the replica and, for a promotable one, the source: the decision the real run
    /// acts on and the dry run describes, with the replica as read.
    pub(crate) async fn assess(
        &self,
        transition: &AlarmTransition,
    ) -> Result<(DbInstanceView, PromotionStep), PromoterError> {
        let view = self.describe_replica().await?;
        let guard = guard_replica(&view);
        let verdict = match &guard {
            ReplicaGuard::Promotable { source } => Some(self.check_split_brain(transition, source).await),
            ReplicaGuard::AlreadyPromoted => {
                info!(replica = %view.id, status = %view.status, "replica is no longer a read replica; publishing its endpoint");
                None
            }
            ReplicaGuard::Busy { .. } => None,
        };
        Ok((view, promotion_step(guard, verdict)))
    }

    /// Stage `Requested`: check the replica and the source, then promote, exactly once.
    pub(crate) async fn promote_once(
        &self,
        transition: &AlarmTransition,
        record: &mut LockRecord,
    ) -> Result<(PromotionAction, Option<SplitBrainVerdict>), PromoterError> {
        let replica = &self.config.replica.id;
        let (view, step) = self.assess(transition).await?;
        let (source, verdict) = match step {
            PromotionStep::PublishOnly => {
                record.stage = Stage::Promoting;
                return Ok((PromotionAction::AlreadyPromoted, None));
            }
            PromotionStep::WaitForReplica { status } => {
                return Err(PromoterError::ReplicaBusy {
                    replica: replica.clone(),
                    status,
                })
            }
            PromotionStep::Refuse { verdict, .. } => {
                return Err(PromoterError::SplitBrain(verdict.reason().to_owned()))
            }
            PromotionStep::LookAgain { verdict, .. } => {
                return Err(PromoterError::GuardUndecided(verdict.reason().to_owned()))
            }
            PromotionStep::Promote { source, verdict } => (source, verdict),
        };
        self.evidence_gate(transition).await?;
        // Read before the promote call: a broken or lagging replica is not promoted
        // without an override, and the lag it had is the RPO estimate either way.
        let mut estimate = self.rpo_estimate().await;
        let gate_override = self.gate_override(transition).await;
        let gate = replica_gate(
            &view,
            &estimate,
            self.config.max_replica_lag_seconds,
            gate_override.as_ref(),
        );
        info!(?gate, "replica gate");
        if !gate.allows() {
            return Err(PromoterError::ReplicaGate(gate.reason().to_owned()));
        }
        estimate.replica_gate = Some(gate);
        record.former_source = Some(source);
        // Two allowed alarms are two failover ids: only one of them may promote. The claim
        // names the replica's incarnation, so a re-created replica is a new one.
        if let Some(holder) = self
            .lock
            .claim_replica(&view.incarnation(), &record.failover_id, record.lease_until_ms)
            .await?
        {
            return Err(PromoterError::ReplicaClaimed {
                replica: replica.clone(),
                holder,
            });
        }
        match self
            .replica_side
            .promote(replica, self.config.backup_retention_days)
            .await
        {
            Ok(()) => info!(%replica, "PromoteReadReplica accepted"),
            // An earlier attempt's promote may have been accepted just before it died.
            Err(failure) if failure.has_code("InvalidDBInstanceState") => {
                self.confirm_promotion_under_way(failure).await?
            }
            Err(failure) => return Err(failure.into()),
        }
        record.promote_requested_at_ms = Some(now_ms());
        record.rpo = Some(estimate);
        record.stage = Stage::Promoting;
        Ok((PromotionAction::Promoted, Some(verdict)))
    }

    /// For an alarm of health-monitor's (QUORUM_ALARMS): promotes only if the monitors'
    /// saved observations, read again now, still show the quorum (primary down from the
    /// secondary and the witness, the secondary healthy, the primary seen healthy before).
    /// An alarm created or replaced during an outage (INSUFFICIENT_DATA → ALARM) is decided
    /// here rather than ignored.
    async fn evidence_gate(&self, transition: &AlarmTransition) -> Result<(), PromoterError> {
        if !self.config.needs_quorum(&transition.alarm_name) {
            return Ok(());
        }
        let (primary, secondary) = (&self.config.source_region, &self.config.replica.region);
        let secondary_view = self
            .lock
            .observation(&self.config.health_state_key())
            .await?
            .unwrap_or_default();
        let witness_view = match &self.config.witness_region {
            Some(witness) => self.lock.observation(&self.config.observation_key(witness)).await?,
            None => None,
        };
        let verdict = quorum(
            primary,
            secondary,
            &secondary_view,
            witness_view.as_ref(),
            self.config.quorum_rule,
            now_ms(),
        );
        info!(?verdict, "evidence gate");
        if verdict.is_primary_down() {
            Ok(())
        } else {
            Err(PromoterError::Evidence(verdict.reason().to_owned()))
        }
    }

    /// The witness's fresh healthy check of the primary region, in words (`None`: no
    /// witness deployed, its observation unreadable, stale, or not healthy).
    async fn witness_reaches_primary(&self) -> Option<String> {
        let witness = self.config.witness_region.as_ref()?;
        let observation = match self.lock.observation(&self.config.observation_key(witness)).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the witness's observation");
                return None;
            }
        };
        let primary = &self.config.source_region;
        let tally = observation.tally(primary);
        let age_ms = now_ms() - observation.checked_at_ms?;
        (tally.last == Some(CheckOutcome::Healthy) && age_ms <= self.config.quorum_rule.max_age_ms)
            .then(|| format!("the witness in {witness} reached {primary} {} s ago", age_ms / 1000))
    }

    /// Why a broken or lagging replica may be promoted anyway: the operator's override
    /// (`<prefix>/promote-override`, written after the alarm fired: an older one is left
    /// over from another incident), or an outage longer than PROMOTE_ANYWAY_AFTER_MINUTES.
    async fn gate_override(&self, transition: &AlarmTransition) -> Option<GateOverride> {
        let fired_ms = transition.timestamp.timestamp_millis();
        let name = self.config.promote_override_parameter();
        match self.parameters.get_with_modified_time(&name).await {
            Ok(Some(stored))
                if !stored.value.trim().is_empty() && stored.modified_ms.is_some_and(|m| m >= fired_ms) =>
            {
                return Some(GateOverride::Operator {
                    reason: stored.value.trim().chars().take(200).collect(),
                })
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read {name}; no operator override"),
        }
        let limit = self.config.promote_anyway_after?;
        let lasted_ms = now_ms() - fired_ms;
        (lasted_ms >= limit.as_millis() as i64).then_some(GateOverride::OutageLasted {
            minutes: lasted_ms / 60_000,
            limit: (limit.as_secs() / 60) as i64,
        })
    }

    /// How far behind the replica is, read just before it is promoted. Unreadable metrics
    /// are an unknown estimate, never a reason to delay a failover.
    pub(crate) async fn rpo_estimate(&self) -> RpoEstimate {
        let replica = &self.config.replica.id;
        let estimate = match self.replica_side.replica_lag(replica).await {
            Ok(minutes) => rpo_estimate(&minutes),
            Err(failure) => RpoEstimate::unknown(&format!("ReplicaLag of {replica} unreadable: {failure}")),
        };
        info!(%replica, rpo = %estimate.meaning, "RPO estimate at promotion");
        estimate
    }

    /// After `InvalidDBInstanceState`, proceeds only once the replica is detached from its
    /// source. A busy replica that still has a source may have refused the promote for its
    /// own reasons (backing-up, modifying), so the stage stays `Requested` and a retry looks again.
    async fn confirm_promotion_under_way(&self, refusal: AwsFailure) -> Result<(), PromoterError> {
        let view = self.describe_replica().await?;
        match (view.replica_source, view.status.as_str()) {
            (None, _) => {
                info!(replica = %view.id, status = %view.status, "replica already detached from its source");
                Ok(())
            }
            (Some(_), "available") => Err(refusal.into()),
            (Some(source_id), status) => Err(PromoterError::PromoteRefusedWhileBusy {
                replica: view.id.clone(),
                status: status.to_owned(),
                source_id,
                refusal,
            }),
        }
    }

    /// Stage `Promoting`: polls until writable, with growing jittered pauses, until the
    /// wait budget runs out; records the endpoint.
    pub(crate) async fn await_writable(
        &self,
        record: &mut LockRecord,
        deadline: Deadline,
    ) -> Result<(), PromoterError> {
        let deadline = deadline.min(Deadline::after(self.config.max_wait));
        let mut poller = Poller::new(self.config.poll_initial, self.config.poll_max, deadline);
        loop {
            let last_reason = match self.look_writable(record).await? {
                None => {
                    info!(replica = %self.config.replica.id, polls = poller.polls() + 1, waited_ms = poller.waited().as_millis() as u64, "replica is writable");
                    return Ok(());
                }
                Some(reason) => reason,
            };
            if !poller.pause_before_next().await {
                return Err(PromoterError::NotWritableInTime {
                    replica: self.config.replica.id.clone(),
                    waited: poller.waited(),
                    polls: poller.polls(),
                    last_reason,
                });
            }
        }
    }

    /// Stage `Promoting`, one look (the plan's Wait loop repeats it): `true` once writable.
    /// Past `PROMOTION_MAX_WAIT_SECONDS` since PromoteReadReplica, a look that still finds it
    /// not writable ends the switch with a permanent error naming what it found.
    pub(crate) async fn check_writable(&self, record: &mut LockRecord) -> Result<bool, PromoterError> {
        let Some(reason) = self.look_writable(record).await? else {
            info!(replica = %self.config.replica.id, "replica is writable");
            return Ok(true);
        };
        // A replica found already detached has no promote time: the wait counts from the lock.
        let since = record.promote_requested_at_ms.unwrap_or(record.created_at_ms);
        let waited_ms = (now_ms() - since).max(0);
        let waited = std::time::Duration::from_millis(waited_ms as u64);
        if waited > self.config.promotion_max_wait {
            return Err(PromoterError::PromotionTimedOut {
                replica: self.config.replica.id.clone(),
                waited,
                last_reason: reason,
            });
        }
        info!(replica = %self.config.replica.id, %reason, waited_s = waited.as_secs(), "replica not writable yet");
        Ok(false)
    }

    /// One describe: `None` once writable (the record then holds the endpoint and moves to
    /// `Writable`), else what the look found.
    async fn look_writable(&self, record: &mut LockRecord) -> Result<Option<String>, PromoterError> {
        let replica = &self.config.replica.id;
        match self.replica_side.describe(replica).await {
            Ok(Some(view)) => match writability(&view) {
                Writability::Writable { address, port } => {
                    record.endpoint_address = Some(address);
                    record.endpoint_port = Some(port);
                    record.writable_at_ms = Some(now_ms());
                    record.stage = Stage::Writable;
                    Ok(None)
                }
                Writability::NotYet(reason) => Ok(Some(reason)),
            },
            Ok(None) => Err(PromoterError::ReplicaDisappeared {
                replica: replica.clone(),
            }),
            Err(failure) if failure.class == ErrorClass::Retryable => Ok(Some(failure.to_string())),
            Err(failure) => Err(failure.into()),
        }
    }

    /// Stage `Writable`: writes host, port and active region, active region last.
    pub(crate) async fn publish(&self, record: &mut LockRecord) -> Result<(), PromoterError> {
        let values = PublishedValues {
            db_host: record
                .endpoint_address
                .clone()
                .ok_or_else(|| PromoterError::WritableWithoutEndpoint {
                    failover_id: record.failover_id.clone(),
                })?,
            db_port: record.endpoint_port.unwrap_or(3306),
            active_region: self.config.replica.region.to_string(),
        };
        for (name, value) in self.config.parameters.pairs(&values) {
            self.parameters.put(&name, &value).await?;
            info!(parameter = %name, "published");
        }
        record.published_at_ms = Some(now_ms());
        record.stage = Stage::Published;
        Ok(())
    }

    /// Saves the record while this invocation still owns it.
    pub(crate) async fn save(&self, record: &LockRecord) -> Result<(), PromoterError> {
        if self.lock.save(record).await? {
            Ok(())
        } else {
            Err(PromoterError::LockLost {
                failover_id: record.failover_id.clone(),
                stage: record.stage,
            })
        }
    }

    /// The replica's current description; a missing replica is a permanent error naming it.
    async fn describe_replica(&self) -> Result<DbInstanceView, PromoterError> {
        self.replica_side
            .describe(&self.config.replica.id)
            .await?
            .ok_or_else(|| PromoterError::ReplicaNotFound {
                replica: self.config.replica.id.clone(),
                region: self.config.replica.region.to_string(),
            })
    }

    async fn check_split_brain(&self, transition: &AlarmTransition, source: &str) -> SplitBrainVerdict {
        let probe = self.probe_source(source).await;
        let witness = self.witness_reaches_primary().await;
        let verdict = split_brain_verdict(
            &probe,
            source,
            self.config.is_authoritative(&transition.alarm_name),
            witness.as_deref(),
        );
        info!(?probe, ?verdict, "split-brain guard");
        verdict
    }

    /// The split-brain guard's look at the source, unless the guard is off.
    async fn probe_source(&self, source: &str) -> SourceProbe {
        if !self.config.split_brain_guard {
            return SourceProbe::Skipped;
        }
        self.look_at_source(source).await
    }

    /// Looks at the source primary in its own region, within the probe timeout.
    pub(crate) async fn look_at_source(&self, source: &str) -> SourceProbe {
        let (source_id, source_region) = split_source(source);
        if let Some(region) = source_region.filter(|r| *r != self.config.source_region.as_str()) {
            return SourceProbe::Unknown {
                error: format!(
                    "the source is in {region} but PRIMARY_REGION is {}",
                    self.config.source_region
                ),
            };
        }
        let timeout = self.config.source_probe_timeout;
        match tokio::time::timeout(timeout, self.source_side.describe(source_id)).await {
            Err(_) => SourceProbe::Unreachable {
                error: format!("no answer within {timeout:?}"),
            },
            Ok(Ok(Some(view))) => SourceProbe::Status { status: view.status },
            Ok(Ok(None)) => SourceProbe::NotFound,
            Ok(Err(failure)) if failure.is_throttling() => SourceProbe::Throttled {
                error: failure.to_string(),
            },
            Ok(Err(failure)) if failure.class == ErrorClass::Retryable => SourceProbe::Unreachable {
                error: failure.to_string(),
            },
            Ok(Err(failure)) => SourceProbe::Unknown {
                error: failure.to_string(),
            },
        }
    }
}

/// `arn:aws:rds:<region>:<account>:db:<id>` → (`id`, `Some(region)`); a bare id → (`id`, `None`).
pub(crate) fn split_source(source: &str) -> (&str, Option<&str>) {
    let parts: Vec<&str> = source.split(':').collect();
    if parts.len() == 7 && parts[0] == "arn" && parts[5] == "db" {
        (parts[6], Some(parts[3]))
    } else {
        (source, None)
    }
}

#[cfg(test)]
mod tests {
    use super::split_source;

    #[test]
    fn source_arns_are_split_into_id_and_region() {
        assert_eq!(
            split_source("arn:aws:rds:us-east-1:123456789012:db:shop-db"),
            ("shop-db", Some("us-east-1"))
        );
        assert_eq!(split_source("shop-db"), ("shop-db", None));
    }
}
