//! The promotion flow: policy, lock, guards, PromoteReadReplica, wait, publish.

use std::time::{Duration, Instant};

use failover_core::alarm::{AlarmTransition, Verdict};
use failover_core::emf::{MetricLine, Unit};
use failover_core::error::ErrorClass;
use failover_core::ports::{DbInstances, FailoverLockStore, ParameterWriter};
use failover_core::promotion::{
    guard_replica, split_brain_verdict, writability, Claim, DbInstanceView, LockRecord, PublishedValues, ReplicaGuard,
    SourceProbe, SplitBrainVerdict, Stage, Writability,
};
use failover_core::retry::{Backoff, Deadline};
use failover_core::{AwsFailure, FailoverError};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::PromoterConfig;
use crate::outcome::{Action, Endpoint, Outcome};

/// Who is invoking and until when.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The Lambda request id (the lock owner).
    pub request_id: String,
    /// When this invocation must have returned (margin already subtracted).
    pub deadline: Deadline,
    /// The same deadline in epoch milliseconds (the lock lease).
    pub lease_until_ms: i64,
}

impl Invocation {
    /// From the Lambda context, keeping `margin` to release the lock and report.
    pub fn from_context(context: &lambda_runtime::Context, margin: Duration) -> Self {
        let deadline = failover_core::retry::normalize_lambda_deadline(context.deadline());
        let lease_until_ms = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self {
            request_id: context.request_id.clone(),
            deadline: Deadline::from_lambda(deadline, margin),
            lease_until_ms,
        }
    }
}

