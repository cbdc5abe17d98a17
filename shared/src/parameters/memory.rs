//! An in-memory Parameter Store with the semantics the functions rely on (values with their
//! modification time, overwrite on put), and the faults tests inject: the fake every
//! function's tests use instead of writing their own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::history::{held_since, HeldValue, ParameterVersion};
use super::ports::{ParameterHistoryReader, ParameterReader, ParameterWriter, TimedParameterReader};
use super::stored::StoredParameter;
use crate::error::{AwsFailure, ErrorClass};

/// Parameters in memory.
#[derive(Debug, Default)]
pub struct MemoryParameters {
    values: Mutex<HashMap<String, StoredParameter>>,
    history: Mutex<HashMap<String, Vec<ParameterVersion>>>,
    writes: Mutex<Vec<(String, String)>>,
    reads: Mutex<usize>,
    failing_writes: Mutex<u32>,
}

impl MemoryParameters {
    /// A store holding `pairs`.
    pub fn with_values<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let store = Self::default();
        for (name, value) in pairs {
            store.insert(name, value);
        }
        store
    }

    /// An operator sets `name` by hand, a moment (2 ms) after whatever ran before, so its
    /// modification time is strictly later than anything stamped earlier.
    pub fn set(&self, name: &str, value: &str) {
        std::thread::sleep(Duration::from_millis(2));
        self.insert(name, value);
    }

    /// The next `count` writes fail with `ThrottlingException` (`u32::MAX`: every write).
    pub fn fail_next_writes(&self, count: u32) {
        *self.failing_writes.lock().unwrap() = count;
    }

    /// Every successful write so far, in order.
    pub fn writes(&self) -> Vec<(String, String)> {
        self.writes.lock().unwrap().clone()
    }

    /// Calls of [`ParameterReader::get`] so far.
    pub fn reads(&self) -> usize {
        *self.reads.lock().unwrap()
    }

    /// The current value of `name`.
    pub fn value(&self, name: &str) -> Option<String> {
        self.values.lock().unwrap().get(name).map(|p| p.value.clone())
    }

    fn insert(&self, name: &str, value: &str) {
        self.set_at(name, value, chrono::Utc::now().timestamp_millis());
    }

    /// Sets `name` as if it had been written at `modified_ms` (a switch some time ago).
    pub fn set_at(&self, name: &str, value: &str, modified_ms: i64) {
        self.history
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .push(ParameterVersion {
                value: value.to_owned(),
                modified_ms: Some(modified_ms),
            });
        let stored = StoredParameter {
            value: value.to_owned(),
            modified_ms: Some(modified_ms),
        };
        self.values.lock().unwrap().insert(name.to_owned(), stored);
    }
}

impl ParameterWriter for MemoryParameters {
    async fn put(&self, name: &str, value: &str) -> Result<(), AwsFailure> {
        {
            let mut failing = self.failing_writes.lock().unwrap();
            if *failing > 0 {
                if *failing != u32::MAX {
                    *failing -= 1;
                }
                return Err(AwsFailure {
                    operation: "PutParameter",
                    code: Some("ThrottlingException".into()),
                    message: "Rate exceeded".into(),
                    class: ErrorClass::Retryable,
                });
            }
        }
        self.insert(name, value);
        self.writes.lock().unwrap().push((name.to_owned(), value.to_owned()));
        Ok(())
    }
}

impl TimedParameterReader for MemoryParameters {
    async fn get_with_modified_time(&self, name: &str) -> Result<Option<StoredParameter>, AwsFailure> {
        Ok(self.values.lock().unwrap().get(name).cloned())
    }
}

impl ParameterReader for MemoryParameters {
    async fn get(&self, names: &[String]) -> Result<HashMap<String, String>, AwsFailure> {
        *self.reads.lock().unwrap() += 1;
        let values = self.values.lock().unwrap();
        Ok(names
            .iter()
            .filter_map(|n| values.get(n).map(|p| (n.clone(), p.value.clone())))
            .collect())
    }
}

impl ParameterHistoryReader for MemoryParameters {
    async fn held_since(&self, name: &str) -> Result<Option<HeldValue>, AwsFailure> {
        *self.reads.lock().unwrap() += 1;
        Ok(self.history.lock().unwrap().get(name).and_then(|h| held_since(h)))
    }
}
