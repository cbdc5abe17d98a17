//! One stream record, reduced to what replication decisions need.

use crate::domain::item::Attributes;
use crate::domain::key::ItemKey;

/// A change to one item, as read from one stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceChange {
    /// Position of the record in the batch (0-based); the batch's order is the stream's.
    pub index: usize,
    /// The record's sequence number, reported back to Lambda on failure.
    pub sequence: String,
    /// The item's key, canonical.
    pub key: ItemKey,
    /// The item's key attributes as delivered (`Keys`).
    pub key_attributes: Attributes,
    /// What happened.
    pub kind: ChangeKind,
    /// ApproximateCreationDateTime in epoch milliseconds, when the record has one.
    pub created_at_ms: Option<i64>,
    /// The record's `eventID`; filled in only for a key's last change (the dead-letter
    /// envelope names it), so superseded records cost no allocation.
    pub event_id: String,
}

impl AsRef<SourceChange> for SourceChange {
    fn as_ref(&self) -> &SourceChange {
        self
    }
}

/// The kind of change and the images the record carried.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// INSERT or MODIFY.
    Upsert {
        /// The item after the change; `None` for KEYS_ONLY (and OLD_IMAGE) streams, where the
        /// current item must be read from the source table.
        new: Option<Attributes>,
        /// The old image, reduced to the marker and version attributes; `None` when the
        /// stream has no old images or the item did not exist.
        old: Option<Attributes>,
    },
    /// REMOVE.
    Remove {
        /// The old image, reduced to the marker and version attributes, when the stream has one.
        old: Option<Attributes>,
        /// True when DynamoDB's time-to-live process deleted the item.
        by_ttl: bool,
    },
}
