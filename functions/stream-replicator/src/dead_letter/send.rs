//! The dead-letter stage of a batch: every change that can never be written, or whose
//! writes spent their retry budget, is stored whole in the dead-letter bucket, and only
//! then counts as done. A change the bucket does not take stays not done, so Lambda
//! delivers it again: nothing is ever dropped.

use failover_core::retry::{retry, Backoff, Deadline};
use futures_util::stream::{self, StreamExt};

use crate::apply::checkpoint::Outcome;
use crate::dead_letter::envelope::{Envelope, Route};
use crate::plan::Work;
use crate::ports::DeadLetterStore;

/// Where and how dead letters are sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender<'a, D> {
    /// The bucket.
    pub store: &'a D,
    /// The key prefix.
    pub prefix: &'a str,
    /// The tables and regions the envelopes name.
    pub route: Route<'a>,
    /// Retries of PutObject.
    pub backoff: Backoff,
    /// When to stop trying.
    pub deadline: Deadline,
    /// Puts in flight at most.
    pub concurrency: usize,
}

impl<D: DeadLetterStore> Sender<'_, D> {
    /// Sends every outcome that needs it; each sent one becomes `DeadLettered`, each that
    /// could not be sent `NotDurable`. `first_sequence(i)` is work `i`'s first record.
    pub async fn send(&self, works: &[Work], outcomes: &mut [Outcome], first_sequence: impl Fn(usize) -> String) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let bound: Vec<(usize, String)> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, outcome)| outcome.dead_letter_reason().map(|reason| (i, reason)))
            .collect();
        if bound.is_empty() {
            return;
        }
        let results: Vec<(usize, Outcome)> = stream::iter(bound.into_iter().map(|(index, reason)| {
            let envelope = Envelope::of(
                &works[index],
                &first_sequence(index),
                reason.clone(),
                self.route,
                now_ms,
            );
            async move {
                let Some(envelope) = envelope else {
                    return (index, Outcome::NotDurable);
                };
                (index, self.send_one(&envelope, reason).await)
            }
        }))
        .buffer_unordered(self.concurrency.max(1))
        .collect()
        .await;
        for (index, outcome) in results {
            outcomes[index] = outcome;
        }
    }

    /// Puts one envelope, retrying transient failures within the deadline.
    pub async fn send_one(&self, envelope: &Envelope, reason: String) -> Outcome {
        let key = envelope.object_key(self.prefix);
        match self.put(&key, envelope.to_json()).await {
            Ok(()) => {
                // The key and sequence number identify the change; the item is never logged.
                tracing::error!(
                    sequence = %envelope.sequence_number,
                    object = %key,
                    reason = %reason,
                    "change not written to the target; kept in the dead-letter bucket"
                );
                Outcome::DeadLettered(reason)
            }
            Err(e) => {
                tracing::warn!(
                    sequence = %envelope.sequence_number,
                    error = %e,
                    "the dead-letter bucket did not take the change; Lambda delivers it again"
                );
                Outcome::NotDurable
            }
        }
    }

    /// Stores `body` under `key` (a dead letter, or a conflict), retrying transient failures
    /// within the deadline.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), failover_core::AwsFailure> {
        retry(
            self.backoff,
            self.deadline,
            |e: &failover_core::AwsFailure| e.class,
            |_| self.store.put(key, body.clone()),
        )
        .await
        .map_err(|e| e.into_inner())
    }
}
