//! The redrive: `{"redrive": {}}` replays the dead-lettered changes in stream order and
//! reports what became of each. Per key only the last dead-lettered change matters (the
//! older ones are superseded); it is written only while the source still holds exactly its
//! state ([`judge::confirm`](super::judge::confirm)), otherwise it is stale. In overwrite
//! mode each write is then verified against the source once more, so that a live write of
//! a newer change racing the redrive can never be overwritten by the older one: a key that
//! changed is written again with its current state (at most [`VERIFY_ROUNDS`] times).
//! Objects done with are deleted (the bucket's versioning keeps them for its retention);
//! a change that fails again goes back to the bucket with its count raised.

use std::collections::HashMap;

use failover_core::emf::{MetricLine, Unit};
use failover_core::retry::{retry, Deadline};
use failover_core::{AwsFailure, FailoverError};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::apply::checkpoint::Outcome;
use crate::config::Mode;
use crate::dead_letter::envelope::{table_prefix, Envelope};
use crate::dead_letter::judge::{confirm, rewrite, still_written};
use crate::handler::Replicator;
use crate::plan::decide::Action;
use crate::plan::Work;
use crate::ports::{DeadLetterStore, ItemReader, ItemWriter};
use crate::report::FUNCTION;

/// Verification rounds of a redriven key whose source keeps changing.
pub const VERIFY_ROUNDS: usize = 3;

/// The redrive event: `{"redrive": {"maxObjects": 1000}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// The options.
    pub redrive: RedriveOptions,
}

/// How much one invocation redrives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveOptions {
    /// Objects read at most (1 to 10,000; default 1,000); `more` in the report says whether
    /// to invoke again.
    pub max_objects: Option<usize>,
}

/// What a redrive did, object by object.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveReport {
    /// Objects listed.
    pub objects: usize,
    /// Keys whose dead-lettered change is now in the target.
    pub written: usize,
    /// Keys whose dead-lettered change the source has since replaced (not written).
    pub stale: usize,
    /// Older objects of a key that had a later one (not written, deleted).
    pub superseded: usize,
    /// Keys that failed again and are back in the bucket.
    pub dead_lettered_again: usize,
    /// Keys left as they were (the deadline, the source unreadable, a key that kept
    /// changing); the next redrive takes them.
    pub left: usize,
    /// Objects that are not envelopes of this replicator: key and why (never deleted).
    pub unreadable: Vec<String>,
    /// Objects that could not be deleted after they were done (redriven again harmlessly).
    pub delete_failures: usize,
    /// Whether objects remain: invoke again.
    pub more: bool,
}

impl RedriveReport {
    /// The redrive's EMF line.
    pub fn metric_line(&self, namespace: &str, target_region: &str) -> MetricLine {
        let count = |n: usize| n as f64;
        MetricLine::new(namespace)
            .dimension("Function", FUNCTION)
            .dimension("TargetRegion", target_region)
            .metric("RecordsRedriven", count(self.written), Unit::Count)
            .metric("RedriveStale", count(self.stale + self.superseded), Unit::Count)
            .metric("RedriveDeadLetteredAgain", count(self.dead_lettered_again), Unit::Count)
            .metric("RedriveUnreadable", count(self.unreadable.len()), Unit::Count)
    }
}

/// An object's key and what reading it gave.
type Fetched = (String, Result<Option<Vec<u8>>, AwsFailure>);

/// One key's dead-lettered objects, oldest first.
struct Group {
    objects: Vec<(String, Envelope)>,
}

impl Group {
    fn last(&self) -> &Envelope {
        &self.objects.last().expect("a group has an object").1
    }
}

impl<W: ItemWriter, R: ItemReader, D: DeadLetterStore, P> Replicator<W, R, D, P> {
    /// Redrives at most `options.max_objects` dead-lettered changes before `deadline`.
    pub async fn redrive(&self, options: &RedriveOptions, deadline: Deadline) -> Result<RedriveReport, FailoverError> {
        let max = options.max_objects.unwrap_or(1_000);
        if !(1..=10_000).contains(&max) {
            return Err(FailoverError::InvalidEvent(format!(
                "redrive.maxObjects is {max}; expected 1 to 10000"
            )));
        }
        let mut report = RedriveReport::default();
        let groups = self.read_groups(max, deadline, &mut report).await?;
        let mut works: Vec<Work> = groups.iter().map(|g| read_work(g.last())).collect();
        let marker = self.config().marker_attribute.as_str();
        let mode = &self.config().mode;
        let applied = self
            .engine(deadline)
            .run_judged(&mut works, |works| {
                for (work, group) in works.iter_mut().zip(&groups) {
                    let read = std::mem::replace(&mut work.action, Action::Read);
                    work.action = confirm(read, group.last(), mode, marker);
                }
            })
            .await;
        let mut outcomes = applied.outcomes;
        if *mode == Mode::Overwrite {
            self.verify(&mut works, &mut outcomes, deadline).await;
        }
        for (group, outcome) in groups.iter().zip(outcomes) {
            self.settle(group, outcome, deadline, &mut report).await;
        }
        report.more |= report.left > 0;
        Ok(report)
    }

