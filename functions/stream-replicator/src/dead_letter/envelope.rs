//! The dead-letter envelope: one JSON object per change the replicator could not write,
//! holding everything needed to write it later (keys, the new image or the delete, the
//! version) and to explain it (sequence numbers, eventID, time, the error). Objects are
//! named `<prefix><source table>/<sequence number, zero-padded to 40 digits>-<eventID>.json`,
//! so S3 lists them in stream order (DynamoDB sequence numbers are 21 to 40 digits).
//!
//! The old image is not kept: the decoder never builds more of it than the marker and the
//! version (which the envelope keeps), so a batch's memory stays bounded by its new images.

use serde::{Deserialize, Serialize};

use crate::domain::item::Attributes;
use crate::event::dynamo_json::Image;
use crate::plan::decide::Action;
use crate::plan::Work;

/// The format tag, checked when an envelope is read back.
pub const FORMAT: &str = "shop-failover/stream-replicator/dead-letter/1";

/// Digits a sequence number is padded to in object keys.
const SEQUENCE_DIGITS: usize = 40;

/// What the change does to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Put the new image.
    Put,
    /// Delete the item.
    Delete,
}

/// One dead-lettered change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// [`FORMAT`].
    pub format: String,
    /// The table whose stream carried the change.
    pub source_table: String,
    /// Its region.
    pub source_region: String,
    /// The table it was not written to.
    pub target_table: String,
    /// Its region.
    pub target_region: String,
    /// The change's record (the key's last in its batch).
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// That record's sequence number.
    pub sequence_number: String,
    /// The sequence number of the key's first record in the batch.
    pub first_sequence_number: String,
    /// Records of the batch this change stands for (it superseded the others).
    pub records_covered: usize,
    /// ApproximateCreationDateTime of the record, epoch milliseconds.
    pub created_at_ms: Option<i64>,
    /// Put or delete.
    pub operation: Operation,
    /// The item's key attributes.
    pub keys: Image,
    /// The item as it is to be written (puts), without a replicator's marker.
    pub new_image: Option<Image>,
    /// In last-writer-wins mode, the change's version.
    pub version: Option<String>,
    /// Why it could not be written (the last error).
    pub error: String,
    /// When it was (last) dead-lettered, epoch milliseconds.
    pub dead_lettered_at_ms: i64,
    /// How often it was dead-lettered: 1, plus one per redrive that failed again.
    pub times_dead_lettered: u32,
}

/// The tables and regions a replicator copies between, which every envelope names.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    /// Source table.
    pub source_table: &'a str,
    /// Source region.
    pub source_region: &'a str,
    /// Target table.
    pub target_table: &'a str,
    /// Target region.
    pub target_region: &'a str,
    /// The origin marker attribute, removed from images.
    pub marker_attribute: &'a str,
}

impl Envelope {
    /// The envelope of `work`, whose key's first record in the batch had
    /// `first_sequence`; `None` for work that has no change to keep (a skip, an unread key).
    pub(crate) fn of(work: &Work, first_sequence: &str, error: String, route: Route<'_>, now_ms: i64) -> Option<Self> {
        let without_marker = |item: &Attributes| {
            let mut item = item.clone();
            item.remove(route.marker_attribute);
            Image(item)
        };
        let (operation, new_image, version) = match &work.action {
            Action::Put { item, version } => (Operation::Put, Some(without_marker(item)), version.clone()),
            Action::Delete { version } => (Operation::Delete, None, version.clone()),
            Action::Unwritable { item: Some(item), .. } => (Operation::Put, Some(without_marker(item)), None),
            Action::Unwritable { item: None, .. } => (Operation::Delete, None, None),
            Action::Read | Action::Skip(_) => return None,
        };
        Some(Self {
            format: FORMAT.into(),
            source_table: route.source_table.into(),
            source_region: route.source_region.into(),
            target_table: route.target_table.into(),
            target_region: route.target_region.into(),
            event_id: work.event_id.clone(),
            sequence_number: work.sequence.clone(),
            first_sequence_number: first_sequence.into(),
            records_covered: work.records,
            created_at_ms: work.created_at_ms,
            operation,
            keys: Image(work.key_attributes.clone()),
            new_image,
            version,
            error,
            dead_lettered_at_ms: now_ms,
            times_dead_lettered: 1,
        })
    }

    /// The object key under `prefix`.
    pub fn object_key(&self, prefix: &str) -> String {
        object_key(prefix, &self.source_table, &self.sequence_number, &self.event_id)
    }

