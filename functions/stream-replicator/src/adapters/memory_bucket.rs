//! An in-memory bucket implementing [`DeadLetterStore`] with S3's listing order (keys
//! ascending, `start_after` exclusive), able to fail the next calls. Used by the tests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use failover_core::{AwsFailure, ErrorClass};

use crate::ports::{DeadLetterStore, Listing};

/// The in-memory bucket.
#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    failures: Mutex<VecDeque<AwsFailure>>,
}

impl MemoryBucket {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` calls fail with a transient S3 error (HTTP 503 SlowDown).
    pub fn fail_next(&self, n: usize) {
        let mut failures = self.failures.lock().expect("failures");
        failures.extend((0..n).map(|_| AwsFailure {
            operation: "memory-s3",
            code: Some("SlowDown".into()),
            message: "Please reduce your request rate.".into(),
            class: ErrorClass::Retryable,
        }));
    }

    /// Every object, by key.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects.lock().expect("objects").clone()
    }

    /// Stores an object directly (arranging a test).
    pub fn insert(&self, key: &str, body: Vec<u8>) {
        self.objects.lock().expect("objects").insert(key.to_owned(), body);
    }

    fn next_failure(&self) -> Result<(), AwsFailure> {
        match self.failures.lock().expect("failures").pop_front() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

impl DeadLetterStore for MemoryBucket {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), AwsFailure> {
        self.next_failure()?;
        self.objects.lock().expect("objects").insert(key.to_owned(), body);
        Ok(())
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Listing, AwsFailure> {
        self.next_failure()?;
        let objects = self.objects.lock().expect("objects");
        let mut keys = objects
            .keys()
            .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|after| k.as_str() > after));
        let page: Vec<String> = keys.by_ref().take(max).cloned().collect();
        Ok(Listing {
            more: keys.next().is_some(),
            keys: page,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsFailure> {
        self.next_failure()?;
        Ok(self.objects.lock().expect("objects").get(key).cloned())
    }

    async fn delete(&self, key: &str) -> Result<(), AwsFailure> {
        self.next_failure()?;
        self.objects.lock().expect("objects").remove(key);
        Ok(())
    }
}
