//! The implementations of the [`ports`](crate::ports): [`dynamodb`], [`dynamodb_stream`]
//! and [`s3`], the SDK adapters used in production, and [`memory`] (an in-memory table with DynamoDB's rules),
//! [`memory_bucket`] (an in-memory dead-letter bucket) and [`memory_stream`] that the tests
//! and the benchmark use.

pub mod dynamodb;
pub mod dynamodb_stream;
pub mod memory;
pub mod memory_bucket;
pub mod memory_stream;
pub mod s3;