/// The rds-promoter handler, generic over its AWS dependencies.
pub struct Promoter<R, S, L, P> {
    config: PromoterConfig,
    replica_side: R,
    source_side: S,
    lock: L,
    parameters: P,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl<R, S, L, P> Promoter<R, S, L, P>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore,
    P: ParameterWriter,
{
    /// Wires the handler: `replica_side` talks to the replica's region, `source_side` to
    /// the primary region (with short timeouts), `lock` to the state table.
    pub fn new(config: PromoterConfig, replica_side: R, source_side: S, lock: L, parameters: P) -> Self {
        Self {
            config,
            replica_side,
            source_side,
            lock,
            parameters,
        }
    }

    /// [`Self::handle`], plus the summary log line, EMF metrics, and the JSON result.
    pub async fn handle_and_report(&self, payload: Value, invocation: &Invocation) -> Result<Value, FailoverError> {
        match self.handle(payload, invocation).await {
            Ok(outcome) => {
                let json = serde_json::to_value(&outcome).unwrap_or_default();
                info!(outcome = %json, "rds-promoter finished");
                outcome.metric_line().emit();
                Ok(json)
            }
            Err(err) => {
                error!(error = %err, error_type = err.class().as_str(), "rds-promoter failed");
                MetricLine::new("ShopFailover")
                    .dimension("Function", "rds-promoter")
                    .metric("Errors", 1.0, Unit::Count)
                    .property("ErrorType", err.class().as_str())
                    .emit();
                Err(err)
            }
        }
    }

    /// Handles one event (EventBridge alarm state change or direct alarm-action payload).
    pub async fn handle(&self, payload: Value, invocation: &Invocation) -> Result<Outcome, FailoverError> {
        let started = Instant::now();
        let transition =
            AlarmTransition::from_value(payload).map_err(|e| FailoverError::InvalidEvent(e.to_string()))?;
        if let Verdict::Ignored { reason } = self.config.policy.evaluate(&transition) {
            info!(alarm = %transition.alarm_name, %reason, "transition ignored");
            let mut outcome = Outcome::new(Action::Ignored, &transition.alarm_name);
            outcome.ignored_because = Some(reason);
            return Ok(outcome);
        }
        let mut outcome = if self.config.dry_run {
            self.dry_run(&transition).await?
        } else {
            self.fail_over(&transition, invocation).await?
        };
        outcome.timings.invocation_ms = started.elapsed().as_millis() as u64;
        Ok(outcome)
    }

    /// Takes (or resumes) the lock, runs the remaining stages, and always releases the lease.
    async fn fail_over(&self, transition: &AlarmTransition, invocation: &Invocation) -> Result<Outcome, FailoverError> {
        let failover_id = transition.failover_id();
        let fresh = LockRecord::new(
            &failover_id,
            &self.config.replica.id,
            &invocation.request_id,
            now_ms(),
            invocation.lease_until_ms,
        );
        let (mut record, resumed) = if self.lock.create(&fresh).await? {
            info!(%failover_id, "failover lock taken");
            (fresh, false)
        } else {
            let existing = self.lock.load(&failover_id).await?.ok_or_else(|| {
                FailoverError::NotReady(format!("lock for {failover_id} exists but could not be read"))
            })?;
            match existing.claim(&invocation.request_id, now_ms()) {
                Claim::Finished => return Ok(self.report(transition, &existing, Action::AlreadyComplete, None)),
                Claim::HeldElsewhere { owner, lease_until_ms } => {
                    return Err(FailoverError::NotReady(format!(
                        "failover {failover_id} is being handled by invocation {owner} (lease until {}); this delivery changes nothing and can be retried",
                        chrono::DateTime::from_timestamp_millis(lease_until_ms).map(|t| t.to_rfc3339()).unwrap_or_default()
                    )))
                }
                Claim::TakeOver => {
                    if !self.lock.take_over(&existing, &invocation.request_id, invocation.lease_until_ms).await? {
                        return Err(FailoverError::NotReady(format!(
                            "another invocation took over failover {failover_id} first"
                        )));
                    }
                    info!(%failover_id, stage = existing.stage.as_str(), "resuming failover");
                    let mut record = existing;
                    record.owner = invocation.request_id.clone();
                    record.lease_until_ms = invocation.lease_until_ms;
                    (record, true)
                }
            }
        };
        let result = self.run_stages(transition, &mut record, invocation, resumed).await;
        record.lease_until_ms = 0;
        if let Err(e) = self.lock.save(&record).await {
            warn!(%failover_id, error = %e, "could not release the lock lease; it lapses at the invocation deadline");
        }
        result
    }

    /// Advances the record stage by stage until published.
    async fn run_stages(
        &self,
        transition: &AlarmTransition,
        record: &mut LockRecord,
        invocation: &Invocation,
        resumed: bool,
    ) -> Result<Outcome, FailoverError> {
        let mut action = if resumed { Action::Resumed } else { Action::Promoted };
        let mut split_brain = None;
        // Bounded: each pass moves the stage forward or returns.
        for _ in 0..4 {
            match record.stage {
                Stage::Requested => {
                    let (next_action, verdict) = self.promote_once(transition, record).await?;
                    action = if resumed { Action::Resumed } else { next_action };
                    split_brain = verdict;
                    self.save(record).await?;
                }
                Stage::Promoting => {
                    let (address, port) = self.wait_until_writable(invocation.deadline).await?;
                    record.endpoint_address = Some(address);
                    record.endpoint_port = Some(port);
                    record.writable_at_ms = Some(now_ms());
                    record.stage = Stage::Writable;
                    self.save(record).await?;
                }
                Stage::Writable => {
                    self.publish(record).await?;
                    record.published_at_ms = Some(now_ms());
                    record.stage = Stage::Published;
                    self.save(record).await?;
                }
                Stage::Published => break,
            }
        }
        Ok(self.report(transition, record, action, split_brain))
    }

    /// Stage `Requested`: check the replica and the source, then promote, exactly once.
    async fn promote_once(
        &self,
        transition: &AlarmTransition,
        record: &mut LockRecord,
    ) -> Result<(Action, Option<SplitBrainVerdict>), FailoverError> {
        let replica_id = &self.config.replica.id;
        let view = self.describe_replica().await?;
        match guard_replica(&view) {
            ReplicaGuard::AlreadyPromoted => {
                info!(replica = %replica_id, status = %view.status, "replica is no longer a read replica; publishing its endpoint");
                record.stage = Stage::Promoting;
                Ok((Action::AlreadyPromoted, None))
            }
            ReplicaGuard::Busy { status } => Err(FailoverError::NotReady(format!(
                "read replica {replica_id} is {status}; it can only be promoted once it is available"
            ))),
            ReplicaGuard::Promotable { source } => {
                let verdict = self.check_split_brain(transition, &source).await;
                match &verdict {
                    SplitBrainVerdict::Refuse { reason } => return Err(FailoverError::Refused(reason.clone())),
                    SplitBrainVerdict::Undecided { reason } => return Err(FailoverError::NotReady(reason.clone())),
                    SplitBrainVerdict::Proceed { .. } => {}
                }
                record.former_source = Some(source);
                // Two allowed alarms are two failover ids: only one of them may promote.
                if let Some(holder) = self
                    .lock
                    .claim_replica(&view.incarnation(), &record.failover_id, record.lease_until_ms)
                    .await?
                {
                    return Err(FailoverError::NotReady(format!(
                        "read replica {replica_id} is being promoted by failover {holder}; a retry of this one publishes the endpoint once that promotion has detached the replica"
                    )));
                }
                match self
                    .replica_side
                    .promote(replica_id, self.config.backup_retention_days)
                    .await
                {
                    Ok(()) => info!(replica = %replica_id, "PromoteReadReplica accepted"),
                    Err(failure) if failure.has_code("InvalidDBInstanceState") => {
                        // An earlier attempt's promote may have been accepted just before it died.
                        self.confirm_promotion_under_way(&failure).await?;
                    }
                    Err(failure) => return Err(failure.into()),
                }
                record.promote_requested_at_ms = Some(now_ms());
                record.stage = Stage::Promoting;
                Ok((Action::Promoted, Some(verdict)))
            }
        }
    }

    /// After `InvalidDBInstanceState`, proceeds only once the replica is detached from its
    /// source. A busy replica that still has a source may have refused the promote for its
    /// own reasons (backing-up, modifying), so the stage stays `Requested` and a retry looks again.
    async fn confirm_promotion_under_way(&self, failure: &AwsFailure) -> Result<(), FailoverError> {
        let replica_id = &self.config.replica.id;
        let view = self.describe_replica().await?;
        match (&view.replica_source, view.status.as_str()) {
            (None, _) => {
                info!(replica = %replica_id, status = %view.status, "replica already detached from its source");
                Ok(())
            }
            (Some(_), "available") => Err(failure.clone().into()),
            (Some(source), status) => Err(FailoverError::NotReady(format!(
                "PromoteReadReplica was refused while read replica {replica_id} is {status} and still replicates from {source}; a retry promotes it once it is available, or finds it already detached ({failure})"
            ))),
        }
    }

    /// The replica's current description; a missing replica is a permanent error naming it.
    async fn describe_replica(&self) -> Result<DbInstanceView, FailoverError> {
        self.replica_side
            .describe(&self.config.replica.id)
            .await?
            .ok_or_else(|| self.replica_not_found())
    }

    fn replica_not_found(&self) -> FailoverError {
        FailoverError::Aws(AwsFailure {
            operation: "DescribeDBInstances",
            code: Some("DBInstanceNotFound".into()),
            message: format!(
                "read replica {} not found in {}: check REPLICA_IDENTIFIER and REPLICA_REGION",
                self.config.replica.id, self.config.replica.region
            ),
            class: ErrorClass::NonRetryable,
        })
    }

    /// Looks at the source primary in its own region, within the probe timeout.
    async fn probe_source(&self, source: &str) -> SourceProbe {
        if !self.config.split_brain_guard {
            return SourceProbe::Skipped;
        }
        let (source_id, source_region) = split_source(source);
        if let Some(region) = source_region.filter(|r| *r != self.config.source_region.as_str()) {
            return SourceProbe::Unknown {
                error: format!(
                    "the source is in {region} but PRIMARY_REGION is {}",
                    self.config.source_region
                ),
            };
        }
        match tokio::time::timeout(self.config.source_probe_timeout, self.source_side.describe(source_id)).await {
            Err(_) => SourceProbe::Unreachable {
                error: format!("no answer within {:?}", self.config.source_probe_timeout),
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

    async fn check_split_brain(&self, transition: &AlarmTransition, source: &str) -> SplitBrainVerdict {
        let probe = self.probe_source(source).await;
        let verdict = split_brain_verdict(&probe, source, self.config.is_authoritative(&transition.alarm_name));
        info!(?probe, ?verdict, "split-brain guard");
        verdict
    }

    /// Polls until writable, with growing jittered pauses, until the wait budget runs out.
    async fn wait_until_writable(&self, invocation_deadline: Deadline) -> Result<(String, u16), FailoverError> {
        let replica_id = &self.config.replica.id;
        let deadline = invocation_deadline.min(Deadline::after(self.config.max_wait));
        let backoff = Backoff {
            base: self.config.poll_initial,
            cap: self.config.poll_max,
            max_attempts: u32::MAX,
        };
        let started = Instant::now();
        for polls in 1..=u32::MAX {
            let last_reason = match self.replica_side.describe(replica_id).await {
                Ok(Some(view)) => match writability(&view) {
                    Writability::Writable { address, port } => {
                        info!(replica = %replica_id, polls, waited_ms = started.elapsed().as_millis() as u64, "replica is writable");
                        return Ok((address, port));
                    }
                    Writability::NotYet(reason) => reason,
                },
                Ok(None) => {
                    return Err(FailoverError::Refused(format!(
                        "read replica {replica_id} disappeared while it was being promoted"
                    )))
                }
                Err(failure) if failure.class == ErrorClass::Retryable => failure.to_string(),
                Err(failure) => return Err(failure.into()),
            };
            // Equal jitter: never poll in a tight loop, never all at the same instant.
            let delay = backoff.ceiling(polls).mul_f64(0.5 + 0.5 * fastrand::f64());
            if delay >= deadline.remaining() {
                return Err(FailoverError::DeadlineExceeded(format!(
                    "read replica {replica_id} not writable after {:.1}s and {polls} status checks ({last_reason}); a retry resumes waiting without promoting again",
                    started.elapsed().as_secs_f64()
                )));
            }
            tokio::time::sleep(delay).await;
        }
        unreachable!("the poll loop returns before u32::MAX polls")
    }

    /// Stage `Writable`: writes host, port and active region, active region last.
    async fn publish(&self, record: &LockRecord) -> Result<(), FailoverError> {
        let values = PublishedValues {
            db_host: record.endpoint_address.clone().ok_or_else(|| {
                FailoverError::Refused(format!(
                    "lock for {} is writable but has no endpoint",
                    record.failover_id
                ))
            })?,
            db_port: record.endpoint_port.unwrap_or(3306),
            active_region: self.config.replica.region.to_string(),
        };
        for (name, value) in self.config.parameters.pairs(&values) {
            self.parameters.put(&name, &value).await?;
            info!(parameter = %name, "published");
        }
        Ok(())
    }

    async fn save(&self, record: &LockRecord) -> Result<(), FailoverError> {
        if self.lock.save(record).await? {
            Ok(())
        } else {
            Err(FailoverError::NotReady(format!(
                "lost the lock for {} to another invocation; it continues from stage {}",
                record.failover_id,
                record.stage.as_str()
            )))
        }
    }

    /// Dry run: every read-only check, no lock, no promotion, no parameter write.
    async fn dry_run(&self, transition: &AlarmTransition) -> Result<Outcome, FailoverError> {
        let failover_id = transition.failover_id();
        let replica_id = &self.config.replica.id;
        let mut outcome = Outcome::new(Action::DryRun, &transition.alarm_name);
        outcome.failover_id = Some(failover_id.clone());
        outcome.replica = Some(replica_id.clone());
        outcome.active_region = Some(self.config.replica.region.to_string());
        if let Some(existing) = self.lock.load(&failover_id).await? {
            outcome.stage = Some(existing.stage);
            outcome.plan.push(format!(
                "failover already recorded at stage {}",
                existing.stage.as_str()
            ));
        }
        let view = self.describe_replica().await?;
        match guard_replica(&view) {
            ReplicaGuard::AlreadyPromoted => outcome
                .plan
                .push(format!("{replica_id} is no longer a read replica: would not promote")),
            ReplicaGuard::Busy { status } => {
                outcome.plan.push(format!(
                    "{replica_id} is {status}: would fail with a retryable error and try again later"
                ));
                return Ok(outcome);
            }
            ReplicaGuard::Promotable { source } => {
                let verdict = self.check_split_brain(transition, &source).await;
                outcome.former_source = Some(source);
                match &verdict {
                    SplitBrainVerdict::Refuse { reason } => {
                        outcome.plan.push(format!("would refuse: {reason}"));
                        outcome.split_brain = Some(verdict);
                        return Ok(outcome);
                    }
                    SplitBrainVerdict::Undecided { reason } => {
                        outcome
                            .plan
                            .push(format!("would fail with a retryable error and look again: {reason}"));
                        outcome.split_brain = Some(verdict);
                        return Ok(outcome);
                    }
                    SplitBrainVerdict::Proceed { .. } => {}
                }
                outcome.plan.push(format!(
                    "would call PromoteReadReplica {replica_id} (BackupRetentionPeriod={}) in {}",
                    self.config.backup_retention_days, self.config.replica.region
                ));
                outcome.split_brain = Some(verdict);
            }
        }
        outcome.plan.push(format!(
            "would wait up to {}s for {replica_id} to be writable",
            self.config.max_wait.as_secs()
        ));
        let names = &self.config.parameters;
        outcome.plan.push(format!(
            "would publish {}, {} and {} = {}",
            names.db_host(),
            names.db_port(),
            names.active_region(),
            self.config.replica.region
        ));
        Ok(outcome)
    }

    fn report(
        &self,
        transition: &AlarmTransition,
        record: &LockRecord,
        action: Action,
        split_brain: Option<SplitBrainVerdict>,
    ) -> Outcome {
        let mut outcome = Outcome::new(action, &transition.alarm_name);
        outcome.failover_id = Some(record.failover_id.clone());
        outcome.replica = Some(record.replica_id.clone());
        outcome.active_region = Some(self.config.replica.region.to_string());
        outcome.former_source = record.former_source.clone();
        outcome.split_brain = split_brain;
        outcome.stage = Some(record.stage);
        outcome.endpoint = record
            .endpoint_address
            .clone()
            .zip(record.endpoint_port)
            .map(|(address, port)| Endpoint { address, port });
        if record.stage == Stage::Published && action != Action::AlreadyComplete {
            let names = &self.config.parameters;
            outcome.published = vec![names.db_host(), names.db_port(), names.active_region()];
        }
        outcome.timings.promote_to_writable_ms = record
            .promote_requested_at_ms
            .zip(record.writable_at_ms)
            .map(|(a, b)| b - a);
        outcome.timings.failover_ms = record.published_at_ms.map(|p| p - record.created_at_ms);
        outcome
    }
}

/// `arn:aws:rds:<region>:<account>:db:<id>` → (`id`, `Some(region)`); a bare id → (`id`, `None`).
fn split_source(source: &str) -> (&str, Option<&str>) {
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
