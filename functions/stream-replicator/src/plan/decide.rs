//! What to do with a key's last change: write it, delete, read it first, or skip it, and why.

use crate::config::{Mode, ReplicatorConfig, TtlPolicy};
use crate::domain::item::{item_size, Attributes, Value, MAX_ITEM_BYTES};
use crate::domain::number::parse_number;
use crate::event::change::ChangeKind;
use crate::plan::marker::OriginMarker;

/// The action for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write the item (in last-writer-wins mode stamped with the origin marker).
    Put {
        /// The full item to write.
        item: Attributes,
        /// In last-writer-wins mode, the item's version: the put only applies over an older one.
        version: Option<String>,
    },
    /// Delete the item.
    Delete {
        /// In last-writer-wins mode, the deleted item's version: the delete only applies if
        /// the target's item is not newer.
        version: Option<String>,
    },
    /// KEYS_ONLY: read the current item from the source table, then decide again.
    Read,
    /// Nothing to write, by design.
    Skip(SkipReason),
    /// The change can never be written: it goes to the dead-letter store, with the item
    /// it would have written when it has one.
    Unwritable {
        /// Why it cannot be written.
        reason: Unwritable,
        /// The item's new image (without a marker of ours), when the change has one.
        item: Option<Attributes>,
    },
}

/// Why a change is intentionally not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A replicator made the change: sending it back would loop.
    OwnChange,
    /// A TTL delete under the `skip` policy.
    Ttl,
    /// Last-writer-wins: the target already holds a newer version (ConditionalCheckFailed).
    Stale,
    /// KEYS_ONLY: the item no longer exists at the source; the REMOVE that follows in the
    /// stream replicates the delete.
    GoneAtSource,
    /// A stranded change (after a failover) that lost to the target's item: in the
    /// conflict log.
    Conflict,
    /// A stranded change the target already holds.
    AlreadyInTarget,
    /// `SOURCE_AUTHORITY=while-active`: made before the source's region became active, so a
    /// copy the other direction wrote; the target has it or something newer.
    CopyFromBeforeActive,
}

impl SkipReason {
    /// The suffix of the `RecordsSkipped<Reason>` metric.
    pub fn metric_suffix(self) -> &'static str {
        match self {
            Self::OwnChange => "OwnChange",
            Self::Ttl => "Ttl",
            Self::Stale => "Stale",
            Self::GoneAtSource => "GoneAtSource",
            Self::Conflict => "Conflict",
            Self::AlreadyInTarget => "AlreadyInTarget",
            Self::CopyFromBeforeActive => "CopyFromBeforeActive",
        }
    }
}

/// Why a change can never be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unwritable {
    /// Over DynamoDB's 400 KB item limit (once the marker is added, in last-writer-wins mode).
    #[error("item is {bytes} bytes as written, over the 400 KB limit")]
    TooLarge {
        /// The item's size.
        bytes: usize,
    },
    /// Last-writer-wins needs a numeric version on every written item.
    #[error("item has no numeric version attribute {0:?}")]
    NoVersion(String),
    /// Last-writer-wins needs the deleted item's version, from the REMOVE's old image.
    #[error("REMOVE has no old image with the version attribute {0:?}; last-writer-wins needs NEW_AND_OLD_IMAGES")]
    DeleteWithoutVersion(String),
    /// DynamoDB refused the write as invalid (e.g. ValidationException).
    #[error("rejected by DynamoDB: {0}")]
    Rejected(String),
}

/// The settings decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Overwrite or last-writer-wins.
    pub mode: &'a Mode,
    /// The origin marker.
    pub marker: &'a OriginMarker,
    /// The TTL delete policy.
    pub ttl: TtlPolicy,
}

impl<'a> Rules<'a> {
    /// The rules of `config`, with its origin `marker`.
    pub fn new(config: &'a ReplicatorConfig, marker: &'a OriginMarker) -> Self {
        Self {
            mode: &config.mode,
            marker,
            ttl: config.ttl_deletes,
        }
    }
}

