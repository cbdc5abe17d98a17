//! RDS instances, as promotion sees them.

use std::future::Future;

use crate::error::AwsFailure;
use crate::promotion::DbInstanceView;

/// Describes and promotes RDS instances in one region.
pub trait DbInstances: Send + Sync {
    /// The instance, or `None` if the region says it does not exist.
    fn describe(&self, id: &str) -> impl Future<Output = Result<Option<DbInstanceView>, AwsFailure>> + Send;

    /// Starts promoting a read replica to a standalone, writable instance.
    fn promote(&self, id: &str, backup_retention_days: i32) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// A shared client is a client too.
impl<T: DbInstances> DbInstances for std::sync::Arc<T> {
    fn describe(&self, id: &str) -> impl Future<Output = Result<Option<DbInstanceView>, AwsFailure>> + Send {
        (**self).describe(id)
    }

    fn promote(&self, id: &str, backup_retention_days: i32) -> impl Future<Output = Result<(), AwsFailure>> + Send {
        (**self).promote(id, backup_retention_days)
    }
}
