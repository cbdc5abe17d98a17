//! The narrow interfaces to DynamoDB the replicator needs, so the handler can be driven by
//! the SDK adapter in production and by in-memory implementations in tests and benchmarks.

use std::future::Future;

use failover_core::{AwsFailure, ErrorClass};

use crate::domain::item::Attributes;

/// One request of a BatchWriteItem call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WriteRequest<'a> {
    /// Put the whole item.
    Put(&'a Attributes),
    /// Delete the item with this key.
    Delete(&'a Attributes),
}

/// The version guard of a last-writer-wins write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard<'a> {
    /// The numeric version attribute.
    pub version_attribute: &'a str,
    /// The version of the change being replicated (a DynamoDB number).
    pub version: &'a str,
}

/// The delete tag (see the origin marker, `src/plan/marker.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The origin marker attribute.
    pub marker_attribute: &'a str,
    /// The delete token.
    pub token: &'a str,
}

/// Whether a conditional write applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// The condition held and the write happened.
    Applied,
    /// ConditionalCheckFailed: the target holds something newer (or nothing to delete).
    ConditionFailed,
}

/// Writes to the target table.
pub trait ItemWriter: Send + Sync {
    /// BatchWriteItem (at most 25 requests, distinct keys). Returns the positions in
    /// `requests` that DynamoDB left unprocessed.
    fn batch_write(&self, requests: &[WriteRequest<'_>])
        -> impl Future<Output = Result<Vec<usize>, AwsFailure>> + Send;

    /// PutItem applied only if the target has no version, or an older one.
    fn put_if_newer(
        &self,
        item: &Attributes,
        guard: Guard<'_>,
    ) -> impl Future<Output = Result<Conditional, AwsFailure>> + Send;

    /// Sets the delete tag on an existing item whose version is not newer than the guard's.
    fn tag_for_delete(
        &self,
        key: &Attributes,
        tag: Tag<'_>,
        guard: Guard<'_>,
    ) -> impl Future<Output = Result<Conditional, AwsFailure>> + Send;

    /// Deletes the item if it still carries the tag and is not newer than the guard's version.
    fn delete_if_tagged(
        &self,
        key: &Attributes,
        tag: Tag<'_>,
        guard: Guard<'_>,
    ) -> impl Future<Output = Result<Conditional, AwsFailure>> + Send;

    /// Removes the tag again if it is still there (after an application write raced the delete).
    fn untag(&self, key: &Attributes, tag: Tag<'_>) -> impl Future<Output = Result<Conditional, AwsFailure>> + Send;
}

/// Reads from the source table (KEYS_ONLY streams).
pub trait ItemReader: Send + Sync {
    /// Consistent BatchGetItem of at most 100 distinct keys.
    fn batch_get(&self, keys: &[&Attributes]) -> impl Future<Output = Result<BatchGet, AwsFailure>> + Send;
}

/// A source shared with others (a test's racing writer) reads the same.
impl<T: ItemReader + ?Sized> ItemReader for std::sync::Arc<T> {
    fn batch_get(&self, keys: &[&Attributes]) -> impl Future<Output = Result<BatchGet, AwsFailure>> + Send {
        (**self).batch_get(keys)
    }
}

/// The answer of a BatchGetItem call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchGet {
    /// The items found (keys without an item are simply absent).
    pub items: Vec<Attributes>,
    /// Positions in the requested keys that DynamoDB left unprocessed.
    pub unprocessed: Vec<usize>,
}

/// The dead-letter store: durable objects, listed in key order (the S3 bucket in
/// production), holding every change the replicator could not write.
pub trait DeadLetterStore: Send + Sync {
    /// Stores `body` under `key`, replacing what was there.
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), AwsFailure>> + Send;

    /// At most `max` keys under `prefix` after `start_after`, in ascending key order.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> impl Future<Output = Result<Listing, AwsFailure>> + Send;

    /// The object's content; `None` when there is no such key.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, AwsFailure>> + Send;

    /// Deletes the object (absent is fine).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Keys in ascending order.
    pub keys: Vec<String>,
    /// Whether more keys follow the last one.
    pub more: bool,
}

/// No published active region: every batch is replicated (tests, and one-way setups
/// without the region-switch plan).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoActiveRegion;

impl failover_core::parameters::ParameterHistoryReader for NoActiveRegion {
    async fn held_since(&self, _name: &str) -> Result<Option<failover_core::parameters::HeldValue>, AwsFailure> {
        Ok(None)
    }
}

/// How the replicator reacts to a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, 5xx, timeouts, transport errors: retry with backoff.
    Transient,
    /// The request itself is invalid (e.g. ValidationException): retrying cannot help, but
    /// other items are unaffected.
    ItemRejected,
    /// Anything else permanent (missing table, access denied): every write would fail.
    Fatal,
}

