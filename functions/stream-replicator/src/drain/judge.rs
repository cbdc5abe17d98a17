//! Whether one key's last change in the source stream is still to reach the target (pure):
//! the drain check's verdict per key, with the same rules a batch is written by.

use crate::config::Mode;
use crate::domain::item::Attributes;
use crate::plan::decide::Action;
use crate::reconcile::decide::{verdict, Verdict};
use crate::reconcile::direction::Direction;

/// What the target shows of one key's last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// The target holds the change (or, by version, something newer that wins over it).
    InTarget,
    /// A write of it is still to come.
    Pending,
    /// Nothing is to be written: the replicator's own change, a copy from before the
    /// source was active, a TTL skip, a stranded change that lost (in the conflict log).
    NothingToWrite,
    /// It can never be written: it is (or will be) in the dead-letter bucket.
    Unwritable,
}

/// The state of `action` (the key's last change, as the rules decided it) given the
/// target's current item, when the batch flows in `direction`.
pub fn key_state(
    action: &Action,
    target: Option<&Attributes>,
    direction: Direction,
    mode: &Mode,
    marker_attribute: &str,
) -> KeyState {
    match action {
        Action::Skip(_) => return KeyState::NothingToWrite,
        Action::Unwritable { .. } => return KeyState::Unwritable,
        Action::Put { .. } | Action::Delete { .. } | Action::Read => {}
    }
    match (verdict(action, target, mode, marker_attribute), direction) {
        (Verdict::AlreadyInTarget, _) => KeyState::InTarget,
        // Replicating by version: a newer target item is where the write would stop.
        (Verdict::Conflict(_), Direction::Replicate) if matches!(mode, Mode::LastWriterWins { .. }) => {
            KeyState::InTarget
        }
        (Verdict::Conflict(_), Direction::Reconcile) => KeyState::NothingToWrite,
        (Verdict::Conflict(_) | Verdict::Apply | Verdict::AsPlanned, _) => KeyState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::Value;
    use crate::plan::decide::SkipReason;

    const M: &str = "replica_origin";

    fn item(v: &str, note: &str) -> Attributes {
        [
            ("pk".to_string(), Value::S("A".into())),
            ("v".to_string(), Value::N(v.into())),
            ("note".to_string(), Value::S(note.into())),
        ]
        .into_iter()
        .collect()
    }

    fn put(v: &str, note: &str) -> Action {
        Action::Put {
            item: item(v, note),
            version: Some(v.into()),
        }
    }

    #[test]
    fn a_change_is_drained_once_the_target_holds_it() {
        let ow = Mode::Overwrite;
        let lww = Mode::LastWriterWins {
            version_attribute: "v".into(),
        };
        let (r, c) = (Direction::Replicate, Direction::Reconcile);
        let mut marked = item("2", "outage order");
        marked.insert(M.into(), Value::S("us-west-2#put#0123456789abcdef".into()));
        let cases: Vec<(Action, Option<Attributes>, Direction, &Mode, KeyState)> = vec![
            // replicated: the same content (the marker aside)
            (
                put("2", "outage order"),
                Some(marked.clone()),
                r,
                &ow,
                KeyState::InTarget,
            ),
            (put("2", "outage order"), Some(marked), r, &lww, KeyState::InTarget),
            // not yet: missing, or older in the target
            (put("2", "outage order"), None, r, &ow, KeyState::Pending),
            (
                put("2", "outage order"),
                Some(item("1", "before")),
                r,
                &ow,
                KeyState::Pending,
            ),
            (
                put("2", "outage order"),
                Some(item("1", "before")),
                r,
                &lww,
                KeyState::Pending,
            ),
            // by version the target's newer item wins: nothing more will be written
            (
                put("2", "outage order"),
                Some(item("3", "newer")),
                r,
                &lww,
                KeyState::InTarget,
            ),
            // a delete is drained once the item is gone
            (Action::Delete { version: None }, None, r, &ow, KeyState::InTarget),
            (
                Action::Delete { version: None },
                Some(item("1", "x")),
                r,
                &ow,
                KeyState::Pending,
            ),
            // reconciling: a loser goes to the conflict log, a newer stranded change is still to come
            (
                put("2", "stranded"),
                Some(item("3", "newer")),
                c,
                &lww,
                KeyState::NothingToWrite,
            ),
            (put("2", "stranded"), None, c, &ow, KeyState::NothingToWrite),
            (
                put("4", "stranded"),
                Some(item("3", "older")),
                c,
                &lww,
                KeyState::Pending,
            ),
            // skipped by the rules
            (
                Action::Skip(SkipReason::OwnChange),
                None,
                r,
                &ow,
                KeyState::NothingToWrite,
            ),
            (
                Action::Skip(SkipReason::CopyFromBeforeActive),
                None,
                r,
                &ow,
                KeyState::NothingToWrite,
            ),
        ];
        for (action, target, direction, mode, expected) in cases {
            assert_eq!(
                key_state(&action, target.as_ref(), direction, mode, M),
                expected,
                "{action:?} over {target:?} ({direction:?}, {mode:?})"
            );
        }
    }
}
