//! What leaves the function for one batch: the response for Lambda (`batchItemFailures`
//! naming where to resume), the [`BatchReport`] with its EMF metric line (records by fate,
//! requests, retries and replication lag), and the batch's log span and summary line.

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use failover_core::emf::{MetricLine, Unit};
use failover_core::{AwsFailure, FailoverError};

use crate::apply::checkpoint::RecordTally;
use crate::error::EventError;
use crate::plan::decide::SkipReason;
use crate::plan::BatchPlan;

/// What an invocation answers: the batch response Lambda reads, or a redrive's report.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Response {
    /// A stream batch's `batchItemFailures`.
    Batch(DynamoDbEventResponse),
    /// What a redrive did.
    Redrive(crate::dead_letter::redrive::RedriveReport),
    /// What a drain check found.
    Drain(crate::drain::DrainReport),
}

/// The result of one batch and what was measured.
#[derive(Debug)]
pub struct HandledBatch {
    /// The response for Lambda, or the error that fails the whole invocation.
    pub result: Result<DynamoDbEventResponse, FailoverError>,
    /// The batch's counts (also emitted as EMF metrics by
    /// [`Replicator::handle_payload`](crate::Replicator::handle_payload)).
    pub report: BatchReport,
}

impl HandledBatch {
    /// A batch refused as a whole, before anything was written.
    pub(crate) fn refused(error: FailoverError) -> Self {
        Self {
            result: Err(error),
            report: BatchReport::default(),
        }
    }
}

