//! What a redrive writes for a dead-lettered change, decided against the source table's
//! current item (pure code). The source is the truth: a dead-lettered change is written
//! only while the source still holds exactly its state; if the source has moved on, a
//! later record of the stream carries the newer state (already written, still on its way,
//! or dead-lettered after this one), and writing the old change would bring back an
//! older state: it is stale.

use crate::config::Mode;
use crate::dead_letter::envelope::{Envelope, Operation};
use crate::domain::item::{content_hash, Attributes};
use crate::plan::decide::{Action, SkipReason, Unwritable};

/// The action for a dead-lettered change, given the action the rules decided for the
/// source's current item (`read`: what a KEYS_ONLY read of the key decided).
pub fn confirm(read: Action, envelope: &Envelope, mode: &Mode, marker_attribute: &str) -> Action {
    let same = |item: &Attributes| {
        envelope
            .new_image
            .as_ref()
            .is_some_and(|image| content_hash(item, marker_attribute) == content_hash(&image.0, marker_attribute))
    };
    match (envelope.operation, read) {
        // The source could not be read: the key stays dead-lettered for the next redrive.
        (_, Action::Read) => Action::Read,
        (Operation::Put, Action::Put { item, version }) if same(&item) => Action::Put { item, version },
        // Still unwritable as it is (too large, no version): it goes back to the bucket.
        (
            Operation::Put,
            Action::Unwritable {
                reason,
                item: Some(item),
            },
        ) if same(&item) => Action::Unwritable {
            reason,
            item: Some(item),
        },
        (Operation::Delete, Action::Skip(SkipReason::GoneAtSource)) => match (mode, &envelope.version) {
            (Mode::Overwrite, _) => Action::Delete { version: None },
            (Mode::LastWriterWins { .. }, Some(version)) => Action::Delete {
                version: Some(version.clone()),
            },
            (Mode::LastWriterWins { version_attribute }, None) => Action::Unwritable {
                reason: Unwritable::DeleteWithoutVersion(version_attribute.clone()),
                item: None,
            },
        },
        _ => Action::Skip(SkipReason::Stale),
    }
}

/// Whether the source's current item (`read`, as the rules decided it) is still what a
/// redrive wrote (`written`); a later change in between means the key must be written again.
pub fn still_written(written: &Action, read: &Action, marker_attribute: &str) -> bool {
    match (written, read) {
        (Action::Put { item: ours, .. }, Action::Put { item: now, .. }) => {
            content_hash(ours, marker_attribute) == content_hash(now, marker_attribute)
        }
        (Action::Delete { .. }, Action::Skip(SkipReason::GoneAtSource)) => true,
        _ => false,
    }
}

/// The action that writes the source's current state again (a verification round).
pub fn rewrite(read: Action) -> Action {
    match read {
        Action::Skip(SkipReason::GoneAtSource) => Action::Delete { version: None },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::envelope::FORMAT;
    use crate::domain::item::Value;
    use crate::event::dynamo_json::Image;

    const M: &str = "replica_origin";

    fn item(qty: &str) -> Attributes {
        [
            ("pk".to_string(), Value::S("A".into())),
            ("qty".to_string(), Value::N(qty.into())),
        ]
        .into_iter()
        .collect()
    }

    fn envelope(operation: Operation, image: Option<Attributes>, version: Option<&str>) -> Envelope {
        Envelope {
            format: FORMAT.into(),
            source_table: "t".into(),
            source_region: "us-east-1".into(),
            target_table: "t".into(),
            target_region: "us-west-2".into(),
            event_id: "e".into(),
            sequence_number: "1".into(),
            first_sequence_number: "1".into(),
            records_covered: 1,
            created_at_ms: None,
            operation,
            keys: Image(item("0").into_iter().filter(|(k, _)| k == "pk").collect()),
            new_image: image.map(Image),
            version: version.map(str::to_owned),
            error: "e".into(),
            dead_lettered_at_ms: 0,
            times_dead_lettered: 1,
        }
    }

    fn put(item: Attributes) -> Action {
        Action::Put { item, version: None }
    }

    #[test]
    fn every_combination_of_dead_lettered_change_and_source_state() {
        let ow = Mode::Overwrite;
        let lww = Mode::LastWriterWins {
            version_attribute: "v".into(),
        };
        let gone = || Action::Skip(SkipReason::GoneAtSource);
        let stale = Action::Skip(SkipReason::Stale);
        let dead_put = envelope(Operation::Put, Some(item("2")), None);
        let dead_delete = envelope(Operation::Delete, None, Some("4"));
        let cases = [
            // put, source unchanged: written
            (&dead_put, put(item("2")), &ow, put(item("2"))),
            // put, source changed since: stale (the later record carries it)
            (&dead_put, put(item("3")), &ow, stale.clone()),
            // put, source deleted since: stale (the REMOVE carries it), nothing resurrected
            (&dead_put, gone(), &ow, stale.clone()),
            // delete, source still without the item: deleted
            (&dead_delete, gone(), &ow, Action::Delete { version: None }),
            (
                &dead_delete,
                gone(),
                &lww,
                Action::Delete {
                    version: Some("4".into()),
                },
            ),
            // delete, item re-created since: stale
            (&dead_delete, put(item("5")), &ow, stale.clone()),
            // source unreadable: left for the next redrive
            (&dead_put, Action::Read, &ow, Action::Read),
            // a replicator's own change at the source is never sent back
            (&dead_put, Action::Skip(SkipReason::OwnChange), &lww, stale.clone()),
        ];
        for (dead, read, mode, expected) in cases {
            assert_eq!(
                confirm(read.clone(), dead, mode, M),
                expected,
                "{:?} vs {read:?}",
                dead.operation
            );
        }
        // A marker difference alone is no change of content.
        let mut marked = item("2");
        marked.insert(M.into(), Value::S("us-west-2#put#9".into()));
        assert_eq!(confirm(put(marked.clone()), &dead_put, &ow, M), put(marked));
        // Still unwritable: back to the bucket; LWW delete without version: the same.
        let unwritable = Action::Unwritable {
            reason: Unwritable::NoVersion("v".into()),
            item: Some(item("2")),
        };
        assert_eq!(confirm(unwritable.clone(), &dead_put, &lww, M), unwritable);
        let no_version = envelope(Operation::Delete, None, None);
        assert!(matches!(
            confirm(gone(), &no_version, &lww, M),
            Action::Unwritable { item: None, .. }
        ));
    }

    #[test]
    fn verification_sees_a_change_made_after_the_write() {
        let gone = Action::Skip(SkipReason::GoneAtSource);
        assert!(still_written(&put(item("2")), &put(item("2")), M));
        assert!(!still_written(&put(item("2")), &put(item("3")), M));
        assert!(!still_written(&put(item("2")), &gone, M));
        assert!(still_written(&Action::Delete { version: None }, &gone, M));
        assert!(!still_written(&Action::Delete { version: None }, &put(item("1")), M));
        assert_eq!(rewrite(gone), Action::Delete { version: None });
        assert_eq!(rewrite(put(item("3"))), put(item("3")));
    }
}