/// Codes DynamoDB returns for a request it refuses as invalid.
const ITEM_REJECTED_CODES: &[&str] = &["ValidationException", "ItemCollectionSizeLimitExceededException"];

/// Codes that are transient for DynamoDB writes beyond the shared transient list.
const EXTRA_TRANSIENT_CODES: &[&str] = &["TransactionConflictException", "ReplicatedWriteConflictException"];

/// Classifies a failed call.
pub fn failure_kind(failure: &AwsFailure) -> FailureKind {
    let code = failure.code.as_deref().unwrap_or("");
    if failure.class == ErrorClass::Retryable || EXTRA_TRANSIENT_CODES.contains(&code) {
        FailureKind::Transient
    } else if ITEM_REJECTED_CODES.contains(&code) {
        FailureKind::ItemRejected
    } else {
        FailureKind::Fatal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: Option<&str>, class: ErrorClass) -> AwsFailure {
        AwsFailure {
            operation: "BatchWriteItem",
            code: code.map(str::to_owned),
            message: "m".into(),
            class,
        }
    }

    #[test]
    fn failures_are_classified_for_retry_skip_or_abort() {
        use ErrorClass::*;
        let cases = [
            (
                Some("ProvisionedThroughputExceededException"),
                Retryable,
                FailureKind::Transient,
            ),
            (Some("ThrottlingException"), Retryable, FailureKind::Transient),
            (None, Retryable, FailureKind::Transient),
            (
                Some("TransactionConflictException"),
                NonRetryable,
                FailureKind::Transient,
            ),
            (Some("ValidationException"), NonRetryable, FailureKind::ItemRejected),
            (
                Some("ItemCollectionSizeLimitExceededException"),
                NonRetryable,
                FailureKind::ItemRejected,
            ),
            (Some("ResourceNotFoundException"), NonRetryable, FailureKind::Fatal),
            (Some("AccessDeniedException"), NonRetryable, FailureKind::Fatal),
            (None, NonRetryable, FailureKind::Fatal),
        ];
        for (code, class, kind) in cases {
            assert_eq!(failure_kind(&failure(code, class)), kind, "{code:?}");
        }
    }
}

/// Everything a stream still holds, as one Lambda event (the drain check's input).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRead {
    /// The stream read.
    pub stream_arn: String,
    /// Its shards.
    pub shards: usize,
    /// Records read.
    pub records: usize,
    /// `{"Records": [...]}` exactly as Lambda delivers them, in stream order per shard.
    pub records_json: String,
    /// The read stopped at the record limit or the deadline: the answer is incomplete.
    pub truncated: bool,
}

/// Reads the source table's stream from its oldest record.
pub trait StreamSource: Send + Sync {
    /// At most `max_records` records, every shard from TRIM_HORIZON, before `deadline`.
    fn read_all(
        &self,
        max_records: usize,
        deadline: failover_core::retry::Deadline,
    ) -> impl Future<Output = Result<StreamRead, AwsFailure>> + Send;
}
