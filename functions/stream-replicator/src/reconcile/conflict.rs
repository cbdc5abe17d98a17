//! The conflict log: one JSON object per stranded change that lost to the target's item,
//! with both sides, so an operator can see (and, if the shop wants, restore) what the
//! authoritative table did not take. Stored beside the dead letters, under
//! `CONFLICT_PREFIX` (`conflicts/<source table>/<sequence number>-<eventID>.json`).

use serde::{Deserialize, Serialize};

use crate::dead_letter::envelope::{object_key, Envelope};
use crate::event::dynamo_json::Image;

/// The format tag.
pub const CONFLICT_FORMAT: &str = "shop-failover/stream-replicator/conflict/1";

/// One logged conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conflict {
    /// [`CONFLICT_FORMAT`].
    pub format: String,
    /// The stranded change, as a dead letter would hold it (`error` is the reason).
    pub stranded: Envelope,
    /// The target's item that won (`None`: the target has no such item).
    pub target: Option<Image>,
    /// Why the target won.
    pub reason: String,
}

impl Conflict {
    /// The object key under `prefix`.
    pub fn object_key(&self, prefix: &str) -> String {
        let s = &self.stranded;
        object_key(prefix, &s.source_table, &s.sequence_number, &s.event_id)
    }

    /// The stored document.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a conflict always serializes")
    }
}
