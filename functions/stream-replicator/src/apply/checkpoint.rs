//! Where Lambda must resume: the earliest record whose change is not durably in the target.
//!
//! A key's change is done when its last change was written, or intentionally skipped. A
//! key that is not done makes all of its records not done, so the resume point is the first
//! record of the earliest such key; Lambda then retries every record from there, and
//! nothing after it counts as done, even if it was written (rewriting it is harmless).
//! A change that can never be written, or whose writes spent their retry budget, is done
//! once it is durably in the dead-letter store; until then it is not.

use std::collections::BTreeMap;

use crate::plan::decide::{SkipReason, Unwritable};

/// The result of replicating one key's last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Durably written to the target.
    Written,
    /// Intentionally not written.
    Skipped(SkipReason),
    /// Can never be written: bound for the dead-letter store.
    Unwritable(Unwritable),
    /// Transient failures outlasted the retry budget: bound for the dead-letter store.
    Exhausted(String),
    /// Durably in the dead-letter store, with the reason it is there.
    DeadLettered(String),
    /// Not (known to be) written and not dead-lettered: the deadline came first, or the
    /// failure concerns every write. Lambda delivers it again.
    NotDurable,
}

impl Outcome {
    /// Whether the key needs no retry.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Written | Self::Skipped(_) | Self::DeadLettered(_))
    }

    /// Why the change must go to the dead-letter store, if it must.
    pub fn dead_letter_reason(&self) -> Option<String> {
        match self {
            Self::Unwritable(reason) => Some(reason.to_string()),
            Self::Exhausted(error) => Some(format!("retry budget spent: {error}")),
            _ => None,
        }
    }
}

/// The index of the earliest record not done, given each key's first record index and
/// outcome; `None` when the whole batch is done.
pub fn resume_index<'a>(keys: impl IntoIterator<Item = (usize, &'a Outcome)>) -> Option<usize> {
    keys.into_iter()
        .filter(|(_, outcome)| !outcome.is_done())
        .map(|(first_index, _)| first_index)
        .min()
}

/// What became of the batch's records, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordTally {
    /// Records whose key was written (before the resume point).
    pub written: usize,
    /// Records intentionally skipped, by reason (before the resume point).
    pub skipped: BTreeMap<SkipReason, usize>,
    /// Records whose key's change went to the dead-letter store (before the resume point).
    pub dead_lettered: usize,
    /// Records Lambda will deliver again (from the resume point on).
    pub retried: usize,
}

/// Classifies each record by its key's outcome; `slot_of_record[i]` is record `i`'s key.
pub fn tally(slot_of_record: &[usize], outcomes: &[Outcome], resume: Option<usize>) -> RecordTally {
    let mut tally = RecordTally::default();
    for (index, slot) in slot_of_record.iter().enumerate() {
        if resume.is_some_and(|r| index >= r) {
            tally.retried += 1;
            continue;
        }
        match outcomes.get(*slot) {
            Some(Outcome::Written) => tally.written += 1,
            Some(Outcome::Skipped(reason)) => *tally.skipped.entry(*reason).or_default() += 1,
            Some(Outcome::DeadLettered(_)) => tally.dead_lettered += 1,
            // Unreachable by construction (a key not done puts the resume point at or before
            // its first record), but never count such a record as done.
            _ => tally.retried += 1,
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_done() -> Vec<Outcome> {
        vec![
            Outcome::NotDurable,
            // Not done until the dead-letter store has them.
            Outcome::Unwritable(Unwritable::TooLarge { bytes: 500_000 }),
            Outcome::Exhausted("throttled".into()),
        ]
    }

    #[test]
    fn a_dead_lettered_change_is_done_and_counted_with_the_records_it_covers() {
        let outcomes = [Outcome::Written, Outcome::DeadLettered("rejected".into())];
        assert_eq!(resume_index([0, 1].into_iter().zip(outcomes.iter())), None);
        let t = tally(&[0, 1, 1, 0], &outcomes, None);
        assert_eq!((t.written, t.dead_lettered, t.retried), (2, 2, 0));
        assert_eq!(Outcome::Written.dead_letter_reason(), None);
        assert_eq!(
            Outcome::Exhausted("HTTP 500".into()).dead_letter_reason().as_deref(),
            Some("retry budget spent: HTTP 500")
        );
    }

    #[test]
    fn a_fully_done_batch_has_no_resume_point() {
        let outcomes = [Outcome::Written, Outcome::Skipped(SkipReason::Stale), Outcome::Written];
        assert_eq!(resume_index([0, 3, 5].into_iter().zip(outcomes.iter())), None);
        assert_eq!(resume_index(std::iter::empty()), None);
    }

    #[test]
    fn resume_is_the_first_record_of_the_earliest_key_not_done() {
        for failure in not_done() {
            // Keys are listed by first record; the failed key's first record is 2 even
            // though its last change (the one written) came later.
            let outcomes = [Outcome::Written, failure.clone(), Outcome::Written, failure];
            assert_eq!(resume_index([0, 2, 3, 7].into_iter().zip(outcomes.iter())), Some(2));
        }
        // Order of the iterator does not matter.
        let outcomes = [Outcome::NotDurable, Outcome::NotDurable];
        assert_eq!(resume_index([9, 4].into_iter().zip(outcomes.iter())), Some(4));
    }

    #[test]
    fn nothing_after_the_resume_point_counts_as_done() {
        // Records: 0:a 1:b 2:a 3:c 4:b ; key b failed (first record 1).
        let slots = [0, 1, 0, 2, 1];
        let outcomes = [
            Outcome::Written,
            Outcome::NotDurable,
            Outcome::Skipped(SkipReason::OwnChange),
        ];
        let resume = resume_index([(0, &outcomes[0]), (1, &outcomes[1]), (3, &outcomes[2])]);
        assert_eq!(resume, Some(1));
        let t = tally(&slots, &outcomes, resume);
        assert_eq!(t.written, 1);
        assert!(t.skipped.is_empty());
        assert_eq!(t.retried, 4);
    }

    #[test]
    fn a_done_batch_counts_every_record_once() {
        let slots = [0, 1, 0, 2, 1, 3];
        let outcomes = [
            Outcome::Written,
            Outcome::Skipped(SkipReason::Ttl),
            Outcome::Skipped(SkipReason::Ttl),
            Outcome::Skipped(SkipReason::Stale),
        ];
        let t = tally(&slots, &outcomes, None);
        assert_eq!(t.written, 2);
        assert_eq!(
            t.skipped,
            BTreeMap::from([(SkipReason::Ttl, 3), (SkipReason::Stale, 1)])
        );
        assert_eq!(t.retried, 0);
    }
}
