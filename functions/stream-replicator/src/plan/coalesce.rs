//! Coalescing: of all changes to one key in a batch, only the last is written.
//!
//! The stream delivers a shard's changes in order and a batch comes from one shard, so
//! the last change of a key is its state at the end of the batch. Writing only that one
//! keeps per-key order (earlier states are never written after later ones) and guarantees
//! that no request ever holds the same key twice.
//!
//! "Last" is by the records' `SequenceNumber` (DynamoDB Streams orders each item's changes
//! by it), which within one batch is also their order in the array; a batch in which a
//! key's sequence numbers go backwards is refused, never written with an older image.
//!
//! One exception: under the TTL `skip` policy a TTL delete does not supersede the key's
//! earlier change in the batch, so an update made just before expiry still reaches the
//! target (which keeps the item until its own TTL removes it).

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::config::TtlPolicy;
use crate::domain::key::ItemKey;
use crate::event::change::{ChangeKind, SourceChange};

/// The last change of one key and the span of records it stands for. `C` is the change:
/// a [`SourceChange`], or a record whose image is not built yet.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedChange<C = SourceChange> {
    /// Index of the key's first record in the batch: if this key is not durably written,
    /// the batch must be retried from there.
    pub first_index: usize,
    /// How many records of the batch touched the key.
    pub records: usize,
    /// The key's last change.
    pub last: C,
}

/// The coalesced batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Coalesced<C = SourceChange> {
    /// One entry per distinct key, ordered by the key's first record.
    pub keys: Vec<KeyedChange<C>>,
    /// For each record of the batch (by index), its entry in `keys`.
    pub slot_of_record: Vec<usize>,
}

impl<C> Default for Coalesced<C> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            slot_of_record: Vec::new(),
        }
    }
}

/// Groups changes by key as they arrive, keeping each key's last change (see the module
/// note on `ttl`), ordered by first appearance. Superseded changes are dropped at once, so
/// a batch with repeated keys never holds all of its images.
#[derive(Debug)]
pub struct Coalescer<C = SourceChange> {
    ttl: TtlPolicy,
    slots: HashMap<ItemKey, usize, foldhash::fast::RandomState>,
    /// Per slot: the index and sequence number of the key's newest record so far.
    newest: Vec<(usize, String)>,
    coalesced: Coalesced<C>,
}

/// A record whose sequence number is below that of an earlier record of the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrder {
    /// The record's position in the batch.
    pub index: usize,
    /// Its sequence number.
    pub sequence: String,
    /// The earlier record of the same key.
    pub earlier_index: usize,
    /// That record's (higher) sequence number.
    pub earlier_sequence: String,
}

