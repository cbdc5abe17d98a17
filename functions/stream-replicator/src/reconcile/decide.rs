//! What becomes of a stranded change (pure): compared with the target's current item, the
//! newer one is kept, by version where one is known (last-writer-wins mode), otherwise the
//! target wins; the loser goes to the conflict log. Nothing is applied blindly over the
//! authoritative side.

use crate::config::Mode;
use crate::domain::item::Value;
use crate::domain::item::{content_hash, Attributes};
use crate::domain::number::parse_number;
use crate::plan::decide::Action;

/// The verdict on one key's stranded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The target already holds exactly this state: nothing to do.
    AlreadyInTarget,
    /// The stranded change is newer (last-writer-wins): write it, guarded by its version.
    Apply,
    /// The target's item wins: the stranded change goes to the conflict log.
    Conflict(&'static str),
    /// Not a reconciliation question (the replicator's own change, a TTL skip, an
    /// unwritable change): handled as in a normal batch.
    AsPlanned,
}

/// The verdict on `action` (the stranded change, as the rules decided it) against
/// `target` (the target's current item).
pub fn verdict(action: &Action, target: Option<&Attributes>, mode: &Mode, marker_attribute: &str) -> Verdict {
    let same = |item: &Attributes| {
        target.is_some_and(|t| content_hash(t, marker_attribute) == content_hash(item, marker_attribute))
    };
    let target_version = |attribute: &str| target.and_then(|t| number(t, attribute));
    match (action, mode) {
        (Action::Put { item, .. }, _) if same(item) => Verdict::AlreadyInTarget,
        (Action::Delete { .. }, _) if target.is_none() => Verdict::AlreadyInTarget,
        (Action::Put { .. } | Action::Delete { .. }, Mode::Overwrite) => Verdict::Conflict(if target.is_some() {
            "the target changed since; without versions the target wins"
        } else {
            "the target has no such item; without versions the target wins"
        }),
        (Action::Put { version: Some(v), .. }, Mode::LastWriterWins { version_attribute }) => {
            match (target, target_version(version_attribute)) {
                (None, _) => Verdict::Apply,
                (Some(_), Some(t)) if number_value(v) > Some(t) => Verdict::Apply,
                (Some(_), Some(_)) => Verdict::Conflict("the target's version is newer or equal"),
                (Some(_), None) => Verdict::Conflict("the target's item has no version; the target wins"),
            }
        }
        (Action::Delete { version: Some(v) }, Mode::LastWriterWins { version_attribute }) => {
            match target_version(version_attribute) {
                Some(t) if Some(t) <= number_value(v) => Verdict::Apply,
                Some(_) => Verdict::Conflict("the target's version is newer than the deleted one"),
                None => Verdict::Conflict("the target's item has no version; the target wins"),
            }
        }
        _ => Verdict::AsPlanned,
    }
}

fn number(item: &Attributes, attribute: &str) -> Option<f64> {
    match item.get(attribute) {
        Some(Value::N(n)) => number_value(n),
        _ => None,
    }
}

fn number_value(n: &str) -> Option<f64> {
    parse_number(n).and_then(|_| n.parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::decide::SkipReason;

    const M: &str = "replica_origin";

    fn item(v: Option<&str>, note: &str) -> Attributes {
        let mut item: Attributes = [
            ("pk".to_string(), Value::S("A".into())),
            ("note".to_string(), Value::S(note.into())),
        ]
        .into_iter()
        .collect();
        if let Some(v) = v {
            item.insert("v".into(), Value::N(v.into()));
        }
        item
    }

    fn put(v: Option<&str>, note: &str) -> Action {
        Action::Put {
            item: item(v, note),
            version: v.map(str::to_owned),
        }
    }

    #[test]
    fn every_combination_of_stranded_change_and_target_state() {
        let ow = Mode::Overwrite;
        let lww = Mode::LastWriterWins {
            version_attribute: "v".into(),
        };
        let delete = |v: Option<&str>| Action::Delete {
            version: v.map(str::to_owned),
        };
        let (t1, t5) = (item(Some("1"), "target"), item(Some("5"), "target"));
        let cases: Vec<(Action, Option<&Attributes>, &Mode, Verdict)> = vec![
            // the same state on both sides
            (put(Some("1"), "target"), Some(&t1), &lww, Verdict::AlreadyInTarget),
            (delete(Some("1")), None, &lww, Verdict::AlreadyInTarget),
            (delete(None), None, &ow, Verdict::AlreadyInTarget),
            // stranded newer: applied
            (put(Some("2"), "stranded"), Some(&t1), &lww, Verdict::Apply),
            // stranded older or equal: the target wins
            (
                put(Some("2"), "stranded"),
                Some(&t5),
                &lww,
                Verdict::Conflict("the target's version is newer or equal"),
            ),
            (
                put(Some("5"), "stranded"),
                Some(&t5),
                &lww,
                Verdict::Conflict("the target's version is newer or equal"),
            ),
            // the target deleted it (or never had it): last-writer-wins has no tombstones
            (put(Some("2"), "stranded"), None, &lww, Verdict::Apply),
            // stranded delete of a version the target still holds: applied; of an older one: conflict
            (delete(Some("1")), Some(&t1), &lww, Verdict::Apply),
            (
                delete(Some("1")),
                Some(&t5),
                &lww,
                Verdict::Conflict("the target's version is newer than the deleted one"),
            ),
            // without versions the target wins, whatever it holds
            (
                put(None, "stranded"),
                Some(&t1),
                &ow,
                Verdict::Conflict("the target changed since; without versions the target wins"),
            ),
            (
                put(None, "stranded"),
                None,
                &ow,
                Verdict::Conflict("the target has no such item; without versions the target wins"),
            ),
            (
                delete(None),
                Some(&t1),
                &ow,
                Verdict::Conflict("the target changed since; without versions the target wins"),
            ),
            // not reconciliation questions
            (Action::Skip(SkipReason::OwnChange), Some(&t1), &lww, Verdict::AsPlanned),
        ];
        for (action, target, mode, expected) in cases {
            assert_eq!(verdict(&action, target, mode, M), expected, "{action:?} vs {target:?}");
        }
        // The marker alone is no difference.
        let mut marked = item(Some("1"), "target");
        marked.insert(M.into(), Value::S("us-west-2#put#1".into()));
        assert_eq!(
            verdict(&put(Some("1"), "target"), Some(&marked), &lww, M),
            Verdict::AlreadyInTarget
        );
    }
}
