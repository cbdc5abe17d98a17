//! Running a drain check against the stream and the target (see [`super`]).

use failover_core::parameters::ParameterHistoryReader;
use failover_core::retry::Deadline;
use failover_core::FailoverError;

use super::judge::{key_state, KeyState};
use super::{DrainOptions, DrainReport, DEFAULT_MAX_RECORDS, PENDING_KEYS_SHOWN};
use crate::dead_letter::envelope::table_prefix;
use crate::event::dynamo_json::Image;
use crate::handler::{skip_copies, Replicator};
use crate::plan::decide::Action;
use crate::ports::{DeadLetterStore, ItemReader, ItemWriter, StreamSource};
use crate::reconcile::direction::Direction;

/// Conflict objects counted at most.
const CONFLICTS_COUNTED: usize = 100_000;

impl<W, R, D, P> Replicator<W, R, D, P>
where
    W: ItemWriter + ItemReader,
    R: ItemReader,
    D: DeadLetterStore,
    P: ParameterHistoryReader,
{
    /// Reads `stream` whole and tells, key by key, whether its last change is in the target.
    pub async fn drain_check<S: StreamSource>(
        &self,
        stream: &S,
        options: &DrainOptions,
        deadline: Deadline,
    ) -> Result<DrainReport, FailoverError> {
        let max_records = match options.max_records {
            None => DEFAULT_MAX_RECORDS,
            Some(n @ 1..=2_000_000) => n,
            Some(n) => {
                return Err(FailoverError::InvalidEvent(format!(
                    "drainCheck.maxRecords {n}: expected 1 to 2000000"
                )))
            }
        };
        let flow = self.flow().await?;
        let read = stream
            .read_all(max_records, deadline)
            .await
            .map_err(FailoverError::Aws)?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut works = self
            .plan_json(&read.records_json, now_ms)
            .map_err(|e| FailoverError::InvalidEvent(format!("the stream {}: {e}", read.stream_arn)))?
            .works;
        if works.iter().any(|w| w.action == Action::Read) {
            return Err(FailoverError::InvalidEvent(format!(
                "the stream {} has no new images (KEYS_ONLY): the drain check compares images; \
                 use NEW_AND_OLD_IMAGES",
                read.stream_arn
            )));
        }
        if let Some(cutoff) = flow.copies_before_ms {
            skip_copies(&mut works, cutoff);
        }
        let targets = self
            .engine_reading(&self.writer, deadline)
            .read_current(&works)
            .await
            .map_err(FailoverError::Aws)?;
        let mut report = DrainReport {
            direction: match flow.direction {
                Direction::Replicate => "replicate",
                Direction::Reconcile => "reconcile",
            }
            .into(),
            stream_arn: read.stream_arn,
            shards: read.shards,
            records_read: read.records,
            keys: works.len(),
            truncated: read.truncated,
            ..DrainReport::default()
        };
        let mut oldest_pending: Option<i64> = None;
        for (work, target) in works.iter().zip(&targets) {
            let state = key_state(
                &work.action,
                target.as_ref(),
                flow.direction,
                &self.config.mode,
                &self.config.marker_attribute,
            );
            match state {
                KeyState::InTarget => report.keys_in_target += 1,
                KeyState::NothingToWrite => report.keys_nothing_to_write += 1,
                KeyState::Unwritable => report.keys_unwritable += 1,
                KeyState::Pending => {
                    report.keys_pending += 1;
                    if report.pending_keys.len() < PENDING_KEYS_SHOWN {
                        report
                            .pending_keys
                            .push(serde_json::to_value(Image(work.key_attributes.clone())).unwrap_or_default());
                    }
                    if let Some(created) = work.created_at_ms {
                        oldest_pending = Some(oldest_pending.map_or(created, |o| o.min(created)));
                    }
                }
            }
        }
        report.oldest_pending_age_seconds = oldest_pending.map(|at| (now_ms - at).max(0) as f64 / 1000.0);
        report.conflicts_logged = self.count_conflicts().await?;
        report.drained = report.keys_pending == 0 && !report.truncated;
        tracing::info!(?report, "drain check");
        Ok(report)
    }

    /// Objects in the conflict log of this source table.
    async fn count_conflicts(&self) -> Result<usize, FailoverError> {
        let prefix = table_prefix(&self.config.dead_letter.conflict_prefix, &self.config.source_table);
        let mut count = 0;
        let mut after: Option<String> = None;
        while count < CONFLICTS_COUNTED {
            let page = self
                .dead_letter
                .list(&prefix, after.as_deref(), 1000)
                .await
                .map_err(FailoverError::Aws)?;
            count += page.keys.len();
            if !page.more || page.keys.is_empty() {
                break;
            }
            after = page.keys.last().cloned();
        }
        Ok(count)
    }
}
