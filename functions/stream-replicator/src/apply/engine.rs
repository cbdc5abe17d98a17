//! Carries out the per-key actions against the target (and, for KEYS_ONLY streams, reads
//! from the source): BatchWriteItem in overwrite mode, guarded single-item writes in
//! last-writer-wins mode, with bounded concurrency, and retries with exponential backoff
//! and full jitter for unprocessed items and transient errors, within the invocation's
//! remaining time. Every call is also cut off at the deadline, so the handler always has
//! time left to report where Lambda must resume.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use failover_core::retry::{Backoff, Deadline};
use failover_core::{AwsFailure, ErrorClass};
use futures_util::stream::{self, StreamExt};

use crate::apply::batching::{chunk, BatchLimits};
use crate::apply::checkpoint::Outcome;
use crate::domain::item::{item_size, Attributes};
use crate::domain::key::KeySchema;
use crate::plan::decide::{Action, Rules, SkipReason, Unwritable};
use crate::plan::Work;
use crate::ports::{failure_kind, Conditional, FailureKind, Guard, ItemReader, ItemWriter, Tag, WriteRequest};

/// DynamoDB's limit of keys per BatchGetItem call.
pub const MAX_KEYS_PER_READ: usize = 100;

/// Request counts of one batch.
#[derive(Debug, Default)]
pub struct Counters {
    write_requests: AtomicUsize,
    read_requests: AtomicUsize,
    retries: AtomicUsize,
}

impl Counters {
    /// Write calls made.
    pub fn write_requests(&self) -> usize {
        self.write_requests.load(Ordering::Relaxed)
    }
    /// Read calls made.
    pub fn read_requests(&self) -> usize {
        self.read_requests.load(Ordering::Relaxed)
    }
    /// Calls repeated after a transient failure or unprocessed items.
    pub fn retries(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }
}

/// What the engine did.
#[derive(Debug)]
pub struct Applied {
    /// One outcome per work item, in order.
    pub outcomes: Vec<Outcome>,
    /// Request counts.
    pub counters: Counters,
    /// A permanent failure that is not about one item (missing table, access denied):
    /// the whole batch must fail.
    pub fatal: Option<AwsFailure>,
}

impl Applied {
    /// Nothing done: `failure` (retryable or not) fails the whole batch.
    pub fn failed(works: usize, failure: AwsFailure) -> Self {
        Self {
            outcomes: vec![Outcome::NotDurable; works],
            counters: Counters::default(),
            fatal: Some(failure),
        }
    }
}

/// The engine's collaborators and limits.
pub struct Engine<'a, W, R> {
    /// The target table.
    pub writer: &'a W,
    /// The source table (KEYS_ONLY reads).
    pub reader: &'a R,
    /// The key schema, to match read items to keys.
    pub schema: &'a KeySchema,
    /// The decision rules (re-applied to items read for KEYS_ONLY changes).
    pub rules: Rules<'a>,
    /// BatchWriteItem limits.
    pub limits: BatchLimits,
    /// Retry backoff.
    pub backoff: Backoff,
    /// When to stop trying.
    pub deadline: Deadline,
    /// Calls in flight at most.
    pub concurrency: usize,
}

enum CallError {
    /// Transient failures outlasted the time (or the batch was aborted).
    GaveUp(AwsFailure),
    /// Transient failures outlasted the retry budget.
    Exhausted(AwsFailure),
    /// The request is invalid.
    Rejected(AwsFailure),
    /// Permanent and not about this item.
    Fatal(AwsFailure),
}

/// Whether another attempt follows a failure.
enum Pause {
    /// It does, after the backoff delay.
    Retry,
    /// The retry budget is spent: the change goes to the dead-letter store.
    BudgetSpent,
    /// The deadline is too close, or the batch was aborted: Lambda delivers it again.
    Stop,
}

/// Shared state of one run.
struct Run<'e, 'a, W, R> {
    engine: &'e Engine<'a, W, R>,
    counters: Counters,
    fatal: Mutex<Option<AwsFailure>>,
}