    /// The JSON document stored.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Reads a stored document, checking its format and that it belongs to `route`.
    pub fn from_json(bytes: &[u8], route: Route<'_>) -> Result<Self, String> {
        let envelope: Self = serde_json::from_slice(bytes).map_err(|e| format!("not a dead-letter envelope: {e}"))?;
        if envelope.format != FORMAT {
            return Err(format!("format {:?}, expected {FORMAT:?}", envelope.format));
        }
        let ours = (
            route.source_table,
            route.source_region,
            route.target_table,
            route.target_region,
        );
        let theirs = (
            envelope.source_table.as_str(),
            envelope.source_region.as_str(),
            envelope.target_table.as_str(),
            envelope.target_region.as_str(),
        );
        if ours != theirs {
            return Err(format!("it replicates {theirs:?}, this replicator {ours:?}"));
        }
        if envelope.operation == Operation::Put && envelope.new_image.is_none() {
            return Err("a put without newImage".into());
        }
        Ok(envelope)
    }
}

/// The folder of `source_table`'s envelopes under `prefix`.
pub fn table_prefix(prefix: &str, source_table: &str) -> String {
    format!("{prefix}{source_table}/")
}

/// `<prefix><table>/<sequence, 40 digits>-<eventID>.json`; characters of the eventID other
/// than letters, digits and '-' become '_' (eventIDs are hex in practice).
pub fn object_key(prefix: &str, source_table: &str, sequence: &str, event_id: &str) -> String {
    let id: String = event_id
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    format!(
        "{}{sequence:0>SEQUENCE_DIGITS$}-{id}.json",
        table_prefix(prefix, source_table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::Value;
    use crate::plan::decide::Unwritable;

    const ROUTE: Route<'static> = Route {
        source_table: "shop-data",
        source_region: "us-east-1",
        target_table: "shop-data",
        target_region: "us-west-2",
        marker_attribute: "replica_origin",
    };

    fn work(action: Action) -> Work {
        Work {
            key_attributes: [("pk".to_string(), Value::S("order#1".into()))].into_iter().collect(),
            sequence: "4200000000000000000123".into(),
            event_id: "c81e728d9d4c2f636f067f89cc14862c".into(),
            created_at_ms: Some(1_764_000_000_000),
            records: 3,
            action,
        }
    }

    #[test]
    fn a_400_kb_item_survives_the_round_trip_whole() {
        let mut item: Attributes = [
            ("pk".to_string(), Value::S("order#1".into())),
            ("blob".to_string(), Value::B(vec![0xff; 399 * 1024])),
            ("total".to_string(), Value::N("129.90".into())),
            ("replica_origin".to_string(), Value::S("us-east-1#put#1".into())),
        ]
        .into_iter()
        .collect();
        let action = Action::Unwritable {
            reason: Unwritable::TooLarge { bytes: 410_000 },
            item: Some(item.clone()),
        };
        let envelope = Envelope::of(&work(action), "4200000000000000000100", "too large".into(), ROUTE, 7).unwrap();
        let json = envelope.to_json();
        assert!(json.len() > 399 * 1024, "{} bytes", json.len());
        let back = Envelope::from_json(&json, ROUTE).unwrap();
        assert_eq!(back, envelope);
        item.remove("replica_origin");
        assert_eq!(back.new_image.unwrap().0, item, "every attribute but our marker");
        assert_eq!((back.records_covered, back.times_dead_lettered), (3, 1));
        assert_eq!(back.first_sequence_number, "4200000000000000000100");
    }

    #[test]
    fn deletes_keep_their_version_and_skips_have_no_envelope() {
        let delete = Envelope::of(
            &work(Action::Delete {
                version: Some("9".into()),
            }),
            "1",
            "e".into(),
            ROUTE,
            0,
        )
        .unwrap();
        assert_eq!(
            (delete.operation, delete.new_image.is_none()),
            (Operation::Delete, true)
        );
        assert_eq!(delete.version.as_deref(), Some("9"));
        assert!(Envelope::of(&work(Action::Read), "1", "e".into(), ROUTE, 0).is_none());
    }

    #[test]
    fn keys_list_in_stream_order_and_hostile_ids_stay_in_their_folder() {
        let short = object_key("dlq/", "t", "999999999999999999999", "a");
        let long = object_key("dlq/", "t", "1000000000000000000000", "b");
        assert!(short < long, "{short} < {long}");
        assert_eq!(short, "dlq/t/0000000000000000000999999999999999999999-a.json");
        let hostile = object_key("dlq/", "t", "1", "../../etc/passwd\n");
        assert_eq!(hostile, format!("dlq/t/{}1-______etc_passwd_.json", "0".repeat(39)));
    }

    #[test]
    fn a_foreign_or_broken_document_is_refused() {
        let envelope = Envelope::of(&work(Action::Delete { version: None }), "1", "e".into(), ROUTE, 0).unwrap();
        let other = Route {
            target_region: "eu-west-1",
            ..ROUTE
        };
        let err = Envelope::from_json(&envelope.to_json(), other).unwrap_err();
        assert!(err.contains("this replicator"), "{err}");
        assert!(Envelope::from_json(b"{}", ROUTE)
            .unwrap_err()
            .contains("not a dead-letter envelope"));
        let mut wrong = envelope.clone();
        wrong.format = "v0".into();
        assert!(Envelope::from_json(&wrong.to_json(), ROUTE)
            .unwrap_err()
            .contains("format"));
    }
}
