//! The handler: one stream batch in, the target updated, and `batchItemFailures` naming
//! where Lambda must resume.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use failover_core::retry::{Backoff, Deadline};
use failover_core::{ConfigError, FailoverError};
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::batching::BatchLimits;
use crate::checkpoint::{resume_index, tally, Outcome};
use crate::coalesce::Coalescer;
use crate::config::{ReplicatorConfig, UnwritablePolicy};
use crate::decide::{Rules, SkipReason};
use crate::decode::{Decoder, EventError};
use crate::engine::{Engine, Work};
use crate::key::KeySchema;
use crate::marker::OriginMarker;
use crate::metrics::{lag_stats, BatchReport, LagStats};
use crate::ports::{ItemReader, ItemWriter};

/// The replicator, built once at init and shared by every invocation.
#[derive(Debug)]
pub struct Replicator<W, R> {
    config: ReplicatorConfig,
    schema: KeySchema,
    marker: OriginMarker,
    writer: W,
    reader: R,
    backoff: Backoff,
    limits: BatchLimits,
}

/// A batch turned into per-key work.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One entry per distinct key, ordered by the key's first record.
    pub works: Vec<Work>,
    /// For each entry of `works`, the index of its key's first record.
    pub first_indices: Vec<usize>,
    /// For each record, its entry in `works`.
    pub slot_of_record: Vec<usize>,
    /// Each record's sequence number.
    pub sequences: Vec<String>,
    /// Replication lag of the batch.
    pub lag: Option<LagStats>,
}

/// The result of one batch and what was measured.
#[derive(Debug)]
pub struct Handled {
    /// The response for Lambda, or the error that fails the whole invocation.
    pub result: Result<DynamoDbEventResponse, FailoverError>,
    /// The batch's counts (also emitted as EMF metrics by [`Replicator::handle_payload`]).
    pub report: BatchReport,
}

impl<W: ItemWriter, R: ItemReader> Replicator<W, R> {
    /// Assembles the replicator; `writer` is the target table, `reader` the source table.
    pub fn new(config: ReplicatorConfig, schema: KeySchema, writer: W, reader: R) -> Result<Self, ConfigError> {
        config.check_schema(&schema)?;
        let marker = OriginMarker::new(config.marker_attribute.clone(), config.source_region.as_str());
        Ok(Self {
            config,
            schema,
            marker,
            writer,
            reader,
            backoff: Backoff::default(),
            limits: BatchLimits::default(),
        })
    }

