//! The handler: one stream batch in, the target updated, what cannot be written in the
//! dead-letter bucket, and `batchItemFailures` naming where Lambda must resume.
//! `Replicator::replicate_payload` is the whole pipeline, one step after the other: parse
//! and plan (one pass over the payload) → apply → dead-letter → report. A `{"redrive": …}`
//! event replays the dead letters instead (`dead_letter/redrive.rs`).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use failover_core::retry::{Backoff, Deadline};
use failover_core::FailoverError;
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::apply::batching::BatchLimits;
use crate::apply::checkpoint::{resume_index, tally};
use crate::config::ReplicatorConfig;
use crate::dead_letter::redrive::RedriveRequest;
use crate::domain::key::KeySchema;
use crate::error::EventError;
use crate::plan::marker::OriginMarker;
use crate::plan::{BatchPlan, PlanPhase};
use crate::ports::{DeadLetterStore, ItemReader, ItemWriter, NoActiveRegion};
use crate::reconcile::direction::{Direction, Flow};
use crate::report::{batch_span, lambda_response, BatchReport, HandledBatch, Response};
use failover_core::parameters::ParameterHistoryReader;

/// The replicator, built once at init and shared by every invocation.
#[derive(Debug)]
pub struct Replicator<W, R, D, P = NoActiveRegion> {
    pub(crate) config: ReplicatorConfig,
    pub(crate) schema: KeySchema,
    pub(crate) marker: OriginMarker,
    pub(crate) writer: W,
    pub(crate) reader: R,
    pub(crate) dead_letter: D,
    pub(crate) active_region: P,
    pub(crate) direction_cache: std::sync::Mutex<Option<(std::time::Instant, Flow)>>,
    pub(crate) backoff: Backoff,
    pub(crate) limits: BatchLimits,
}

impl<W, R, D, P> Replicator<W, R, D, P>
where
    W: ItemWriter + ItemReader,
    R: ItemReader,
    D: DeadLetterStore,
    P: ParameterHistoryReader,
{
    /// The Lambda entry point: a stream batch, or a redrive; the deadline comes from the
    /// invocation context.
    pub async fn handle_lambda_event(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Response, FailoverError> {
        let deadline = Deadline::from_lambda(event.context.deadline(), self.config.deadline_margin);
        // A stream batch starts with "Records", so this fails at its first key.
        if let Ok(request) = serde_json::from_str::<RedriveRequest>(event.payload.get()) {
            // After a failover the target is the authority: dead letters of this direction
            // would be written over it.
            if self.direction().await? == Direction::Reconcile {
                return Err(FailoverError::InvalidEvent(
                    "redrive refused: the target's region is the published active region".into(),
                ));
            }
            let report = self.redrive(&request.redrive, deadline).await?;
            tracing::info!(?report, "redrive done");
            report
                .metric_line(&self.config.metrics_namespace, self.config.target_region.as_str())
                .emit();
            return Ok(Response::Redrive(report));
        }
        self.handle_payload(event.payload, deadline).await.map(Response::Batch)
    }

    /// Replicates the raw event and emits the batch's metric line.
    pub async fn handle_payload(
        &self,
        payload: Box<RawValue>,
        deadline: Deadline,
    ) -> Result<DynamoDbEventResponse, FailoverError> {
        let handled = self.replicate_payload(payload, deadline).await;
        let target_region = self.config.target_region.as_str();
        handled
            .report
            .metric_line(&self.config.metrics_namespace, target_region)
            .emit();
        handled.result
    }

    /// Replicates a batch already parsed by `aws_lambda_events`: it goes through the same
    /// JSON reading as a delivered batch, so both are validated alike.
    pub async fn replicate(&self, event: Event, deadline: Deadline) -> HandledBatch {
        match serde_json::to_string(&event).and_then(RawValue::from_string) {
            Ok(payload) => self.replicate_payload(payload, deadline).await,
            Err(e) => HandledBatch::refused(FailoverError::InvalidEvent(format!(
                "the event cannot be serialized: {e}"
            ))),
        }
    }

    /// Validates and plans a batch given as JSON, with nothing written (see [`BatchPlan`]);
    /// `now_ms` dates the replication lag.
    pub fn plan_json(&self, json: &str, now_ms: i64) -> Result<BatchPlan, EventError> {
        self.planner().plan(json, now_ms)
    }

    /// Plans with the phases one after the other, calling `done` after each (the
    /// benchmark's per-phase timing; [`Replicator::plan_json`] interleaves the first two).
    pub fn plan_json_by_phase(&self, json: &str, done: impl FnMut(PlanPhase)) -> Result<(), EventError> {
        self.planner().plan_by_phase(json, done)
    }

    /// The pipeline for one batch. Every record is validated first: an invalid batch is
    /// refused as a whole (NonRetryable) before anything is written.
    async fn replicate_payload(&self, payload: Box<RawValue>, deadline: Deadline) -> HandledBatch {
        // Parse and plan, in one pass over the payload.
        let planned = self.plan_json(payload.get(), chrono::Utc::now().timestamp_millis());
        // The raw text goes before any write starts, to keep the peak memory of large batches low.
        drop(payload);
        let span = batch_span(&planned);
        async move {
            let BatchPlan {
                mut works,
                first_indices,
                slot_of_record,
                sequences,
                lag,
            } = match planned {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::error!(error = %e, "refusing the batch; nothing was written");
                    return HandledBatch::refused(e.into());
                }
            };
            let keys = works.len();
            let first_sequence = |i: usize| sequences[first_indices[i]].clone();
            // Which way the data flows: after a failover these records are stranded.
            let Flow {
                direction,
                copies_before_ms,
            } = match self.flow().await {
                Ok(flow) => flow,
                Err(e) => return HandledBatch::refused(e),
            };
            if let Some(cutoff) = copies_before_ms {
                skip_copies(&mut works, cutoff);
            }
            // Apply: write (reading first for KEYS_ONLY streams), then judge each key; or
            // reconcile stranded records with the now authoritative target.
            let applied = match direction {
                Direction::Replicate => self.engine(deadline).run(&mut works).await,
                Direction::Reconcile => self.reconcile(&mut works, first_sequence, deadline).await,
            };
            let mut outcomes = applied.outcomes;
            // Dead-letter what cannot be written, or spent its retry budget.
            self.sender(deadline).send(&works, &mut outcomes, first_sequence).await;
            drop(works);
            // Report: where Lambda resumes, what became of the records, the response.
            let resume = resume_index(first_indices.iter().copied().zip(outcomes.iter()));
            let report = BatchReport {
                received: sequences.len(),
                keys,
                tally: tally(&slot_of_record, &outcomes, resume),
                write_requests: applied.counters.write_requests(),
                read_requests: applied.counters.read_requests(),
                retries: applied.counters.retries(),
                lag,
                stranded: if direction == Direction::Reconcile {
                    sequences.len()
                } else {
                    0
                },
            };
            let resume_sequence = resume.and_then(|i| sequences.get(i).cloned());
            report.log_handled(resume_sequence.as_deref());
            let result = lambda_response(applied.fatal, resume_sequence);
            HandledBatch { result, report }
        }
        .instrument(span)
        .await
    }
}

/// Marks the changes made before `cutoff_ms` (the other direction's copies) as skipped.
pub(crate) fn skip_copies(works: &mut [crate::plan::Work], cutoff_ms: i64) {
    for work in works {
        if work.created_at_ms.is_some_and(|created| created < cutoff_ms) {
            work.action = crate::plan::decide::Action::Skip(crate::plan::decide::SkipReason::CopyFromBeforeActive);
        }
    }
}
