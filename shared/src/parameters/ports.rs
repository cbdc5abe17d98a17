//! Parameter Store reads and writes, as the functions need them.

use std::collections::HashMap;
use std::future::Future;

use super::history::HeldValue;
use super::stored::StoredParameter;
use crate::error::AwsFailure;

/// Writes String parameters, overwriting earlier values.
pub trait ParameterWriter: Send + Sync {
    /// Creates or overwrites `name` with `value`.
    fn put(&self, name: &str, value: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// A shared writer is a writer too.
impl<T: ParameterWriter> ParameterWriter for std::sync::Arc<T> {
    fn put(&self, name: &str, value: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).put(name, value)
    }
}

/// Reads one parameter with its modification time, so that a value written before some
/// event (the last switch) can be told from one written after it.
pub trait TimedParameterReader: Send + Sync {
    /// The parameter `name`, `None` when it does not exist.
    fn get_with_modified_time(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredParameter>, AwsFailure>> + Send;
}

impl<T: TimedParameterReader> TimedParameterReader for std::sync::Arc<T> {
    fn get_with_modified_time(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredParameter>, AwsFailure>> + Send {
        (**self).get_with_modified_time(name)
    }
}

/// Reads Parameter Store values.
pub trait ParameterReader: Send + Sync {
    /// The values of those `names` that exist, keyed by name.
    fn get(&self, names: &[String]) -> impl Future<Output = Result<HashMap<String, String>, AwsFailure>> + Send;
}

/// Reads a parameter's current value with the moment it took that value (from its version
/// history), so a reader can tell changes made before a switch from those made after it.
pub trait ParameterHistoryReader: Send + Sync {
    /// `name`'s current value and since when it has held it; `None` when it does not exist.
    fn held_since(&self, name: &str) -> impl Future<Output = Result<Option<HeldValue>, AwsFailure>> + Send;
}