    /// Replaces the retry backoff (the default: 50 ms base, 5 s cap, 8 attempts).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicatorConfig {
        &self.config
    }

    /// The key schema in use.
    pub fn schema(&self) -> &KeySchema {
        &self.schema
    }

    /// The target table.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The source table.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// The Lambda entry point: the deadline comes from the invocation context.
    pub async fn handle_lambda_event(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<DynamoDbEventResponse, FailoverError> {
        let deadline = Deadline::from_lambda(event.context.deadline(), self.config.deadline_margin);
        self.handle_payload(event.payload, deadline).await
    }

    /// Plans the raw event (dropping the raw text before any write starts, to keep the
    /// peak memory of large batches low), replicates it and emits the metric line.
    pub async fn handle_payload(
        &self,
        payload: Box<RawValue>,
        deadline: Deadline,
    ) -> Result<DynamoDbEventResponse, FailoverError> {
        let (received, planned) = self.plan_payload(payload.get());
        drop(payload);
        let handled = self.execute(received, planned, deadline).await;
        handled
            .report
            .metric_line(&self.config.metrics_namespace, self.config.target_region.as_str())
            .emit();
        handled.result
    }

    /// Replicates one batch given as the JSON Lambda delivers. Every record is validated
    /// first: an invalid batch is refused as a whole (NonRetryable) before anything is written.
    pub async fn replicate_json(&self, json: &str, deadline: Deadline) -> Handled {
        let (received, planned) = self.plan_payload(json);
        self.execute(received, planned, deadline).await
    }

    /// Replicates a batch already parsed by `aws_lambda_events`: it goes through the same
    /// JSON reading as a delivered batch, so both are validated alike.
    pub async fn replicate(&self, event: Event, deadline: Deadline) -> Handled {
        match serde_json::to_string(&event) {
            Ok(json) => self.replicate_json(&json, deadline).await,
            Err(e) => Handled {
                result: Err(FailoverError::InvalidEvent(format!(
                    "the event cannot be serialized: {e}"
                ))),
                report: BatchReport::default(),
            },
        }
    }

    /// Validates and plans a batch given as JSON: reading, coalescing and a decision per
    /// key, in one pass over the payload and with nothing written yet. `now_ms` dates the
    /// replication lag.
    pub fn plan_json(&self, json: &str, now_ms: i64) -> Result<Plan, EventError> {
        let decoder = self.decoder();
        let mut coalescer = Coalescer::new(self.config.ttl_deletes);
        let mut sequences = Vec::new();
        let mut created_at_ms = Vec::new();
        decoder.decode_json(json, |record| {
            sequences.push(record.change.sequence.clone());
            created_at_ms.extend(record.change.created_at_ms);
            coalescer.push(record);
        })?;
        let lag = lag_stats(now_ms, created_at_ms);
        let coalesced = coalescer.finish();
        let rules = self.rules();
        let first_indices: Vec<usize> = coalesced.keys.iter().map(|k| k.first_index).collect();
        let works = coalesced
            .keys
            .into_iter()
            .map(|keyed| {
                let last = decoder.complete(keyed.last)?;
                Ok(Work {
                    action: rules.decide(last.kind),
                    key_attributes: last.key_attributes,
                    sequence: last.sequence,
                })
            })
            .collect::<Result<Vec<Work>, EventError>>()?;
        Ok(Plan {
            works,
            first_indices,
            slot_of_record: coalesced.slot_of_record,
            sequences,
            lag,
        })
    }

    /// The number of records the payload holds (0 when it is refused) and its plan.
    fn plan_payload(&self, json: &str) -> (usize, Result<Plan, EventError>) {
        let planned = self.plan_json(json, chrono::Utc::now().timestamp_millis());
        let received = planned.as_ref().map_or(0, |plan| plan.sequences.len());
        (received, planned)
    }

    /// What records are checked against: this configuration's schema, source and marker.
    pub fn decoder(&self) -> Decoder<'_> {
        Decoder {
            schema: &self.schema,
            source_table: &self.config.source_table,
            source_region: self.config.source_region.as_str(),
            marker_attribute: &self.config.marker_attribute,
            version_attribute: self.config.version_attribute(),
        }
    }

    /// The decision rules of this configuration.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            mode: &self.config.mode,
            marker: &self.marker,
            ttl: self.config.ttl_deletes,
        }
    }

    /// Writes a planned batch, within a span naming its first and last sequence numbers.
    async fn execute(&self, received: usize, planned: Result<Plan, EventError>, deadline: Deadline) -> Handled {
        let sequence_at = |i: Option<usize>| {
            planned
                .as_ref()
                .ok()
                .and_then(|plan| plan.sequences.get(i?).cloned())
                .unwrap_or_default()
        };
        let span = tracing::info_span!(
            "replicate_batch",
            records = received,
            first_sequence = %sequence_at(Some(0)),
            last_sequence = %sequence_at(received.checked_sub(1)),
        );
        self.execute_in_span(received, planned, deadline).instrument(span).await
    }

    async fn execute_in_span(&self, received: usize, planned: Result<Plan, EventError>, deadline: Deadline) -> Handled {
        let mut report = BatchReport {
            received,
            ..BatchReport::default()
        };
        let Plan {
            mut works,
            first_indices,
            slot_of_record,
            sequences,
            lag,
        } = match planned {
            Ok(plan) => plan,
            Err(e) => {
                tracing::error!(error = %e, "refusing the batch; nothing was written");
                return Handled {
                    result: Err(FailoverError::InvalidEvent(e.to_string())),
                    report,
                };
            }
        };
        report.lag = lag;
        report.keys = works.len();
        let engine = Engine {
            writer: &self.writer,
            reader: &self.reader,
            schema: &self.schema,
            rules: self.rules(),
            limits: self.limits,
            backoff: self.backoff,
            deadline,
            concurrency: self.config.write_concurrency,
        };
        let applied = engine.run(&mut works).await;
        let outcomes: Vec<Outcome> = applied
            .outcomes
            .into_iter()
            .zip(&works)
            .map(|(outcome, work)| self.apply_unwritable_policy(outcome, &work.sequence))
            .collect();
        drop(works);
        let resume = resume_index(first_indices.iter().copied().zip(outcomes.iter()));
        report.tally = tally(&slot_of_record, &outcomes, resume);
        report.write_requests = applied.counters.write_requests();
        report.read_requests = applied.counters.read_requests();
        report.retries = applied.counters.retries();
        let resume_sequence = resume.and_then(|i| sequences.get(i).cloned());
        tracing::info!(
            keys = report.keys,
            written = report.tally.written,
            skipped = report.tally.skipped.values().sum::<usize>(),
            retried = report.tally.retried,
            write_requests = report.write_requests,
            retries = report.retries,
            resume_sequence = resume_sequence.as_deref().unwrap_or("none"),
            "batch handled"
        );
        let result = match applied.fatal {
            Some(failure) => Err(FailoverError::Aws(failure)),
            None => {
                let mut response = DynamoDbEventResponse::default();
                if let Some(sequence) = resume_sequence {
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some(sequence);
                    response.batch_item_failures.push(failure);
                }
                Ok(response)
            }
        };
        Handled { result, report }
    }

    /// Under `skip`, an unwritable record becomes a logged, counted skip; under `fail` it
    /// stays a failure, so Lambda retries it and finally hands it to the on-failure destination.
    fn apply_unwritable_policy(&self, outcome: Outcome, sequence: &str) -> Outcome {
        let Outcome::Unwritable(reason) = outcome else {
            return outcome;
        };
        match self.config.unwritable {
            UnwritablePolicy::Skip => {
                tracing::error!(sequence, %reason, "record can never be written; skipped by policy");
                Outcome::Skipped(SkipReason::Unwritable)
            }
            UnwritablePolicy::Fail => {
                tracing::warn!(sequence, %reason, "record can never be written; failing the batch from its key's first record");
                Outcome::Unwritable(reason)
            }
        }
    }
}
