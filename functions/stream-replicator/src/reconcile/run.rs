//! Reconciling a batch of stranded records: read the target's current items, judge each
//! key ([`verdict`]), write only the stranded changes that are newer (guarded writes, so a
//! race with the authoritative side is still decided by version), and log every loser to
//! the conflict log. A conflict counts as done once it is logged; one that cannot be
//! logged is not done, and Lambda delivers it again.

use std::time::{Duration, Instant};

use failover_core::retry::{retry, Deadline};
use failover_core::{AwsFailure, ConfigError, FailoverError};

use crate::apply::checkpoint::Outcome;
use crate::apply::engine::Applied;
use crate::config::SourceAuthority;
use crate::dead_letter::envelope::Envelope;
use crate::domain::item::Attributes;
use crate::event::dynamo_json::Image;
use crate::handler::Replicator;
use crate::plan::decide::{Action, SkipReason};
use crate::plan::Work;
use crate::ports::{DeadLetterStore, ItemReader, ItemWriter};
use crate::reconcile::conflict::{Conflict, CONFLICT_FORMAT};
use crate::reconcile::decide::{verdict, Verdict};
use crate::reconcile::direction::{flow, Direction, Flow};

/// How long a read of the active region is trusted: a switch reaches the replicator within
/// this time, and Parameter Store sees at most one read per container per period.
pub const DIRECTION_TTL: Duration = Duration::from_secs(10);
use failover_core::parameters::ParameterHistoryReader;

/// A key that lost to the target: its index, the stranded change, the target's item, why.
struct Lost {
    index: usize,
    stranded: Work,
    target: Option<Attributes>,
    reason: String,
}

impl<W, R, D, P> Replicator<W, R, D, P>
where
    W: ItemWriter + ItemReader,
    R: ItemReader,
    D: DeadLetterStore,
    P: ParameterHistoryReader,
{
    /// Reconciles `works` (one batch of stranded records) against the target; the result is
    /// what a normal apply returns, conflicts logged and counted as `Skipped(Conflict)`.
    pub(crate) async fn reconcile(
        &self,
        works: &mut [Work],
        first_sequence: impl Fn(usize) -> String,
        deadline: Deadline,
    ) -> Applied {
        let targets = match self.engine_reading(&self.writer, deadline).read_current(works).await {
            Ok(targets) => targets,
            Err(failure) => return Applied::failed(works.len(), failure),
        };
        let mode = &self.config.mode;
        let marker = self.config.marker_attribute.as_str();
        let mut lost = Vec::new();
        let mut applied = self
            .engine(deadline)
            .run_judged(works, |works| {
                for (index, (work, target)) in works.iter_mut().zip(&targets).enumerate() {
                    let target = target.as_ref();
                    match verdict(&work.action, target, mode, marker) {
                        Verdict::Apply | Verdict::AsPlanned => {}
                        Verdict::AlreadyInTarget => work.action = Action::Skip(SkipReason::AlreadyInTarget),
                        Verdict::Conflict(reason) => {
                            lost.push(Lost {
                                index,
                                stranded: work.clone(),
                                target: target.cloned(),
                                reason: reason.into(),
                            });
                            work.action = Action::Skip(SkipReason::Conflict);
                        }
                    }
                }
            })
            .await;
        // A guarded write the target refused: the target became newer meanwhile.
        for (index, outcome) in applied.outcomes.iter().enumerate() {
            if *outcome == Outcome::Skipped(SkipReason::Stale) {
                lost.push(Lost {
                    index,
                    stranded: works[index].clone(),
                    target: None,
                    reason: "the target's version was newer when the write was tried".into(),
                });
            }
        }
        for conflict in lost {
            let outcome = self
                .log_conflict(&conflict, &first_sequence(conflict.index), deadline)
                .await;
            applied.outcomes[conflict.index] = outcome;
        }
        applied
    }

    /// The flow of a batch, from the published active region and since when it is active
    /// (read at most every [`DIRECTION_TTL`]; a read that fails refuses the batch as
    /// retryable, so no record is ever applied without knowing which side is the authority).
    pub(crate) async fn flow(&self) -> Result<Flow, FailoverError> {
        let Some(parameter) = &self.config.active_region else {
            return Ok(Flow {
                direction: Direction::Replicate,
                copies_before_ms: None,
            });
        };
        if let Some((at, flow)) = *self.direction_cache.lock().expect("direction cache") {
            if at.elapsed() < DIRECTION_TTL {
                return Ok(flow);
            }
        }
        let held = retry(
            self.backoff,
            Deadline::after(Duration::from_secs(10)),
            |e: &AwsFailure| e.class,
            |_| self.active_region.held_since(&parameter.name),
        )
        .await
        .map_err(|e| FailoverError::Aws(e.into_inner()))?;
        let found = flow(
            held.as_ref().map(|h| h.value.as_str()),
            held.as_ref().and_then(|h| h.since_ms),
            parameter.authority == SourceAuthority::WhileActive,
            self.config.source_region.as_str(),
            self.config.target_region.as_str(),
        )
        .map_err(|problem| {
            FailoverError::Config(ConfigError::Inconsistent {
                vars: "PARAMETER_PREFIX, SOURCE_REGION, TARGET_REGION".into(),
                problem,
            })
        })?;
        *self.direction_cache.lock().expect("direction cache") = Some((Instant::now(), found));
        Ok(found)
    }

    /// The direction of a batch (see [`Replicator::flow`]).
    pub(crate) async fn direction(&self) -> Result<Direction, FailoverError> {
        self.flow().await.map(|flow| flow.direction)
    }

    /// Writes one conflict to the log; `Skipped(Conflict)` once it is there.
    async fn log_conflict(&self, lost: &Lost, first_sequence: &str, deadline: Deadline) -> Outcome {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let Some(stranded) = Envelope::of(
            &lost.stranded,
            first_sequence,
            lost.reason.clone(),
            self.route(),
            now_ms,
        ) else {
            return Outcome::NotDurable;
        };
        let conflict = Conflict {
            format: CONFLICT_FORMAT.into(),
            stranded,
            target: lost.target.clone().map(Image),
            reason: lost.reason.clone(),
        };
        let key = conflict.object_key(&self.config.dead_letter.conflict_prefix);
        match self.sender(deadline).put(&key, conflict.to_json()).await {
            Ok(()) => {
                tracing::warn!(sequence = %lost.stranded.sequence, object = %key, reason = %lost.reason,
                    "stranded change lost to the target; logged as a conflict");
                Outcome::Skipped(SkipReason::Conflict)
            }
            Err(e) => {
                tracing::warn!(sequence = %lost.stranded.sequence, error = %e,
                    "the conflict could not be logged; Lambda delivers the change again");
                Outcome::NotDurable
            }
        }
    }
}
