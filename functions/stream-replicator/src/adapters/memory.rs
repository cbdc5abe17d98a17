//! An in-memory table implementing [`ItemWriter`] and [`ItemReader`] with DynamoDB's rules
//! (25 requests per batch, no duplicate keys, 400 KB items, condition semantics), counting
//! every call and able to inject failures. Used by the unit tests and the benchmark.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use failover_core::{AwsFailure, ErrorClass};

use crate::domain::item::{item_size, Attributes, Value, MAX_ITEM_BYTES};
use crate::domain::key::{ItemKey, KeySchema};
use crate::domain::number::parse_number;
use crate::ports::{BatchGet, Conditional, Guard, ItemReader, ItemWriter, Tag, WriteRequest};

/// A failure to inject into the next call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The call goes through normally (to aim later faults at later calls).
    Pass,
    /// The call fails with this error.
    Fail(AwsFailure),
    /// The call succeeds but leaves its last `n` requests unprocessed.
    Unprocessed(usize),
}

impl Fault {
    /// A ValidationException, as DynamoDB returns for an invalid request.
    pub fn rejected() -> Self {
        Self::Fail(invalid("One or more parameter values were invalid"))
    }

    /// A throttling error as DynamoDB returns it.
    pub fn throttled() -> Self {
        Self::Fail(AwsFailure {
            operation: "memory",
            code: Some("ProvisionedThroughputExceededException".into()),
            message: "The level of configured provisioned throughput for the table was exceeded.".into(),
            class: ErrorClass::Retryable,
        })
    }
}

/// Call counts by operation.
#[derive(Debug, Default)]
pub struct CallCounts {
    /// BatchWriteItem calls.
    pub batch_write: AtomicUsize,
    /// PutItem calls.
    pub put: AtomicUsize,
    /// UpdateItem calls.
    pub update: AtomicUsize,
    /// DeleteItem calls.
    pub delete: AtomicUsize,
    /// BatchGetItem calls.
    pub batch_get: AtomicUsize,
}

impl CallCounts {
    /// Every write call.
    pub fn writes(&self) -> usize {
        [&self.batch_write, &self.put, &self.update, &self.delete]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// An in-memory DynamoDB table.
#[derive(Debug)]
pub struct MemoryTable {
    schema: KeySchema,
    items: Mutex<HashMap<ItemKey, Attributes>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Calls made so far.
    pub calls: CallCounts,
}

fn invalid(message: &str) -> AwsFailure {
    AwsFailure {
        operation: "memory",
        code: Some("ValidationException".into()),
        message: message.into(),
        class: ErrorClass::NonRetryable,
    }
}

impl MemoryTable {
    /// An empty table with this key schema.
    pub fn new(schema: KeySchema) -> Self {
        Self {
            schema,
            items: Mutex::new(HashMap::new()),
            faults: Mutex::new(VecDeque::new()),
            calls: CallCounts::default(),
        }
    }

    /// Queues faults for the next calls, one per call.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        if let Ok(mut queue) = self.faults.lock() {
            queue.extend(faults);
        }
    }

    /// Puts an item directly (test set-up).
    pub fn insert(&self, item: Attributes) {
        if let (Ok(key), Ok(mut items)) = (self.schema.key_of(&item), self.items.lock()) {
            items.insert(key, item);
        }
    }

    /// Removes the item with the key of `key_attributes` directly (test set-up).
    pub fn remove(&self, key_attributes: &Attributes) {
        if let (Ok(key), Ok(mut items)) = (self.schema.key_of(key_attributes), self.items.lock()) {
            items.remove(&key);
        }
    }

    /// The item with the key of `key_attributes`.
    pub fn get(&self, key_attributes: &Attributes) -> Option<Attributes> {
        let key = self.schema.key_of(key_attributes).ok()?;
        self.items.lock().ok()?.get(&key).cloned()
    }