impl<W: ItemWriter, R: ItemReader> Engine<'_, W, R> {
    /// Resolves reads, then writes; `works` is updated with the actions decided after reads.
    pub async fn run(&self, works: &mut [Work]) -> Applied {
        self.run_judged(works, |_| {}).await
    }

    /// [`Engine::run`], with `judge` free to change the actions between the reads and the
    /// writes (the redrive compares what it read with what was dead-lettered).
    pub async fn run_judged(&self, works: &mut [Work], judge: impl FnOnce(&mut [Work])) -> Applied {
        let run = Run {
            engine: self,
            counters: Counters::default(),
            fatal: Mutex::new(None),
        };
        run.resolve_reads(works).await;
        judge(works);
        let mut outcomes: Vec<Outcome> = works
            .iter()
            .map(|w| match &w.action {
                Action::Skip(reason) => Outcome::Skipped(*reason),
                Action::Unwritable { reason, .. } => Outcome::Unwritable(reason.clone()),
                // Put/Delete are filled in by the writes; Read here means the read failed.
                Action::Put { .. } | Action::Delete { .. } | Action::Read => Outcome::NotDurable,
            })
            .collect();
        let written = if self.rules.mode == &crate::config::Mode::Overwrite {
            run.write_batches(works).await
        } else {
            run.write_guarded(works).await
        };
        for (index, outcome) in written {
            outcomes[index] = outcome;
        }
        let fatal = run.fatal.lock().map(|mut f| f.take()).unwrap_or(None);
        Applied {
            outcomes,
            counters: run.counters,
            fatal,
        }
    }
}

impl<W: ItemWriter, R: ItemReader> Engine<'_, W, R> {
    /// The current item of every work's key, read through the reader as KEYS_ONLY reads are
    /// (consistent, chunked, retried); the failure that stopped the reads, or a retryable one
    /// when the deadline left keys unread.
    pub async fn read_current(&self, works: &[Work]) -> Result<Vec<Option<Attributes>>, AwsFailure> {
        let run = Run {
            engine: self,
            counters: Counters::default(),
            fatal: Mutex::new(None),
        };
        let mut current: Vec<Option<Option<Attributes>>> = vec![None; works.len()];
        for (index, item) in run.read_items(works, (0..works.len()).collect()).await {
            current[index] = Some(item);
        }
        if let Some(failure) = run.fatal.lock().map(|mut f| f.take()).unwrap_or(None) {
            return Err(failure);
        }
        let unread = current.iter().filter(|c| c.is_none()).count();
        if unread > 0 {
            return Err(AwsFailure {
                operation: "BatchGetItem",
                code: None,
                message: format!("{unread} keys were not read (retries spent, or the deadline)"),
                class: ErrorClass::Retryable,
            });
        }
        Ok(current.into_iter().flatten().collect())
    }
}

impl<W: ItemWriter, R: ItemReader> Run<'_, '_, W, R> {
    fn aborted(&self) -> bool {
        self.fatal.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    fn abort(&self, failure: AwsFailure) {
        tracing::error!(error = %failure, "permanent failure that affects every write; failing the batch");
        if let Ok(mut fatal) = self.fatal.lock() {
            fatal.get_or_insert(failure);
        }
    }

    /// One attempt, cut off at the deadline.
    async fn attempt<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, AwsFailure>>,
    ) -> Result<T, AwsFailure> {
        match tokio::time::timeout_at(self.engine.deadline.instant(), call).await {
            Ok(result) => result,
            Err(_) => Err(AwsFailure {
                operation,
                code: None,
                message: "the invocation's deadline was reached while the call was in flight".into(),
                class: ErrorClass::Retryable,
            }),
        }
    }

    /// Waits before the next attempt, unless none may follow (and then says why).
    async fn pause(&self, failed_attempts: u32) -> Pause {
        let backoff = self.engine.backoff;
        let delay = backoff.delay(failed_attempts, fastrand::f64());
        if self.aborted() || delay >= self.engine.deadline.remaining() {
            return Pause::Stop;
        }
        if !backoff.may_retry(failed_attempts, delay, self.engine.deadline.remaining()) {
            return Pause::BudgetSpent;
        }
        tokio::time::sleep(delay).await;
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        Pause::Retry
    }

