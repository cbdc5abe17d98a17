//! The drain check: `{"drainCheck": {}}` reads everything the source stream still holds,
//! plans it as one batch (the same decoding, coalescing and rules as a live batch, the
//! copies from before the source was active skipped), and compares each key's last change
//! with the target's current item ([`judge`]). The failback plan calls it with writes
//! frozen: drained when no key is pending, so nothing written in the outage is left
//! behind when the direction swaps. It writes nothing.

pub mod judge;
pub(crate) mod run;

use serde::{Deserialize, Serialize};

/// Records read at most by default; the stream holds 24 hours.
pub const DEFAULT_MAX_RECORDS: usize = 200_000;

/// Pending keys named in the answer at most.
pub const PENDING_KEYS_SHOWN: usize = 10;

/// The drain check event: `{"drainCheck": {"maxRecords": 200000}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainRequest {
    /// The options.
    pub drain_check: DrainOptions,
}

/// How much one check reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainOptions {
    /// Stream records read at most (1 to 2,000,000; default [`DEFAULT_MAX_RECORDS`]); a
    /// stream holding more is reported `truncated`, never drained.
    pub max_records: Option<usize>,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    /// No key is pending and the whole stream was read.
    pub drained: bool,
    /// `replicate` or `reconcile` (the published active region decides).
    pub direction: String,
    /// The stream read and its shards.
    pub stream_arn: String,
    /// Shards of the stream.
    pub shards: usize,
    /// Records read.
    pub records_read: usize,
    /// Distinct keys in them.
    pub keys: usize,
    /// Keys whose last change the target holds.
    pub keys_in_target: usize,
    /// Keys whose last change is still to be written.
    pub keys_pending: usize,
    /// Keys with nothing to write (own changes, copies from before the source was active,
    /// TTL skips, stranded changes that lost to the target).
    pub keys_nothing_to_write: usize,
    /// Keys whose change can never be written (dead-lettered).
    pub keys_unwritable: usize,
    /// The first pending keys, DynamoDB JSON.
    pub pending_keys: Vec<serde_json::Value>,
    /// Age of the oldest pending change, seconds.
    pub oldest_pending_age_seconds: Option<f64>,
    /// Conflicts in the log for this source table (stranded changes the target won).
    pub conflicts_logged: usize,
    /// The read stopped at `maxRecords` or the deadline.
    pub truncated: bool,
}
