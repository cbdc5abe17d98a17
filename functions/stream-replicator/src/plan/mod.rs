//! Planning a batch: each record read and checked by the event stage is grouped by key
//! ([`coalesce`] keeps each key's last change), whose image alone is then built, and
//! [`decide`] picks the action per key (recognising the replicator's own writes by the
//! origin [`marker`]). Plain synchronous code, in one pass over the payload: nothing is
//! written before the whole batch is planned.

pub(crate) mod coalesce;
pub(crate) mod decide;
pub(crate) mod marker;

use crate::config::ReplicatorConfig;
use crate::domain::item::Attributes;
use crate::domain::key::KeySchema;
use crate::error::EventError;
use crate::event::decode::Decoder;
use crate::report::{lag_stats, LagStats};
use coalesce::Coalescer;
use decide::{Action, Rules};
use marker::OriginMarker;

/// One key's work: its key, its last change (sequence number, eventID, time), how many
/// records of the batch it stands for, and the action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Work {
    /// The key attributes (for deletes and reads).
    pub key_attributes: Attributes,
    /// Sequence number of the key's last record (names the delete tag).
    pub sequence: String,
    /// The last record's eventID.
    pub event_id: String,
    /// The last record's ApproximateCreationDateTime, in epoch milliseconds.
    pub created_at_ms: Option<i64>,
    /// Records of the batch that touched the key (the last and those it superseded).
    pub records: usize,
    /// What to do.
    pub action: Action,
}

/// A batch turned into per-key work.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan {
    /// One entry per distinct key, ordered by the key's first record.
    pub(crate) works: Vec<Work>,
    /// For each entry of `works`, the index of its key's first record.
    pub(crate) first_indices: Vec<usize>,
    /// For each record, its entry in `works`.
    pub(crate) slot_of_record: Vec<usize>,
    /// Each record's sequence number, in stream order.
    pub sequences: Vec<String>,
    /// Replication lag of the batch.
    pub(crate) lag: Option<LagStats>,
}

/// The phases of planning, as [`Replicator::plan_json_by_phase`](crate::Replicator::plan_json_by_phase)
/// runs them one after the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanPhase {
    /// Reading the event and checking every record (images still raw).
    ReadAndCheck,
    /// Keeping each key's last change.
    Coalesce,
    /// Building the last image of each key and deciding its action.
    BuildAndDecide,
}

/// What a batch is planned with: the checks records must pass and the decision rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planner<'a> {
    decoder: Decoder<'a>,
    rules: Rules<'a>,
}

impl<'a> Planner<'a> {
    /// The planner of `config`, for tables with `schema`.
    pub fn new(config: &'a ReplicatorConfig, schema: &'a KeySchema, marker: &'a OriginMarker) -> Self {
        Self {
            decoder: Decoder::new(config, schema),
            rules: Rules::new(config, marker),
        }
    }

    /// Validates and plans a batch given as JSON: reading, coalescing and a decision per
    /// key, in one pass over the payload and with nothing written yet. `now_ms` dates the
    /// replication lag.
    pub fn plan(&self, json: &str, now_ms: i64) -> Result<BatchPlan, EventError> {
        let decoder = self.decoder;
        let mut coalescer = Coalescer::new(self.rules.ttl);
        let mut sequences = Vec::new();
        let mut created_at_ms = Vec::new();
        let mut out_of_order = None;
        decoder.decode_json(json, |record| {
            sequences.push(record.change.sequence.clone());
            created_at_ms.extend(record.change.created_at_ms);
            if out_of_order.is_none() {
                out_of_order = coalescer.push(record).err();
            }
        })?;
        if let Some(out_of_order) = out_of_order {
            return Err(EventError::out_of_order(out_of_order));
        }
        let lag = lag_stats(now_ms, created_at_ms);
        let coalesced = coalescer.finish();
        let rules = self.rules;
        let first_indices: Vec<usize> = coalesced.keys.iter().map(|k| k.first_index).collect();
        let works = coalesced
            .keys
            .into_iter()
            .map(|keyed| {
                let last = decoder.complete(keyed.last)?;
                Ok(Work {
                    action: rules.decide(last.kind),
                    key_attributes: last.key_attributes,
                    sequence: last.sequence,
                    event_id: last.event_id,
                    created_at_ms: last.created_at_ms,
                    records: keyed.records,
                })
            })
            .collect::<Result<Vec<Work>, EventError>>()?;
        Ok(BatchPlan {
            works,
            first_indices,
            slot_of_record: coalesced.slot_of_record,
            sequences,
            lag,
        })
    }

    /// The work of [`Planner::plan`] with its phases one after the other instead of
    /// interleaved, calling `done` after each; the actions are discarded.
    pub fn plan_by_phase(&self, json: &str, mut done: impl FnMut(PlanPhase)) -> Result<(), EventError> {
        let mut records = Vec::new();
        self.decoder.decode_json(json, |record| records.push(record))?;
        done(PlanPhase::ReadAndCheck);
        let mut coalescer = Coalescer::new(self.rules.ttl);
        for record in records {
            coalescer.push(record).map_err(EventError::out_of_order)?;
        }
        let coalesced = coalescer.finish();
        done(PlanPhase::Coalesce);
        let actions = coalesced
            .keys
            .into_iter()
            .map(|keyed| Ok(self.rules.decide(self.decoder.complete(keyed.last)?.kind)))
            .collect::<Result<Vec<Action>, EventError>>()?;
        done(PlanPhase::BuildAndDecide);
        drop(actions);
        Ok(())
    }
}