/// The response for Lambda: `batchItemFailures` names the record to resume from (empty
/// when the whole batch is done), unless a permanent failure fails the whole invocation.
pub(crate) fn lambda_response(
    fatal: Option<AwsFailure>,
    resume_sequence: Option<String>,
) -> Result<DynamoDbEventResponse, FailoverError> {
    if let Some(failure) = fatal {
        return Err(FailoverError::Aws(failure));
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = resume_sequence {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The span of one batch's logs, naming its first and last sequence numbers (none for a
/// refused batch).
pub(crate) fn batch_span(planned: &Result<BatchPlan, EventError>) -> tracing::Span {
    let sequences = planned.as_ref().map_or(&[][..], |plan| plan.sequences.as_slice());
    let at = |i: Option<usize>| i.and_then(|i| sequences.get(i)).cloned().unwrap_or_default();
    tracing::info_span!(
        "replicate_batch",
        records = sequences.len(),
        first_sequence = %at(Some(0)),
        last_sequence = %at(sequences.len().checked_sub(1)),
    )
}

/// Replication lag of a batch: now − ApproximateCreationDateTime of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagStats {
    /// The largest lag.
    pub max_ms: i64,
    /// The median lag (mean of the two middle values for an even count).
    pub median_ms: i64,
}

/// Lag statistics at `now_ms`; `None` when no record has a creation time. A negative lag
/// (clock skew) counts as zero.
pub fn lag_stats(now_ms: i64, created_ms: impl IntoIterator<Item = i64>) -> Option<LagStats> {
    let mut lags: Vec<i64> = created_ms.into_iter().map(|c| (now_ms - c).max(0)).collect();
    if lags.is_empty() {
        return None;
    }
    let n = lags.len();
    let max_ms = lags.iter().copied().max().unwrap_or(0);
    let (_, upper, _) = lags.select_nth_unstable(n / 2);
    let upper = *upper;
    let median_ms = if n % 2 == 1 {
        upper
    } else {
        let lower = lags[..n / 2].iter().copied().max().unwrap_or(upper);
        (lower + upper) / 2
    };
    Some(LagStats { max_ms, median_ms })
}

/// Everything measured while handling one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Records in the event.
    pub received: usize,
    /// Distinct keys after coalescing.
    pub keys: usize,
    /// What became of the records.
    pub tally: RecordTally,
    /// Write requests sent (BatchWriteItem, PutItem, UpdateItem, DeleteItem calls).
    pub write_requests: usize,
    /// BatchGetItem calls (KEYS_ONLY streams).
    pub read_requests: usize,
    /// Requests repeated after throttling, unprocessed items or transient errors.
    pub retries: usize,
    /// Replication lag, if the records carry creation times.
    pub lag: Option<LagStats>,
    /// Records reconciled instead of replicated (the target's region is active).
    pub stranded: usize,
}

/// The function name used as the metrics' dimension.
pub const FUNCTION: &str = "stream-replicator";

const SKIP_REASONS: [SkipReason; 7] = [
    SkipReason::OwnChange,
    SkipReason::Ttl,
    SkipReason::Stale,
    SkipReason::GoneAtSource,
    SkipReason::Conflict,
    SkipReason::AlreadyInTarget,
    SkipReason::CopyFromBeforeActive,
];

impl BatchReport {
    /// The EMF line; every skip reason is always present (zero included), so alarms on
    /// them never see missing data.
    pub fn metric_line(&self, namespace: &str, target_region: &str) -> MetricLine {
        let count = |n: usize| n as f64;
        let mut line = MetricLine::new(namespace)
            .dimension("Function", FUNCTION)
            .dimension("TargetRegion", target_region)
            .metric("RecordsReceived", count(self.received), Unit::Count)
            .metric("RecordsWritten", count(self.tally.written), Unit::Count)
            .metric("RecordsRetried", count(self.tally.retried), Unit::Count)
            .metric("RecordsDeadLettered", count(self.tally.dead_lettered), Unit::Count)
            .metric("RecordsStranded", count(self.stranded), Unit::Count)
            .metric("DistinctKeys", count(self.keys), Unit::Count)
            .metric("WriteRequests", count(self.write_requests), Unit::Count)
            .metric("ReadRequests", count(self.read_requests), Unit::Count)
            .metric("Retries", count(self.retries), Unit::Count);
        for reason in SKIP_REASONS {
            let skipped = self.tally.skipped.get(&reason).copied().unwrap_or(0);
            line = line.metric(
                &format!("RecordsSkipped{}", reason.metric_suffix()),
                count(skipped),
                Unit::Count,
            );
        }
        if let Some(lag) = self.lag {
            line = line
                .metric("ReplicationLagMaxMs", lag.max_ms as f64, Unit::Milliseconds)
                .metric("ReplicationLagMedianMs", lag.median_ms as f64, Unit::Milliseconds);
        }
        line
    }

    /// The batch's summary log line.
    pub(crate) fn log_handled(&self, resume_sequence: Option<&str>) {
        tracing::info!(
            keys = self.keys,
            written = self.tally.written,
            skipped = self.tally.skipped.values().sum::<usize>(),
            retried = self.tally.retried,
            dead_lettered = self.tally.dead_lettered,
            write_requests = self.write_requests,
            retries = self.retries,
            resume_sequence = resume_sequence.unwrap_or("none"),
            "batch handled"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn lag_max_and_median() {
        assert_eq!(lag_stats(1_000, []), None);
        assert_eq!(
            lag_stats(10_000, [9_000]),
            Some(LagStats {
                max_ms: 1_000,
                median_ms: 1_000
            })
        );
        assert_eq!(
            lag_stats(10_000, [9_000, 4_000, 8_000]),
            Some(LagStats {
                max_ms: 6_000,
                median_ms: 2_000
            })
        );
        assert_eq!(
            lag_stats(10_000, [9_000, 4_000, 8_000, 7_000]),
            Some(LagStats {
                max_ms: 6_000,
                median_ms: 2_500
            })
        );
        // A record "from the future" (clock skew) is not negative lag.
        assert_eq!(
            lag_stats(10_000, [12_000]),
            Some(LagStats {
                max_ms: 0,
                median_ms: 0
            })
        );
    }

    #[test]
    fn the_line_carries_every_count_and_the_lag() {
        let report = BatchReport {
            received: 10,
            keys: 6,
            tally: RecordTally {
                written: 5,
                skipped: BTreeMap::from([(SkipReason::OwnChange, 2), (SkipReason::Ttl, 1)]),
                retried: 2,
                dead_lettered: 3,
            },
            write_requests: 1,
            read_requests: 0,
            retries: 3,
            lag: Some(LagStats {
                max_ms: 900,
                median_ms: 400,
            }),
            stranded: 0,
        };
        let doc = report.metric_line("ShopFailover", "us-west-2").render(0);
        for (name, value) in [
            ("RecordsReceived", 10.0),
            ("RecordsWritten", 5.0),
            ("RecordsRetried", 2.0),
            ("DistinctKeys", 6.0),
            ("WriteRequests", 1.0),
            ("ReadRequests", 0.0),
            ("Retries", 3.0),
            ("RecordsSkippedOwnChange", 2.0),
            ("RecordsSkippedTtl", 1.0),
            ("RecordsSkippedStale", 0.0),
            ("RecordsSkippedGoneAtSource", 0.0),
            ("RecordsDeadLettered", 3.0),
            ("RecordsStranded", 0.0),
            ("RecordsSkippedConflict", 0.0),
            ("ReplicationLagMaxMs", 900.0),
            ("ReplicationLagMedianMs", 400.0),
        ] {
            assert_eq!(doc[name], value, "{name}");
        }
        assert_eq!(doc["Function"], "stream-replicator");
        assert_eq!(doc["TargetRegion"], "us-west-2");
        let without_lag = BatchReport::default().metric_line("N", "r").render(0);
        assert!(without_lag.get("ReplicationLagMaxMs").is_none());
    }
}
