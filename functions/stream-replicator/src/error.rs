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
}

impl From<EventError> for FailoverError {
    fn from(error: EventError) -> Self {
        FailoverError::InvalidEvent(error.to_string())
    }
}