/// Orders two stream sequence numbers (decimal strings of up to 40 digits) as numbers.
pub fn sequence_order(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl<C: AsRef<SourceChange>> Coalescer<C> {
    /// An empty coalescer.
    pub fn new(ttl: TtlPolicy) -> Self {
        Self {
            ttl,
            slots: HashMap::default(),
            newest: Vec::new(),
            coalesced: Coalesced::default(),
        }
    }

    /// Adds the batch's next change; refuses it when its sequence number is below that of
    /// an earlier change of the same key.
    pub fn push(&mut self, change: C) -> Result<(), OutOfOrder> {
        let Coalesced { keys, slot_of_record } = &mut self.coalesced;
        let source = change.as_ref();
        match self.slots.get(&source.key) {
            Some(&slot) => {
                let (earlier_index, earlier_sequence) = &mut self.newest[slot];
                if sequence_order(&source.sequence, earlier_sequence) == Ordering::Less {
                    return Err(OutOfOrder {
                        index: source.index,
                        sequence: source.sequence.clone(),
                        earlier_index: *earlier_index,
                        earlier_sequence: earlier_sequence.clone(),
                    });
                }
                (*earlier_index, *earlier_sequence) = (source.index, source.sequence.clone());
                let entry = &mut keys[slot];
                entry.records += 1;
                let passive =
                    self.ttl == TtlPolicy::Skip && matches!(source.kind, ChangeKind::Remove { by_ttl: true, .. });
                if !passive {
                    entry.last = change;
                }
                slot_of_record.push(slot);
            }
            None => {
                let slot = keys.len();
                self.slots.insert(source.key.clone(), slot);
                self.newest.push((source.index, source.sequence.clone()));
                slot_of_record.push(slot);
                keys.push(KeyedChange {
                    first_index: source.index,
                    records: 1,
                    last: change,
                });
            }
        }
        Ok(())
    }

    /// The coalesced batch.
    pub fn finish(self) -> Coalesced<C> {
        self.coalesced
    }
}

/// [`Coalescer`] over a whole batch.
#[cfg(test)]
pub fn coalesce(changes: Vec<SourceChange>, ttl: TtlPolicy) -> Coalesced {
    let mut coalescer = Coalescer::new(ttl);
    for change in changes {
        coalescer.push(change).expect("the test batch is in sequence order");
    }
    coalescer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::{Attributes, Value};
    use crate::domain::key::KeySchema;
    use crate::event::change::ChangeKind;

    fn change(index: usize, key: &str, qty: Option<&str>) -> SourceChange {
        let schema = KeySchema::parse("pk").unwrap();
        let key_attributes: Attributes = [("pk".to_string(), Value::S(key.into()))].into_iter().collect();
        let kind = match qty {
            Some(q) => {
                let mut new = key_attributes.clone();
                new.insert("qty".into(), Value::N(q.into()));
                ChangeKind::Upsert {
                    new: Some(new),
                    old: None,
                }
            }
            None => ChangeKind::Remove {
                old: None,
                by_ttl: false,
            },
        };
        SourceChange {
            index,
            sequence: format!("{}", 100 + index),
            key: schema.key_of(&key_attributes).unwrap(),
            key_attributes,
            kind,
            created_at_ms: None,
            event_id: String::new(),
        }
    }

    #[test]
    fn the_last_change_of_each_key_wins_in_first_seen_order() {
        let changes = vec![
            change(0, "a", Some("1")),
            change(1, "b", Some("1")),
            change(2, "a", Some("2")),
            change(3, "c", Some("1")),
            change(4, "a", None),
            change(5, "b", Some("3")),
        ];
        let coalesced = coalesce(changes.clone(), TtlPolicy::Replicate);
        let keyed = &coalesced.keys;
        let summary: Vec<(usize, usize, usize)> =
            keyed.iter().map(|k| (k.first_index, k.records, k.last.index)).collect();
        assert_eq!(summary, [(0, 3, 4), (1, 2, 5), (3, 1, 3)]);
        assert_eq!(keyed[0].last, changes[4]);
        assert_eq!(coalesced.slot_of_record, [0, 1, 0, 2, 0, 1]);
    }

    #[test]
    fn a_skipped_ttl_delete_does_not_hide_the_update_before_it() {
        let mut expired = change(2, "a", None);
        expired.kind = ChangeKind::Remove {
            old: None,
            by_ttl: true,
        };
        let changes = vec![change(0, "a", Some("1")), change(1, "a", Some("2")), expired.clone()];
        let skipped = coalesce(changes.clone(), TtlPolicy::Skip);
        assert_eq!(skipped.keys.len(), 1);
        assert_eq!((skipped.keys[0].records, skipped.keys[0].last.index), (3, 1));
        let replicated = coalesce(changes, TtlPolicy::Replicate);
        assert_eq!(replicated.keys[0].last, expired);
        // A TTL delete alone is still the key's change (the rules skip it).
        assert_eq!(coalesce(vec![expired.clone()], TtlPolicy::Skip).keys[0].last, expired);
    }

    #[test]
    fn every_key_appears_once_and_every_record_is_accounted_for() {
        let mut rng = fastrand::Rng::with_seed(7);
        let changes: Vec<SourceChange> = (0..2_000)
            .map(|i| {
                let key = format!("k{}", rng.usize(0..300));
                change(i, &key, if rng.bool() { Some("1") } else { None })
            })
            .collect();
        let coalesced = coalesce(changes.clone(), TtlPolicy::Replicate);
        let keyed = &coalesced.keys;
        let total: usize = keyed.iter().map(|k| k.records).sum();
        assert_eq!(total, changes.len());
        let mut keys: Vec<_> = keyed.iter().map(|k| format!("{:?}", k.last.key)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), keyed.len());
        for (index, slot) in coalesced.slot_of_record.iter().enumerate() {
            assert_eq!(keyed[*slot].last.key, changes[index].key);
        }
        for k in keyed {
            // The kept change is the last one of its key, and its first record precedes it.
            let last = changes.iter().rev().find(|c| c.key == k.last.key).unwrap();
            let first = changes.iter().find(|c| c.key == k.last.key).unwrap();
            assert_eq!((k.last.index, k.first_index), (last.index, first.index));
        }
        assert!(keyed.windows(2).all(|w| w[0].first_index < w[1].first_index));
    }

    #[test]
    fn an_empty_batch_has_nothing_to_write() {
        assert_eq!(coalesce(Vec::new(), TtlPolicy::Skip), Coalesced::default());
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(sequence_order("99", "100"), Ordering::Less);
        assert_eq!(sequence_order("000100", "100"), Ordering::Equal);
        assert_eq!(
            sequence_order(
                "400000000000000000000000000000000000001",
                "39999999999999999999999999999999999999"
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn a_key_going_backwards_in_sequence_is_refused() {
        let mut older = change(1, "CART#1", Some("1"));
        older.sequence = "150".into();
        let mut coalescer = Coalescer::new(TtlPolicy::Replicate);
        coalescer.push(change(0, "CART#1", Some("2"))).unwrap();
        coalescer.push(change(2, "CART#2", Some("5"))).unwrap();
        let mut newest = change(3, "CART#1", Some("3"));
        newest.sequence = "200".into();
        coalescer.push(newest).unwrap();
        let refused = coalescer.push(older).unwrap_err();
        assert_eq!(
            refused,
            OutOfOrder {
                index: 1,
                sequence: "150".into(),
                earlier_index: 3,
                earlier_sequence: "200".into(),
            }
        );
        // Another key's lower sequence number is no problem: order is per key.
        let mut coalescer = Coalescer::new(TtlPolicy::Replicate);
        coalescer.push(change(5, "CART#1", Some("1"))).unwrap();
        coalescer.push(change(0, "CART#2", Some("1"))).unwrap();
    }
}