    /// Every item.
    pub fn items(&self) -> Vec<Attributes> {
        self.items
            .lock()
            .map(|i| i.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// True when the table holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn next_fault(&self) -> Option<Fault> {
        self.faults.lock().ok()?.pop_front()
    }

    fn key(&self, attributes: &Attributes) -> Result<ItemKey, AwsFailure> {
        self.schema
            .key_of(attributes)
            .map_err(|e| invalid(&format!("The provided key element does not match the schema: {e}")))
    }

    fn with_items<T>(&self, f: impl FnOnce(&mut HashMap<ItemKey, Attributes>) -> T) -> Result<T, AwsFailure> {
        let mut items = self.items.lock().map_err(|_| invalid("poisoned"))?;
        Ok(f(&mut items))
    }
}

fn version_cmp(item: Option<&Attributes>, guard: Guard<'_>) -> Option<CmpOrdering> {
    let parse = |n: &str| parse_number(n).and_then(|_| n.trim().parse::<f64>().ok());
    let current = match item?.get(guard.version_attribute)? {
        Value::N(n) => parse(n)?,
        _ => return None,
    };
    current.partial_cmp(&parse(guard.version)?)
}

/// `attribute_not_exists(#v) OR #v <= :v` (with `<` when `strict`).
fn not_newer(item: Option<&Attributes>, guard: Guard<'_>, strict: bool) -> bool {
    let has_version = item.is_some_and(|i| i.contains_key(guard.version_attribute));
    if !has_version {
        return true;
    }
    match version_cmp(item, guard) {
        Some(CmpOrdering::Less) => true,
        Some(CmpOrdering::Equal) => !strict,
        _ => false,
    }
}

impl ItemWriter for MemoryTable {
    async fn batch_write(&self, requests: &[WriteRequest<'_>]) -> Result<Vec<usize>, AwsFailure> {
        self.calls.batch_write.fetch_add(1, Ordering::Relaxed);
        if requests.is_empty() || requests.len() > 25 {
            return Err(invalid("Too many items requested for the BatchWriteItem call"));
        }
        let mut keys = Vec::with_capacity(requests.len());
        for request in requests {
            let (WriteRequest::Put(a) | WriteRequest::Delete(a)) = request;
            if let WriteRequest::Put(item) = request {
                if item_size(item) > MAX_ITEM_BYTES {
                    return Err(invalid("Item size has exceeded the maximum allowed size"));
                }
            }
            let key = self.key(a)?;
            if keys.contains(&key) {
                return Err(invalid("Provided list of item keys contains duplicates"));
            }
            keys.push(key);
        }
        let unprocessed = match self.next_fault() {
            Some(Fault::Fail(failure)) => return Err(failure),
            Some(Fault::Unprocessed(n)) => n.min(requests.len()),
            Some(Fault::Pass) | None => 0,
        };
        let processed = requests.len() - unprocessed;
        self.with_items(|items| {
            for (request, key) in requests.iter().zip(keys).take(processed) {
                match request {
                    WriteRequest::Put(item) => {
                        items.insert(key, (*item).clone());
                    }
                    WriteRequest::Delete(_) => {
                        items.remove(&key);
                    }
                }
            }
        })?;
        Ok((processed..requests.len()).collect())
    }

    async fn put_if_newer(&self, item: &Attributes, guard: Guard<'_>) -> Result<Conditional, AwsFailure> {
        self.calls.put.fetch_add(1, Ordering::Relaxed);
        if let Some(Fault::Fail(failure)) = self.next_fault() {
            return Err(failure);
        }
        if item_size(item) > MAX_ITEM_BYTES {
            return Err(invalid("Item size has exceeded the maximum allowed size"));
        }
        let key = self.key(item)?;
        self.with_items(|items| {
            if not_newer(items.get(&key), guard, true) {
                items.insert(key, item.clone());
                Conditional::Applied
            } else {
                Conditional::ConditionFailed
            }
        })
    }

    async fn tag_for_delete(
        &self,
        key: &Attributes,
        tag: Tag<'_>,
        guard: Guard<'_>,
    ) -> Result<Conditional, AwsFailure> {
        self.calls.update.fetch_add(1, Ordering::Relaxed);
        if let Some(Fault::Fail(failure)) = self.next_fault() {
            return Err(failure);
        }
        let key = self.key(key)?;
        self.with_items(|items| match items.get_mut(&key) {
            Some(item) if not_newer(Some(item), guard, false) => {
                item.insert(tag.marker_attribute.to_owned(), Value::S(tag.token.to_owned()));
                Conditional::Applied
            }
            _ => Conditional::ConditionFailed,
        })
    }

    async fn delete_if_tagged(
        &self,
        key: &Attributes,
        tag: Tag<'_>,
        guard: Guard<'_>,
    ) -> Result<Conditional, AwsFailure> {
        self.calls.delete.fetch_add(1, Ordering::Relaxed);
        if let Some(Fault::Fail(failure)) = self.next_fault() {
            return Err(failure);
        }
        let key = self.key(key)?;
        self.with_items(|items| {
            let tagged = items.get(&key).is_some_and(|item| {
                item.get(tag.marker_attribute) == Some(&Value::S(tag.token.to_owned()))
                    && not_newer(Some(item), guard, false)
            });
            if tagged {
                items.remove(&key);
                Conditional::Applied
            } else {
                Conditional::ConditionFailed
            }
        })
    }

    async fn untag(&self, key: &Attributes, tag: Tag<'_>) -> Result<Conditional, AwsFailure> {
        self.calls.update.fetch_add(1, Ordering::Relaxed);
        if let Some(Fault::Fail(failure)) = self.next_fault() {
            return Err(failure);
        }
        let key = self.key(key)?;
        self.with_items(|items| match items.get_mut(&key) {
            Some(item) if item.get(tag.marker_attribute) == Some(&Value::S(tag.token.to_owned())) => {
                item.remove(tag.marker_attribute);
                Conditional::Applied
            }
            _ => Conditional::ConditionFailed,
        })
    }
}

impl ItemReader for MemoryTable {
    async fn batch_get(&self, keys: &[&Attributes]) -> Result<BatchGet, AwsFailure> {
        self.calls.batch_get.fetch_add(1, Ordering::Relaxed);
        if keys.is_empty() || keys.len() > 100 {
            return Err(invalid("Too many items requested for the BatchGetItem call"));
        }
        let parsed: Vec<ItemKey> = keys.iter().map(|k| self.key(k)).collect::<Result<_, _>>()?;
        let unprocessed = match self.next_fault() {
            Some(Fault::Fail(failure)) => return Err(failure),
            Some(Fault::Unprocessed(n)) => n.min(keys.len()),
            Some(Fault::Pass) | None => 0,
        };
        let processed = keys.len() - unprocessed;
        let items = self.with_items(|items| {
            parsed
                .iter()
                .take(processed)
                .filter_map(|key| items.get(key).cloned())
                .collect()
        })?;
        Ok(BatchGet {
            items,
            unprocessed: (processed..keys.len()).collect(),
        })
    }
}
