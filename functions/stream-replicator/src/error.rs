//! The crate's error: why an event cannot be replicated. It is found before anything is
//! written and fails the whole invocation as a NonRetryable `InvalidEvent`.

use failover_core::FailoverError;

/// Why an event cannot be replicated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The payload is not a DynamoDB stream event.
    #[error("malformed DynamoDB stream event: {0}")]
    Malformed(String),
    /// One record is unusable.
    #[error("record {index} (eventID {event_id:?}): {problem}")]
    Record {
        /// Position in the batch.
        index: usize,
        /// The record's eventID.
        event_id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A key's records go backwards in sequence number: writing the array's last one would
    /// write an older image over a newer one.
    #[error("record {index} has SequenceNumber {sequence}, below {earlier_sequence} of record {earlier_index} of the same key: DynamoDB Streams orders each item's changes by sequence number, so this batch is refused rather than writing an older image")]
    OutOfOrder {
        /// The record's position in the batch.
        index: usize,
        /// Its sequence number.
        sequence: String,
        /// The earlier record of the same key.
        earlier_index: usize,
        /// That record's higher sequence number.
        earlier_sequence: String,
    },
}

impl EventError {
    /// The refusal of a batch whose key goes backwards in sequence number.
    pub(crate) fn out_of_order(e: crate::plan::coalesce::OutOfOrder) -> Self {
        EventError::OutOfOrder {
            index: e.index,
            sequence: e.sequence,
            earlier_index: e.earlier_index,
            earlier_sequence: e.earlier_sequence,
        }
    }
}

impl From<EventError> for FailoverError {
    fn from(error: EventError) -> Self {
        FailoverError::InvalidEvent(error.to_string())
    }
}