    /// A single conditional write, retried while the failure is transient.
    async fn conditional<F, Fut>(&self, operation: &'static str, mut call: F) -> Result<Conditional, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Conditional, AwsFailure>>,
    {
        let mut failed = 0u32;
        loop {
            self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
            let failure = match self.attempt(operation, call()).await {
                Ok(result) => return Ok(result),
                Err(failure) => failure,
            };
            match failure_kind(&failure) {
                FailureKind::ItemRejected => return Err(CallError::Rejected(failure)),
                FailureKind::Fatal => return Err(CallError::Fatal(failure)),
                FailureKind::Transient => {
                    failed += 1;
                    tracing::debug!(operation, attempt = failed, error = %failure, "transient failure");
                    match self.pause(failed).await {
                        Pause::Retry => {}
                        Pause::BudgetSpent => return Err(CallError::Exhausted(failure)),
                        Pause::Stop => return Err(CallError::GaveUp(failure)),
                    }
                }
            }
        }
    }

    fn outcome_of(&self, result: Result<Outcome, CallError>) -> Outcome {
        match result {
            Ok(outcome) => outcome,
            Err(CallError::GaveUp(failure)) => {
                tracing::warn!(error = %failure, "write not confirmed; the batch resumes here");
                Outcome::NotDurable
            }
            Err(CallError::Exhausted(failure)) => Outcome::Exhausted(failure.to_string()),
            Err(CallError::Rejected(failure)) => Outcome::Unwritable(Unwritable::Rejected(failure.to_string())),
            Err(CallError::Fatal(failure)) => {
                self.abort(failure);
                Outcome::NotDurable
            }
        }
    }

    /// Overwrite mode: BatchWriteItem calls of at most 25 requests / 16 MB.
    async fn write_batches(&self, works: &[Work]) -> Vec<(usize, Outcome)> {
        let indices: Vec<usize> = works
            .iter()
            .enumerate()
            .filter(|(_, w)| matches!(w.action, Action::Put { .. } | Action::Delete { .. }))
            .map(|(i, _)| i)
            .collect();
        let sizes: Vec<usize> = indices.iter().map(|&i| request_size(&works[i])).collect();
        let chunks = chunk(&sizes, self.engine.limits);
        let results: Vec<Vec<(usize, Outcome)>> = stream::iter(
            chunks
                .into_iter()
                .map(|range| self.write_chunk(works, indices[range].to_vec())),
        )
        .buffer_unordered(self.engine.concurrency.max(1))
        .collect()
        .await;
        results.into_iter().flatten().collect()
    }

    /// Writes one chunk until every request is processed or retrying must stop. A chunk
    /// DynamoDB rejects as invalid is retried one request at a time, so one bad item
    /// cannot take 24 good ones down with it.
    async fn write_chunk(&self, works: &[Work], chunk: Vec<usize>) -> Vec<(usize, Outcome)> {
        let mut results = Vec::with_capacity(chunk.len());
        match self.write_requests(works, chunk, &mut results).await {
            Some(rejected) if rejected.len() > 1 => {
                for index in rejected {
                    if let Some(single) = self.write_requests(works, vec![index], &mut results).await {
                        results.extend(single.into_iter().map(|i| (i, Outcome::NotDurable)));
                    }
                }
            }
            Some(rejected) => results.extend(rejected.into_iter().map(|i| (i, Outcome::NotDurable))),
            None => {}
        }
        results
    }

    /// The retry loop of one BatchWriteItem chunk. Returns the pending requests when the
    /// chunk was rejected as invalid and holds more than one request.
    async fn write_requests(
        &self,
        works: &[Work],
        mut pending: Vec<usize>,
        results: &mut Vec<(usize, Outcome)>,
    ) -> Option<Vec<usize>> {
        let mut failed = 0u32;
        let mut last_error;
        loop {
            if self.aborted() {
                results.extend(pending.iter().map(|&i| (i, Outcome::NotDurable)));
                return None;
            }
            let requests: Vec<WriteRequest<'_>> = pending.iter().filter_map(|&i| write_request(&works[i])).collect();
            self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
            match self
                .attempt("BatchWriteItem", self.engine.writer.batch_write(&requests))
                .await
            {
                Ok(unprocessed) => {
                    let mut left = vec![false; pending.len()];
                    for position in unprocessed {
                        if let Some(flag) = left.get_mut(position) {
                            *flag = true;
                        }
                    }
                    let mut still = Vec::new();
                    for (index, unprocessed) in pending.iter().zip(left) {
                        if unprocessed {
                            still.push(*index);
                        } else {
                            results.push((*index, Outcome::Written));
                        }
                    }
                    if still.is_empty() {
                        return None;
                    }
                    tracing::debug!(unprocessed = still.len(), "BatchWriteItem left items unprocessed");
                    last_error = format!("BatchWriteItem left the request unprocessed {} times", failed + 1);
                    pending = still;
                }
                Err(failure) => match failure_kind(&failure) {
                    FailureKind::Transient => {
                        tracing::debug!(error = %failure, requests = pending.len(), "transient BatchWriteItem failure");
                        last_error = failure.to_string();
                    }
                    FailureKind::ItemRejected if pending.len() > 1 => {
                        tracing::warn!(error = %failure, "BatchWriteItem rejected; isolating the invalid request");
                        return Some(pending);
                    }
                    FailureKind::ItemRejected => {
                        results.extend(
                            pending
                                .iter()
                                .map(|&i| (i, Outcome::Unwritable(Unwritable::Rejected(failure.to_string())))),
                        );
                        return None;
                    }
                    FailureKind::Fatal => {
                        self.abort(failure);
                        results.extend(pending.iter().map(|&i| (i, Outcome::NotDurable)));
                        return None;
                    }
                },
            }
            failed += 1;
            match self.pause(failed).await {
                Pause::Retry => {}
                Pause::BudgetSpent => {
                    tracing::warn!(requests = pending.len(), attempts = failed, error = %last_error,
                        "retry budget spent; the changes go to the dead-letter store");
                    results.extend(pending.iter().map(|&i| (i, Outcome::Exhausted(last_error.clone()))));
                    return None;
                }
                Pause::Stop => {
                    tracing::warn!(
                        requests = pending.len(),
                        "writes not confirmed before the deadline; the batch resumes at the earliest"
                    );
                    results.extend(pending.iter().map(|&i| (i, Outcome::NotDurable)));
                    return None;
                }
            }
        }
    }

    /// Last-writer-wins mode: one guarded write per key, `concurrency` at a time.
    async fn write_guarded(&self, works: &[Work]) -> Vec<(usize, Outcome)> {
        let Some(version_attribute) = version_attribute(self.engine.rules.mode) else {
            return Vec::new();
        };
        stream::iter(works.iter().enumerate().filter_map(|(index, work)| match &work.action {
            Action::Put {
                item,
                version: Some(version),
            } => Some(Box::pin(async move {
                let guard = Guard {
                    version_attribute,
                    version,
                };
                let result = self
                    .conditional("PutItem", || self.engine.writer.put_if_newer(item, guard))
                    .await
                    .map(|c| match c {
                        Conditional::Applied => Outcome::Written,
                        Conditional::ConditionFailed => Outcome::Skipped(SkipReason::Stale),
                    });
                (index, self.outcome_of(result))
            })
                as std::pin::Pin<Box<dyn Future<Output = (usize, Outcome)> + Send + '_>>),
            Action::Delete { version: Some(version) } => Some(Box::pin(async move {
                let guard = Guard {
                    version_attribute,
                    version,
                };
                let result = self.delete_guarded(work, guard).await;
                (index, self.outcome_of(result))
            })),
            _ => None,
        }))
        .buffer_unordered(self.engine.concurrency.max(1))
        .collect()
        .await
    }

    /// Tag, then delete on condition the tag is still there (see [`crate::plan::marker`]).
    async fn delete_guarded(&self, work: &Work, guard: Guard<'_>) -> Result<Outcome, CallError> {
        let marker = self.engine.rules.marker;
        let token = marker.delete_token(&work.sequence);
        let tag = Tag {
            marker_attribute: marker.attribute(),
            token: &token,
        };
        let key = &work.key_attributes;
        let writer = self.engine.writer;
        let tagged = self
            .conditional("UpdateItem", || writer.tag_for_delete(key, tag, guard))
            .await?;
        if tagged == Conditional::Applied
            && self
                .conditional("DeleteItem", || writer.delete_if_tagged(key, tag, guard))
                .await?
                == Conditional::Applied
        {
            return Ok(Outcome::Written);
        }
        // Absent already, newer than the delete, or an application write won the race
        // between the two steps. Either way our tag must not stay (an earlier attempt of
        // this record may have left it), or a later application delete would look like
        // the replicator's own; until it is gone the record is not done.
        self.conditional("UpdateItem", || writer.untag(key, tag)).await?;
        Ok(Outcome::Skipped(SkipReason::Stale))
    }

    /// KEYS_ONLY: reads the current items with consistent BatchGetItem calls and decides again.
    async fn resolve_reads(&self, works: &mut [Work]) {
        let indices: Vec<usize> = works
            .iter()
            .enumerate()
            .filter(|(_, w)| w.action == Action::Read)
            .map(|(i, _)| i)
            .collect();
        if indices.is_empty() {
            return;
        }
        for (index, current) in self.read_items(works, indices).await {
            works[index].action = self.engine.rules.decide_current(current);
        }
    }

    /// Reads the current items of the works at `indices`, in chunks, concurrently; keys
    /// whose read did not complete are left out.
    async fn read_items(&self, works: &[Work], indices: Vec<usize>) -> Vec<(usize, Option<Attributes>)> {
        let results: Vec<Vec<(usize, Option<Attributes>)>> = stream::iter(
            indices
                .chunks(MAX_KEYS_PER_READ)
                .map(|c| self.read_chunk(works, c.to_vec())),
        )
        .buffer_unordered(self.engine.concurrency.max(1))
        .collect()
        .await;
        results.into_iter().flatten().collect()
    }

    /// Reads one chunk of keys; keys whose read did not complete are left out of the result
    /// (their action stays `Read`, which counts as not durable).
    async fn read_chunk(&self, works: &[Work], chunk: Vec<usize>) -> Vec<(usize, Option<Attributes>)> {
        let mut resolved = Vec::with_capacity(chunk.len());
        let mut pending = chunk;
        let mut failed = 0u32;
        loop {
            if self.aborted() {
                return resolved;
            }
            let keys: Vec<&Attributes> = pending.iter().map(|&i| &works[i].key_attributes).collect();
            self.counters.read_requests.fetch_add(1, Ordering::Relaxed);
            match self.attempt("BatchGetItem", self.engine.reader.batch_get(&keys)).await {
                Ok(answer) => {
                    let mut found: HashMap<_, Attributes> = HashMap::with_capacity(answer.items.len());
                    for item in answer.items {
                        if let Ok(key) = self.engine.schema.key_of(&item) {
                            found.insert(key, item);
                        }
                    }
                    let mut left = vec![false; pending.len()];
                    for position in answer.unprocessed {
                        if let Some(flag) = left.get_mut(position) {
                            *flag = true;
                        }
                    }
                    let mut still = Vec::new();
                    for (index, unprocessed) in pending.iter().zip(left) {
                        if unprocessed {
                            still.push(*index);
                            continue;
                        }
                        let current = self
                            .engine
                            .schema
                            .key_of(&works[*index].key_attributes)
                            .ok()
                            .and_then(|key| found.remove(&key));
                        resolved.push((*index, current));
                    }
                    if still.is_empty() {
                        return resolved;
                    }
                    pending = still;
                }
                Err(failure) => match failure_kind(&failure) {
                    FailureKind::Transient => {
                        tracing::debug!(error = %failure, "transient BatchGetItem failure");
                    }
                    // A read cannot be invalid for one key only (keys were validated), so any
                    // permanent read failure is the source table's, for every key.
                    FailureKind::ItemRejected | FailureKind::Fatal => {
                        self.abort(failure);
                        return resolved;
                    }
                },
            }
            failed += 1;
            // Reads are retried by Lambda, not dead-lettered: without the item there is
            // nothing to keep.
            if !matches!(self.pause(failed).await, Pause::Retry) {
                return resolved;
            }
        }
    }
}

fn version_attribute(mode: &crate::config::Mode) -> Option<&str> {
    match mode {
        crate::config::Mode::Overwrite => None,
        crate::config::Mode::LastWriterWins { version_attribute } => Some(version_attribute),
    }
}

fn write_request(work: &Work) -> Option<WriteRequest<'_>> {
    match &work.action {
        Action::Put { item, .. } => Some(WriteRequest::Put(item)),
        Action::Delete { .. } => Some(WriteRequest::Delete(&work.key_attributes)),
        _ => None,
    }
}

fn request_size(work: &Work) -> usize {
    match &work.action {
        Action::Put { item, .. } => item_size(item),
        _ => item_size(&work.key_attributes),
    }
}