    /// Lists and reads the objects, grouped by key in stream order.
    async fn read_groups(
        &self,
        max: usize,
        deadline: Deadline,
        report: &mut RedriveReport,
    ) -> Result<Vec<Group>, FailoverError> {
        let store = self.dead_letter_store();
        let prefix = table_prefix(&self.config().dead_letter.prefix, &self.config().source_table);
        let listing = retry(
            self.backoff(),
            deadline,
            |e: &AwsFailure| e.class,
            |_| store.list(&prefix, None, max),
        )
        .await
        .map_err(|e| FailoverError::Aws(e.into_inner()))?;
        report.objects = listing.keys.len();
        report.more = listing.more;
        let bodies: Vec<Fetched> = stream::iter(listing.keys.into_iter().map(|key| async move {
            let body = retry(self.backoff(), deadline, |e: &AwsFailure| e.class, |_| store.get(&key)).await;
            (key, body.map_err(|e| e.into_inner()))
        }))
        .buffered(self.config().write_concurrency)
        .collect()
        .await;
        let mut groups: Vec<Group> = Vec::new();
        let mut slot = HashMap::new();
        for (key, body) in bodies {
            let envelope = match body {
                Ok(None) => continue,
                Ok(Some(bytes)) => Envelope::from_json(&bytes, self.route()),
                Err(e) => {
                    tracing::warn!(object = %key, error = %e, "dead-letter object not read; left for the next redrive");
                    report.left += 1;
                    continue;
                }
            };
            let keyed = envelope.and_then(|env| {
                let item_key = self.schema().key_of(&env.keys.0).map_err(|e| format!("keys: {e}"))?;
                Ok((item_key, env))
            });
            match keyed {
                Ok((item_key, envelope)) => {
                    let index = *slot.entry(item_key).or_insert_with(|| {
                        groups.push(Group { objects: Vec::new() });
                        groups.len() - 1
                    });
                    groups[index].objects.push((key, envelope));
                }
                Err(why) => {
                    tracing::error!(object = %key, problem = %why, "dead-letter object is not ours; left in place");
                    report.unreadable.push(format!("{key}: {why}"));
                }
            }
        }
        Ok(groups)
    }

    /// Overwrite mode: reads each written key again; one that changed at the source since
    /// it was read is written again with its current state, up to [`VERIFY_ROUNDS`] times.
    async fn verify(&self, works: &mut [Work], outcomes: &mut [Outcome], deadline: Deadline) {
        let marker = self.config().marker_attribute.as_str();
        for _ in 0..VERIFY_ROUNDS {
            let written: Vec<usize> = (0..works.len()).filter(|&i| outcomes[i] == Outcome::Written).collect();
            if written.is_empty() {
                return;
            }
            let mut again: Vec<Work> = written
                .iter()
                .map(|&i| Work {
                    action: Action::Read,
                    ..works[i].clone()
                })
                .collect();
            let mut changed = vec![false; again.len()];
            let applied = self
                .engine(deadline)
                .run_judged(&mut again, |again| {
                    for ((work, &index), changed) in again.iter_mut().zip(&written).zip(changed.iter_mut()) {
                        let read = std::mem::replace(&mut work.action, Action::Read);
                        *changed = read == Action::Read || !still_written(&works[index].action, &read, marker);
                        work.action = if *changed {
                            rewrite(read)
                        } else {
                            Action::Skip(crate::SkipReason::Stale)
                        };
                    }
                })
                .await;
            if !changed.iter().any(|c| *c) {
                return;
            }
            for (((work, outcome), &index), changed) in
                again.into_iter().zip(applied.outcomes).zip(&written).zip(&changed)
            {
                if *changed {
                    tracing::info!(sequence = %work.sequence, "the source changed while the key was redriven; written again");
                    works[index].action = work.action;
                    // Written again: verified in the next round; anything else is left.
                    outcomes[index] = if outcome == Outcome::Written {
                        Outcome::Written
                    } else {
                        Outcome::NotDurable
                    };
                }
            }
        }
        // Still changing after every round: left for the next redrive.
        for outcome in outcomes.iter_mut().filter(|o| **o == Outcome::Written) {
            *outcome = Outcome::NotDurable;
        }
    }

    /// Deletes what is done, sends back what failed again, leaves the rest.
    async fn settle(&self, group: &Group, outcome: Outcome, deadline: Deadline, report: &mut RedriveReport) {
        let (superseded, last) = group.objects.split_at(group.objects.len() - 1);
        let delete_last = match &outcome {
            Outcome::Written => {
                report.written += 1;
                true
            }
            Outcome::Skipped(_) => {
                report.stale += 1;
                true
            }
            failed if failed.dead_letter_reason().is_some() => {
                let mut envelope = last[0].1.clone();
                envelope.error = failed.dead_letter_reason().unwrap_or_default();
                envelope.times_dead_lettered += 1;
                envelope.dead_lettered_at_ms = chrono::Utc::now().timestamp_millis();
                let sent = self.sender(deadline).send_one(&envelope, envelope.error.clone()).await;
                if matches!(sent, Outcome::DeadLettered(_)) {
                    report.dead_lettered_again += 1;
                } else {
                    report.left += 1;
                    return;
                }
                false
            }
            _ => {
                report.left += 1;
                return;
            }
        };
        report.superseded += superseded.len();
        let doomed = superseded.iter().chain(last.iter().filter(|_| delete_last));
        for (key, _) in doomed {
            let store = self.dead_letter_store();
            let deleted = retry(
                self.backoff(),
                deadline,
                |e: &AwsFailure| e.class,
                |_| store.delete(key),
            )
            .await;
            if let Err(e) = deleted {
                tracing::warn!(object = %key, error = %e.into_inner(), "done, but not deleted; a later redrive finds it stale");
                report.delete_failures += 1;
            }
        }
    }
}

/// The work that reads a dead-lettered key's current item at the source.
fn read_work(envelope: &Envelope) -> Work {
    Work {
        key_attributes: envelope.keys.0.clone(),
        sequence: envelope.sequence_number.clone(),
        event_id: envelope.event_id.clone(),
        created_at_ms: envelope.created_at_ms,
        records: envelope.records_covered,
        action: Action::Read,
    }
}