impl Rules<'_> {
    /// Decides for a key's last change.
    pub fn decide(&self, kind: ChangeKind) -> Action {
        match kind {
            ChangeKind::Upsert { new: None, .. } => Action::Read,
            ChangeKind::Upsert { new: Some(item), old } => self.upsert(item, old.as_ref()),
            ChangeKind::Remove { by_ttl: true, .. } if self.ttl == TtlPolicy::Skip => Action::Skip(SkipReason::Ttl),
            ChangeKind::Remove { old, .. } => self.remove(old.as_ref()),
        }
    }

    /// Decides for a KEYS_ONLY change once the current source item is known.
    pub fn decide_current(&self, current: Option<Attributes>) -> Action {
        match current {
            Some(item) => self.upsert(item, None),
            None => Action::Skip(SkipReason::GoneAtSource),
        }
    }

    fn upsert(&self, mut item: Attributes, old: Option<&Attributes>) -> Action {
        if self.marker.upsert_is_own(&item, old) {
            return Action::Skip(SkipReason::OwnChange);
        }
        let version = match self.mode {
            Mode::Overwrite => None,
            Mode::LastWriterWins { version_attribute } => match numeric(&item, version_attribute) {
                Some(v) => Some(v),
                None => {
                    return Action::Unwritable {
                        reason: Unwritable::NoVersion(version_attribute.clone()),
                        item: Some(item),
                    }
                }
            },
        };
        // One-way copies carry no marker (nothing comes back to recognise), so an item
        // that fits the source fits the target; two-way copies need it to stop echoes.
        if version.is_some() {
            self.marker.stamp(&mut item);
        }
        let bytes = item_size(&item);
        if bytes > MAX_ITEM_BYTES {
            if version.is_some() {
                item.remove(self.marker.attribute());
            }
            return Action::Unwritable {
                reason: Unwritable::TooLarge { bytes },
                item: Some(item),
            };
        }
        Action::Put { item, version }
    }

    fn remove(&self, old: Option<&Attributes>) -> Action {
        if old.is_some_and(|o| self.marker.remove_is_own(o)) {
            return Action::Skip(SkipReason::OwnChange);
        }
        match self.mode {
            Mode::Overwrite => Action::Delete { version: None },
            Mode::LastWriterWins { version_attribute } => match old.and_then(|o| numeric(o, version_attribute)) {
                Some(v) => Action::Delete { version: Some(v) },
                None => Action::Unwritable {
                    reason: Unwritable::DeleteWithoutVersion(version_attribute.clone()),
                    item: None,
                },
            },
        }
    }
}

