//! Parameter Store writes.

use std::future::Future;

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
