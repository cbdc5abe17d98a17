//! The failback plan's database steps: a planned switchover back to the original region.
//! Each step is one idempotent look or action on the durable [`FailbackRecord`]; the plan
//! (`infra/statemachine/failback.asl.json`) asks for approval, freezes writes through
//! env-rewriter between `checkReplica` and `checkDrained`, and repoints the fleets after
//! `publish`. Only the execution that began a failback may move it.

use failover_core::parameters::{ParameterWriter, PublishedValues, TimedParameterReader};
use failover_core::ErrorClass;
use serde_json::{json, Value};
use tracing::info;

use crate::domain::{
    failback_readiness, failback_replica_name, replica_readiness, retired_name, reverse_drained, reverse_keeps_up,
    writability, DbInstanceView, FailbackRecord, FailbackStage, LockRecord, Preconditions, Readiness, ReplicaReadiness,
    StreamDrain, Writability,
};
use crate::error::PromoterError;
use crate::failback_config::Placement;
use crate::handler::Promoter;
use crate::invocation::now_ms;
use crate::ports::{
    DbInstances, EvidenceStore, FailbackStore, FailoverLockStore, FenceStore, ReplicaSpec, ReplicationMappings,
};
use crate::request::FailbackStep;
use crate::stages::split_source;

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore + FenceStore + EvidenceStore + FailbackStore,
    P: ParameterWriter + TimedParameterReader,
    M: ReplicationMappings,
{
    /// Runs one failback step for `execution` and answers the step's JSON report.
    pub async fn failback(&self, step: FailbackStep, execution: &str) -> Result<Value, PromoterError> {
        let (failover, readiness, record) = self.failback_preconditions(execution).await?;
        if step == FailbackStep::Check {
            return Ok(self.check_report(&failover, &readiness, record.as_ref()));
        }
        if step == FailbackStep::Abandon {
            return self.abandon(record, execution).await;
        }
        let mut record = match (readiness, record) {
            (Readiness::AlreadyDone, Some(record)) => {
                return Ok(step_report(step, &record, true, "failed back already"))
            }
            (Readiness::InProgress { execution: owner }, _) => {
                return Err(PromoterError::Failback(format!(
                "failover {} is being failed back by execution {owner}; stop that execution first, or let it finish",
                failover.as_ref().map_or("?", |f| f.failover_id.as_str())
            )))
            }
            // Past the switch, the preconditions (the old failover's state) no longer matter:
            // the owner finishes what it started.
            (_, Some(record)) if record.stage >= FailbackStage::Promoting => record,
            (Readiness::Refused(reason), _) => return Err(PromoterError::Failback(reason)),
            // An abandoned failback is taken over by the execution an operator approved.
            (_, Some(mut record)) if !record.owned() && step == FailbackStep::Begin => {
                record.execution = execution.to_owned();
                record
            }
            (_, Some(record)) if !record.owned() => {
                return Err(PromoterError::Failback(format!(
                    "failbackStep {}: the failback of {} was abandoned; an approved execution begins it again",
                    step.as_str(),
                    record.failover_id
                )))
            }
            (_, Some(record)) => record,
            (_, None) if step == FailbackStep::Begin => self.record_failback(failover, execution).await?,
            (_, None) => {
                return Err(PromoterError::Failback(format!(
                    "failbackStep {} before begin: no failback is recorded",
                    step.as_str()
                )))
            }
        };
        let (done, what) = match step {
            FailbackStep::Check | FailbackStep::Abandon => unreachable!("answered above"),
            FailbackStep::Begin => self.create_original_region_replica(&mut record).await?,
            FailbackStep::CheckReplica => self.look_at_new_replica(&mut record).await?,
            FailbackStep::CheckDrained => self.look_drained(&mut record).await?,
            FailbackStep::Promote => self.promote_new_primary(&mut record).await?,
            FailbackStep::CheckWritable => self.look_new_primary_writable(&mut record).await?,
            FailbackStep::Publish => self.publish_new_primary(&mut record).await?,
            FailbackStep::Retire => self.retire_old_writer(&mut record).await?,
            FailbackStep::Reprotect => self.reprotect(&mut record).await?,
        };
        self.save_failback(&mut record).await?;
        info!(step = step.as_str(), stage = record.stage.as_str(), done, %what, "failback step");
        Ok(step_report(step, &record, done, &what))
    }

    /// `abandon`: the plan stopped before the switch and lifted the freeze; its record loses
    /// its owner (and its later stages), so the next approved failback starts over from the
    /// replica. Nothing recorded, or another execution's record: nothing to do.
    async fn abandon(&self, record: Option<FailbackRecord>, execution: &str) -> Result<Value, PromoterError> {
        let Some(mut record) = record.filter(|r| r.execution == execution) else {
            return Ok(
                json!({"failbackStep": "abandon", "done": true, "what": "no failback of this execution is recorded"}),
            );
        };
        if !record.abandon() {
            return Err(PromoterError::Failback(format!(
                "failback of {} is past the promotion ({}): it cannot be given up; finish it by hand",
                record.failover_id,
                record.stage.as_str()
            )));
        }
        self.save_failback(&mut record).await?;
        info!(failover = %record.failover_id, "failback abandoned before the switch");
        Ok(step_report(
            FailbackStep::Abandon,
            &record,
            true,
            &format!(
                "abandoned before the switch; {} stays as a replica in {} (a later failback looks at it again; \
                 delete it if its replication is broken, and failback creates it anew)",
                record.new_primary, record.to_region
            ),
        ))
    }

    /// The latest failover, the verdict on failing it back, and its failback record.
    async fn failback_preconditions(
        &self,
        execution: &str,
    ) -> Result<(Option<LockRecord>, Readiness, Option<FailbackRecord>), PromoterError> {
        let failover = self.lock.latest_published().await?;
        let (fence, existing) = match &failover {
            Some(f) => (
                self.lock.load_fence(&f.failover_id).await?,
                self.lock.load_failback(&f.failover_id).await?,
            ),
            None => (None, None),
        };
        let current_primary = match &failover {
            Some(f) => self.replica_side.describe(&f.replica_id).await?,
            None => None,
        };
        let healthy = self
            .lock
            .observation(&self.config.health_state_key())
            .await?
            .unwrap_or_default()
            .tally(&self.config.source_region)
            .consecutive_successes;
        let readiness = failback_readiness(Preconditions {
            failover: failover.as_ref(),
            current_primary: current_primary.as_ref(),
            fence: fence.as_ref(),
            primary_healthy_checks: healthy,
            required_healthy_checks: self.config.failback.healthy_checks,
            existing: existing.as_ref(),
            execution,
        });
        Ok((failover, readiness, existing))
    }

    /// What the approval message says: the verdict and, when ready, every step it will take.
    fn check_report(
        &self,
        failover: &Option<LockRecord>,
        readiness: &Readiness,
        record: Option<&FailbackRecord>,
    ) -> Value {
        let (verdict, reason) = match readiness {
            Readiness::Ready => ("ready", String::new()),
            Readiness::AlreadyDone => ("already-done", "this failover was failed back already".to_owned()),
            Readiness::InProgress { execution } => ("in-progress", format!("execution {execution} is failing it back")),
            Readiness::Refused(reason) => ("refused", reason.clone()),
        };
        let Some(failover) = failover else {
            return json!({"failbackStep": "check", "readiness": verdict, "reason": reason});
        };
        let planned = record.cloned().unwrap_or_else(|| self.planned_record(failover, ""));
        let what = format!(
            "Failback from {from} to {to}: create read replica {new} of {current} in {to}, wait until it replicates \
             (lag <= {lag} s); freeze writes (maintenance on for both regions' app servers); wait until the replica has \
             applied every write (ReplicaLag 0 measured after the freeze, at most {drain} s); promote {new}; publish it \
             and {to} as active; repoint both fleets (cron in {to} only) and lift maintenance; rename {current} to \
             {retired} and stop it; create read replica {protecting} of {new} in {from}.",
            from = planned.from_region,
            to = planned.to_region,
            new = planned.new_primary,
            current = planned.current_primary,
            lag = self.config.failback.max_replica_lag_seconds,
            drain = self.config.failback.drain_max_wait.as_secs(),
            retired = planned.retired_as,
            protecting = planned.protecting_replica,
        );
        json!({
            "failbackStep": "check",
            "readiness": verdict,
            "reason": reason,
            "failoverId": failover.failover_id,
            "plan": planned,
            "whatWillHappen": what,
        })
    }

    /// The record a failback of `failover` starts with.
    fn planned_record(&self, failover: &LockRecord, execution: &str) -> FailbackRecord {
        let now = now_ms();
        // Names follow from the failover, so the approval message names what begin creates.
        let named_at = failover.published_at_ms.unwrap_or(now);
        // The former source as the replica named it (an id or an ARN).
        let former_primary = failover
            .former_source
            .as_deref()
            .map(|s| split_source(s).0.to_owned())
            .unwrap_or_else(|| failover.replica_id.clone());
        FailbackRecord {
            failover_id: failover.failover_id.clone(),
            execution: execution.to_owned(),
            stage: FailbackStage::Started,
            version: 0,
            from_region: self.config.replica.region.to_string(),
            to_region: self.config.source_region.to_string(),
            current_primary: failover.replica_id.clone(),
            current_primary_arn: String::new(),
            new_primary: failback_replica_name(&former_primary, named_at),
            retired_as: retired_name(&failover.replica_id, named_at),
            protecting_replica: self.config.replica.id.clone(),
            endpoint_address: None,
            endpoint_port: None,
            lag_when_drained: None,
            reverse_drain: None,
            reached_at_ms: [(FailbackStage::Started.as_str().to_owned(), now)].into(),
        }
    }

    /// Records the approved failback (one per failover, conditionally).
    async fn record_failback(
        &self,
        failover: Option<LockRecord>,
        execution: &str,
    ) -> Result<FailbackRecord, PromoterError> {
        let failover = failover.ok_or_else(|| PromoterError::Failback("no completed failover".into()))?;
        let mut record = self.planned_record(&failover, execution);
        record.current_primary_arn = self
            .replica_side
            .describe(&failover.replica_id)
            .await?
            .and_then(|v| v.arn)
            .ok_or_else(|| PromoterError::Failback(format!("{} has no ARN", failover.replica_id)))?;
        if !self.lock.create_failback(&record).await? {
            return Err(PromoterError::FailbackRace {
                failover_id: failover.failover_id,
            });
        }
        Ok(record)
    }

    /// Saves the record, expecting the version it was read at.
    async fn save_failback(&self, record: &mut FailbackRecord) -> Result<(), PromoterError> {
        if !self.lock.save_failback(record).await? {
            return Err(PromoterError::FailbackRace {
                failover_id: record.failover_id.clone(),
            });
        }
        record.version += 1;
        Ok(())
    }

    /// `begin`: CreateDBInstanceReadReplica of the current primary in the original region,
    /// once (a retry finds it).
    async fn create_original_region_replica(
        &self,
        record: &mut FailbackRecord,
    ) -> Result<(bool, String), PromoterError> {
        if record.stage >= FailbackStage::ReplicaRequested {
            return Ok((true, format!("{} requested already", record.new_primary)));
        }
        let spec = self.replica_spec(
            &self.config.failback.primary_placement,
            &record.new_primary,
            &record.current_primary_arn,
            &record.from_region,
        );
        self.create_replica_once(&self.source_side, &spec).await?;
        self.turn_mappings(
            self.config.failback.reverse_replicator.as_deref(),
            self.reverse_mappings.as_ref(),
            true,
        )
        .await?;
        record.advance(FailbackStage::ReplicaRequested, now_ms());
        Ok((
            true,
            format!(
                "CreateDBInstanceReadReplica {} in {} accepted",
                spec.id, record.to_region
            ),
        ))
    }

    async fn create_replica_once<D: DbInstances>(&self, side: &D, spec: &ReplicaSpec) -> Result<(), PromoterError> {
        match side.create_replica(spec).await {
            Ok(()) => Ok(()),
            Err(failure) if failure.has_code("DBInstanceAlreadyExists") => match side.describe(&spec.id).await? {
                Some(view) if view.replica_source.is_some() => Ok(()),
                _ => Err(PromoterError::Failback(format!(
                    "{} exists and is not a read replica: rename or delete it, or choose another name",
                    spec.id
                ))),
            },
            Err(failure) => Err(failure.into()),
        }
    }

    /// Enables (or disables) every mapping of `function`; a missing configuration is nothing to do.
    async fn turn_mappings(&self, function: Option<&str>, mappings: Option<&M>, on: bool) -> Result<(), PromoterError> {
        let (Some(function), Some(mappings)) = (function, mappings) else {
            return Ok(());
        };
        for mapping in mappings.list(function).await? {
            let already = if on { "Enabled" } else { "Disabled" };
            if mapping.state != already {
                if on {
                    mappings.enable(&mapping.uuid).await?;
                } else {
                    mappings.disable(&mapping.uuid).await?;
                }
                info!(%function, uuid = %mapping.uuid, on, "event source mapping turned");
            }
        }
        Ok(())
    }

    /// One look at a replica: ready (within `max_lag`, measured since `since_ms`), not yet
    /// (within `max_wait` of `waited_since_ms`), or broken.
    async fn look_at_replica<D: DbInstances>(
        &self,
        side: &D,
        id: &str,
        since_ms: i64,
        max_lag: f64,
        waited_since_ms: i64,
        max_wait: std::time::Duration,
    ) -> Result<(Option<f64>, String), PromoterError> {
        let view: Option<DbInstanceView> = match side.describe(id).await {
            Ok(view) => view,
            Err(failure) if failure.class == ErrorClass::Retryable => return Ok((None, failure.to_string())),
            Err(failure) => return Err(failure.into()),
        };
        let lag = match side.replica_lag(id).await {
            Ok(lag) => lag,
            Err(failure) if failure.class == ErrorClass::Retryable => Vec::new(),
            Err(failure) => return Err(failure.into()),
        };
        match replica_readiness(view.as_ref(), &lag, since_ms, max_lag) {
            ReplicaReadiness::Ready { lag_seconds } => {
                Ok((Some(lag_seconds), format!("{id}: ReplicaLag {lag_seconds} s")))
            }
            ReplicaReadiness::Broken(reason) => Err(PromoterError::Failback(reason)),
            ReplicaReadiness::NotYet(reason) => {
                let waited = std::time::Duration::from_millis((now_ms() - waited_since_ms).max(0) as u64);
                if waited > max_wait {
                    return Err(PromoterError::Failback(format!(
                        "{reason}, after {} s (limit {} s)",
                        waited.as_secs(),
                        max_wait.as_secs()
                    )));
                }
                Ok((None, reason))
            }
        }
    }

    /// `checkReplica`: the original-region replica replicates within the lag limit.
    async fn look_at_new_replica(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage >= FailbackStage::ReplicaReady {
            return Ok((true, "ready already".into()));
        }
        let id = record.new_primary.clone();
        let requested = record.reached(FailbackStage::ReplicaRequested).unwrap_or_else(now_ms);
        if let Err(behind) = self
            .look_at_reverse(requested, self.config.failback.reprotect_max_wait, |drain| {
                reverse_keeps_up(drain, self.config.failback.max_replica_lag_seconds)
            })
            .await?
        {
            return Ok((false, behind));
        }
        self.look_at_building_replica(
            &self.source_side,
            &id,
            record,
            FailbackStage::ReplicaRequested,
            FailbackStage::ReplicaReady,
        )
        .await
    }

    /// The reverse DynamoDB replicator's drain check judged by `judge`: `Ok(Some(answer))`
    /// when it passes (`Ok(None)`: no reverse replicator is configured), `Err(reason)` while
    /// it does not, an error once `max_wait` has passed since `since_ms`. A check that
    /// cannot be made (the function unreachable) counts as not yet.
    async fn look_at_reverse(
        &self,
        since_ms: i64,
        max_wait: std::time::Duration,
        judge: impl Fn(&StreamDrain) -> Result<(), String>,
    ) -> Result<Result<Option<StreamDrain>, String>, PromoterError> {
        let (Some(function), Some(mappings)) = (
            self.config.failback.reverse_replicator.as_deref(),
            self.reverse_mappings.as_ref(),
        ) else {
            return Ok(Ok(None));
        };
        let reason = match mappings.drain_check(function).await {
            Ok(drain) => match judge(&drain) {
                Ok(()) => return Ok(Ok(Some(drain))),
                Err(reason) => reason,
            },
            Err(failure) if failure.class == ErrorClass::Retryable => failure.to_string(),
            Err(failure) => return Err(failure.into()),
        };
        let waited = std::time::Duration::from_millis((now_ms() - since_ms).max(0) as u64);
        if waited > max_wait {
            return Err(PromoterError::Failback(format!(
                "{reason}, after {} s (limit {} s)",
                waited.as_secs(),
                max_wait.as_secs()
            )));
        }
        Ok(Err(reason))
    }

    /// One look at a replica requested when `record` reached `requested`: once it replicates
    /// within FAILBACK_MAX_REPLICA_LAG_SECONDS the record advances to `ready`; past
    /// REPROTECT_MAX_WAIT_SECONDS since the request it fails.
    async fn look_at_building_replica<D: DbInstances>(
        &self,
        side: &D,
        id: &str,
        record: &mut FailbackRecord,
        requested: FailbackStage,
        ready: FailbackStage,
    ) -> Result<(bool, String), PromoterError> {
        let since = record.reached(requested).unwrap_or_else(now_ms);
        let (lag, what) = self
            .look_at_replica(
                side,
                id,
                0,
                self.config.failback.max_replica_lag_seconds,
                since,
                self.config.failback.reprotect_max_wait,
            )
            .await?;
        if lag.is_some() {
            record.advance(ready, now_ms());
        }
        Ok((lag.is_some(), what))
    }

    /// A replica of `source_arn` named `id`, placed as `placement` says.
    fn replica_spec(&self, placement: &Placement, id: &str, source_arn: &str, source_region: &str) -> ReplicaSpec {
        ReplicaSpec {
            id: id.to_owned(),
            source_arn: source_arn.to_owned(),
            source_region: source_region.to_owned(),
            instance_class: self.config.failback.instance_class.clone(),
            subnet_group: placement.subnet_group.clone(),
            parameter_group: placement.parameter_group.clone(),
            kms_key_id: placement.kms_key_id.clone(),
        }
    }

    /// `checkDrained`: the plan calls it once writes are frozen; drained when a `ReplicaLag`
    /// of 0 was measured in a period that began after the first call (the freeze).
    async fn look_drained(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage >= FailbackStage::Drained {
            return Ok((true, "drained already".into()));
        }
        if record.stage < FailbackStage::ReplicaReady {
            return Err(PromoterError::Failback(
                "checkDrained before the new replica was ready".into(),
            ));
        }
        record.advance(FailbackStage::Draining, now_ms());
        let since = record.reached(FailbackStage::Draining).unwrap_or_else(now_ms);
        let (lag, what) = self
            .look_at_replica(
                &self.source_side,
                &record.new_primary,
                since,
                0.0,
                since,
                self.config.failback.drain_max_wait,
            )
            .await?;
        let Some(lag) = lag else {
            return Ok((false, what));
        };
        let reverse = match self
            .look_at_reverse(since, self.config.failback.drain_max_wait, reverse_drained)
            .await?
        {
            Ok(reverse) => reverse,
            Err(pending) => return Ok((false, format!("{what}; {pending}"))),
        };
        record.lag_when_drained = Some(lag);
        record.reverse_drain = reverse;
        record.advance(FailbackStage::Drained, now_ms());
        let dynamodb = record.reverse_drain.as_ref().map_or(String::new(), |d| {
            format!(
                "; DynamoDB: {} keys written in the outage back in the primary table, none pending",
                d.keys_in_target
            )
        });
        Ok((true, format!("{what}{dynamodb}")))
    }

    /// `promote`: PromoteReadReplica of the drained replica, once.
    async fn promote_new_primary(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage >= FailbackStage::Promoting {
            return Ok((true, "promoted already".into()));
        }
        if record.stage < FailbackStage::Drained {
            return Err(PromoterError::Failback(format!(
                "promote refused: {} has not been seen drained after the write freeze (stage {})",
                record.new_primary,
                record.stage.as_str()
            )));
        }
        match self
            .source_side
            .promote(&record.new_primary, self.config.backup_retention_days)
            .await
        {
            Ok(()) => {}
            Err(failure) if failure.has_code("InvalidDBInstanceState") => {
                let detached = self
                    .source_side
                    .describe(&record.new_primary)
                    .await?
                    .is_some_and(|v| v.replica_source.is_none());
                if !detached {
                    return Err(failure.into());
                }
            }
            Err(failure) => return Err(failure.into()),
        }
        record.advance(FailbackStage::Promoting, now_ms());
        Ok((true, format!("PromoteReadReplica {} accepted", record.new_primary)))
    }

    /// `checkWritable`: one look at the new primary.
    async fn look_new_primary_writable(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage >= FailbackStage::Writable {
            return Ok((true, "writable already".into()));
        }
        let view = self.source_side.describe(&record.new_primary).await?;
        let verdict = view.as_ref().map(writability);
        match verdict {
            Some(Writability::Writable { address, port }) => {
                record.endpoint_address = Some(address);
                record.endpoint_port = Some(port);
                record.advance(FailbackStage::Writable, now_ms());
                Ok((true, "writable".into()))
            }
            other => {
                let reason = match other {
                    Some(Writability::NotYet(reason)) => reason,
                    _ => format!("{} not found", record.new_primary),
                };
                let since = record.reached(FailbackStage::Promoting).unwrap_or_else(now_ms);
                if now_ms() - since > self.config.promotion_max_wait.as_millis() as i64 {
                    return Err(PromoterError::Failback(format!(
                        "{} not writable within PROMOTION_MAX_WAIT_SECONDS: {reason}",
                        record.new_primary
                    )));
                }
                Ok((false, reason))
            }
        }
    }

    /// `publish`: db-host, db-port, then the original region as active; the stream
    /// directions swap (reverse off, forward on: its stranded records are reconciled).
    async fn publish_new_primary(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage < FailbackStage::Writable {
            return Err(PromoterError::Failback(
                "publish before the new primary was writable".into(),
            ));
        }
        let values = PublishedValues {
            db_host: record.endpoint_address.clone().unwrap_or_default(),
            db_port: record.endpoint_port.unwrap_or(3306),
            active_region: record.to_region.clone(),
        };
        for (name, value) in self.config.parameters.pairs(&values) {
            self.parameters.put(&name, &value).await?;
        }
        self.turn_mappings(
            self.config.failback.reverse_replicator.as_deref(),
            self.reverse_mappings.as_ref(),
            false,
        )
        .await?;
        self.turn_mappings(self.config.forward_replicator.as_deref(), Some(&self.mappings), true)
            .await?;
        record.advance(FailbackStage::Published, now_ms());
        Ok((
            true,
            format!(
                "{}:{} and {} published",
                values.db_host, values.db_port, values.active_region
            ),
        ))
    }

    /// `retire`: renames the old writer (its endpoint stops resolving and its identifier is
    /// free for the new replica), then stops it. Deleting it is the operator's choice.
    async fn retire_old_writer(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage < FailbackStage::Published {
            return Err(PromoterError::Failback(
                "retire before the new primary was published".into(),
            ));
        }
        if record.stage >= FailbackStage::Reprotecting {
            return Ok((true, "retired already".into()));
        }
        record.advance(FailbackStage::Retiring, now_ms());
        let old = self.replica_side.describe(&record.current_primary).await?;
        if let Some(view) = old.filter(|v| v.replica_source.is_none()) {
            if view.status == "available" {
                self.replica_side
                    .rename(&record.current_primary, &record.retired_as)
                    .await?;
                return Ok((
                    false,
                    format!("renaming {} to {}", record.current_primary, record.retired_as),
                ));
            }
            return Ok((false, format!("{} is {}", record.current_primary, view.status)));
        }
        match self.replica_side.describe(&record.retired_as).await? {
            Some(view) if view.status == "available" => {
                self.replica_side.stop(&record.retired_as).await?;
                Ok((true, format!("{} renamed and stopping", record.retired_as)))
            }
            Some(view) if matches!(view.status.as_str(), "stopping" | "stopped") => {
                Ok((true, format!("{} is {}", record.retired_as, view.status)))
            }
            Some(view) => Ok((false, format!("{} is {}", record.retired_as, view.status))),
            None => Ok((false, format!("{} not visible yet", record.retired_as))),
        }
    }

    /// `reprotect`: creates the replica of the new primary in the failover region under the
    /// configured replica id (once), then looks until it replicates: the shop is protected.
    async fn reprotect(&self, record: &mut FailbackRecord) -> Result<(bool, String), PromoterError> {
        if record.stage == FailbackStage::Done {
            return Ok((true, "protected already".into()));
        }
        if record.stage < FailbackStage::Retiring {
            return Err(PromoterError::Failback(
                "reprotect before the old writer was retired".into(),
            ));
        }
        if record.stage < FailbackStage::Reprotecting {
            let new_primary_arn = self
                .source_side
                .describe(&record.new_primary)
                .await?
                .and_then(|v| v.arn)
                .ok_or_else(|| PromoterError::Failback(format!("{} has no ARN", record.new_primary)))?;
            let spec = self.replica_spec(
                &self.config.failback.replica_placement,
                &record.protecting_replica,
                &new_primary_arn,
                &record.to_region,
            );
            self.create_replica_once(&self.replica_side, &spec).await?;
            record.advance(FailbackStage::Reprotecting, now_ms());
            return Ok((
                false,
                format!(
                    "CreateDBInstanceReadReplica {} in {} accepted",
                    spec.id, record.from_region
                ),
            ));
        }
        let id = record.protecting_replica.clone();
        self.look_at_building_replica(
            &self.replica_side,
            &id,
            record,
            FailbackStage::Reprotecting,
            FailbackStage::Done,
        )
        .await
    }
}

/// A step's answer: whether it is done (the plan's Choice reads `done`), what it found, and
/// the record (stage, names, times: the plan report is made from the last one).
fn step_report(step: FailbackStep, record: &FailbackRecord, done: bool, what: &str) -> Value {
    json!({
        "failbackStep": step.as_str(),
        "done": done,
        "stage": record.stage.as_str(),
        "what": what,
        "failback": record,
        "endpoint": {"address": record.endpoint_address, "port": record.endpoint_port},
        "activeRegion": if record.stage >= FailbackStage::Published { &record.to_region } else { &record.from_region },
    })
}