fn numeric(item: &Attributes, attribute: &str) -> Option<String> {
    match item.get(attribute) {
        Some(Value::N(n)) if parse_number(n).is_some() => Some(n.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "replica_origin";

    fn item(pairs: &[(&str, Value)]) -> Attributes {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn s(v: &str) -> Value {
        Value::S(v.into())
    }

    fn n(v: &str) -> Value {
        Value::N(v.into())
    }

    fn lww() -> Mode {
        Mode::LastWriterWins {
            version_attribute: "v".into(),
        }
    }

    fn rules<'a>(mode: &'a Mode, marker: &'a OriginMarker, ttl: TtlPolicy) -> Rules<'a> {
        Rules { mode, marker, ttl }
    }

    fn marker() -> OriginMarker {
        OriginMarker::new(M, "us-east-1")
    }

    fn upsert(new: Attributes, old: Option<Attributes>) -> ChangeKind {
        ChangeKind::Upsert { new: Some(new), old }
    }

    #[test]
    fn overwrite_puts_the_item_as_it_is_and_deletes_unconditionally() {
        let m = marker();
        let r = rules(&Mode::Overwrite, &m, TtlPolicy::Replicate);
        let source = item(&[("pk", s("A")), ("qty", n("2"))]);
        let Action::Put { item: written, version } = r.decide(upsert(source.clone(), None)) else {
            panic!("expected a put")
        };
        assert_eq!(version, None);
        assert_eq!(written, source, "a one-way copy adds no origin marker");
        assert_eq!(
            r.decide(ChangeKind::Remove {
                old: None,
                by_ttl: false
            }),
            Action::Delete { version: None }
        );
    }

    #[test]
    fn lww_puts_carry_the_marker() {
        let m = marker();
        let mode = lww();
        let r = rules(&mode, &m, TtlPolicy::Replicate);
        let Action::Put { item: written, .. } = r.decide(upsert(item(&[("pk", s("A")), ("v", n("1"))]), None)) else {
            panic!("expected a put")
        };
        assert_eq!(written.len(), 3);
        assert!(
            m.upsert_is_own(&written, None),
            "the written item carries a valid marker"
        );
    }

    #[test]
    fn lww_puts_and_deletes_carry_the_version() {
        let m = marker();
        let mode = lww();
        let r = rules(&mode, &m, TtlPolicy::Replicate);
        let action = r.decide(upsert(item(&[("pk", s("A")), ("v", n("7"))]), None));
        assert!(
            matches!(action, Action::Put { version: Some(ref v), .. } if v == "7"),
            "{action:?}"
        );
        assert_eq!(
            r.decide(ChangeKind::Remove {
                old: Some(item(&[("v", n("8"))])),
                by_ttl: false
            }),
            Action::Delete {
                version: Some("8".into())
            }
        );
    }

    #[test]
    fn lww_without_a_usable_version_is_unwritable() {
        let m = marker();
        let mode = lww();
        let r = rules(&mode, &m, TtlPolicy::Replicate);
        for image in [
            item(&[("pk", s("A"))]),
            item(&[("pk", s("A")), ("v", s("7"))]),
            item(&[("pk", s("A")), ("v", n("seven"))]),
        ] {
            // Never a silent skip: the item goes to the dead-letter store whole.
            assert_eq!(
                r.decide(upsert(image.clone(), None)),
                Action::Unwritable {
                    reason: Unwritable::NoVersion("v".into()),
                    item: Some(image)
                }
            );
        }
        for old in [None, Some(item(&[("other", n("1"))]))] {
            assert_eq!(
                r.decide(ChangeKind::Remove { old, by_ttl: false }),
                Action::Unwritable {
                    reason: Unwritable::DeleteWithoutVersion("v".into()),
                    item: None
                }
            );
        }
    }

    #[test]
    fn own_changes_are_skipped_in_both_modes_deletes_included() {
        let m = marker();
        let mut replicated = item(&[("pk", s("A")), ("v", n("3"))]);
        OriginMarker::new(M, "us-west-2").stamp(&mut replicated);
        let tagged = item(&[("v", n("3")), (M, s(&m.delete_token("12")))]);
        for mode in [Mode::Overwrite, lww()] {
            let r = rules(&mode, &m, TtlPolicy::Replicate);
            assert_eq!(
                r.decide(upsert(replicated.clone(), None)),
                Action::Skip(SkipReason::OwnChange)
            );
            assert_eq!(
                r.decide(ChangeKind::Remove {
                    old: Some(tagged.clone()),
                    by_ttl: false
                }),
                Action::Skip(SkipReason::OwnChange)
            );
            // An application edit of the replicated item goes through.
            let mut edited = replicated.clone();
            edited.insert("note".into(), s("gift"));
            assert!(matches!(r.decide(upsert(edited, None)), Action::Put { .. }));
        }
    }

    #[test]
    fn ttl_deletes_follow_the_policy() {
        let m = marker();
        let ttl_delete = || ChangeKind::Remove {
            old: Some(item(&[("v", n("1"))])),
            by_ttl: true,
        };
        let mode = Mode::Overwrite;
        assert_eq!(
            rules(&mode, &m, TtlPolicy::Skip).decide(ttl_delete()),
            Action::Skip(SkipReason::Ttl)
        );
        assert_eq!(
            rules(&mode, &m, TtlPolicy::Replicate).decide(ttl_delete()),
            Action::Delete { version: None }
        );
        let mode = lww();
        assert_eq!(
            rules(&mode, &m, TtlPolicy::Replicate).decide(ttl_delete()),
            Action::Delete {
                version: Some("1".into())
            }
        );
        // A user delete is never affected by the TTL policy.
        assert_eq!(
            rules(&Mode::Overwrite, &m, TtlPolicy::Skip).decide(ChangeKind::Remove {
                old: None,
                by_ttl: false
            }),
            Action::Delete { version: None }
        );
    }

    #[test]
    fn items_over_400_kb_with_the_marker_are_unwritable_in_lww_mode_only() {
        let m = marker();
        // Exactly at the limit without the marker: in last-writer-wins mode the marker
        // pushes it over; a one-way copy writes it as it is.
        let filler = MAX_ITEM_BYTES - "pk".len() - 1 - "blob".len() - "v".len() - 2;
        let at_limit = item(&[("pk", s("A")), ("v", n("1")), ("blob", s(&"x".repeat(filler)))]);
        assert_eq!(item_size(&at_limit), MAX_ITEM_BYTES);
        let overwrite = rules(&Mode::Overwrite, &m, TtlPolicy::Replicate);
        assert!(matches!(
            overwrite.decide(upsert(at_limit.clone(), None)),
            Action::Put { .. }
        ));
        let mode = lww();
        let r = rules(&mode, &m, TtlPolicy::Replicate);
        let Action::Unwritable {
            reason: Unwritable::TooLarge { bytes },
            item: Some(kept),
        } = r.decide(upsert(at_limit.clone(), None))
        else {
            panic!("expected too large")
        };
        assert!(bytes > MAX_ITEM_BYTES);
        assert_eq!(
            kept, at_limit,
            "the dead-letter gets the source's item, without our marker"
        );
        let small_enough = item(&[("pk", s("A")), ("v", n("1")), ("blob", s(&"x".repeat(filler - 60)))]);
        assert!(matches!(r.decide(upsert(small_enough, None)), Action::Put { .. }));
    }

    #[test]
    fn keys_only_changes_are_read_then_decided_on_the_current_item() {
        let m = marker();
        let r = rules(&Mode::Overwrite, &m, TtlPolicy::Replicate);
        assert_eq!(r.decide(ChangeKind::Upsert { new: None, old: None }), Action::Read);
        assert_eq!(r.decide_current(None), Action::Skip(SkipReason::GoneAtSource));
        assert!(matches!(
            r.decide_current(Some(item(&[("pk", s("A"))]))),
            Action::Put { .. }
        ));
        let mut replicated = item(&[("pk", s("A"))]);
        m.stamp(&mut replicated);
        assert_eq!(r.decide_current(Some(replicated)), Action::Skip(SkipReason::OwnChange));
    }
}
