//! The implementations of the [`ports`](crate::ports): [`dynamodb`] and [`s3`], the SDK
//! adapters used in production, and [`memory`] (an in-memory table with DynamoDB's rules)
//! and [`memory_bucket`] (an in-memory dead-letter bucket) that the tests and the
//! benchmark use.

pub mod dynamodb;
pub mod memory;
pub mod memory_bucket;
pub mod s3;
