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
use crate::coalesce::coalesce;
use crate::config::{ReplicatorConfig, UnwritablePolicy};
use crate::decide::{Rules, SkipReason};
use crate::decode::{parse_event, Decoder, EventError};
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

    /// Parses the raw event (dropping the raw text before the work starts, to keep the
    /// peak memory of large batches low), replicates it and emits the metric line.
    pub async fn handle_payload(
        &self,
        payload: Box<RawValue>,
        deadline: Deadline,
    ) -> Result<DynamoDbEventResponse, FailoverError> {
        let parsed = parse_event(payload.get().as_bytes());
        drop(payload);
        let handled = match parsed {
            Ok(event) => self.replicate(event, deadline).await,
            Err(e) => {
                tracing::error!(error = %e, "refusing a malformed event; nothing was written");
                Handled {
                    result: Err(FailoverError::InvalidEvent(e.to_string())),
                    report: BatchReport::default(),
                }
            }
        };
        handled
            .report
            .metric_line(&self.config.metrics_namespace, self.config.target_region.as_str())
            .emit();
        handled.result
    }

    /// Replicates one batch. Every record is validated first: an invalid batch is refused
    /// as a whole (NonRetryable) before anything is written.
    pub async fn replicate(&self, event: Event, deadline: Deadline) -> Handled {
        let records = event.records.len();
        let sequence_at = |i: usize| {
            event
                .records
                .get(i)
                .and_then(|r| r.change.sequence_number.clone())
                .unwrap_or_default()
        };
        let span = tracing::info_span!(
            "replicate_batch",
            records,
            first_sequence = %sequence_at(0),
            last_sequence = %sequence_at(records.saturating_sub(1)),
        );
        self.replicate_in_span(event, deadline).instrument(span).await
    }

    /// Validates and plans a batch: decoding, coalescing and a decision per key, with
    /// nothing written yet. `now_ms` dates the replication lag.
    pub fn plan(&self, event: Event, now_ms: i64) -> Result<Plan, EventError> {
        let decoder = Decoder {
            schema: &self.schema,
            source_table: &self.config.source_table,
            source_region: self.config.source_region.as_str(),
            marker_attribute: &self.config.marker_attribute,
            version_attribute: self.config.version_attribute(),
        };
        let changes = decoder.decode(event)?;
        let lag = lag_stats(now_ms, changes.iter().filter_map(|c| c.created_at_ms));
        let sequences: Vec<String> = changes.iter().map(|c| c.sequence.clone()).collect();
        let coalesced = coalesce(changes, self.config.ttl_deletes);
        let rules = self.rules();
        let first_indices: Vec<usize> = coalesced.keys.iter().map(|k| k.first_index).collect();
        let works: Vec<Work> = coalesced
            .keys
            .into_iter()
            .map(|keyed| Work {
                action: rules.decide(keyed.last.kind),
                key_attributes: keyed.last.key_attributes,
                sequence: keyed.last.sequence,
            })
            .collect();
        Ok(Plan {
            works,
            first_indices,
            slot_of_record: coalesced.slot_of_record,
            sequences,
            lag,
        })
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            mode: &self.config.mode,
            marker: &self.marker,
            ttl: self.config.ttl_deletes,
        }
    }

    async fn replicate_in_span(&self, event: Event, deadline: Deadline) -> Handled {
        let mut report = BatchReport {
            received: event.records.len(),
            ..BatchReport::default()
        };
        let Plan {
            mut works,
            first_indices,
            slot_of_record,
            sequences,
            lag,
        } = match self.plan(event, chrono::Utc::now().timestamp_millis()) {
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
