//! The implementations of the [`ports`](crate::ports): [`dynamodb`], the SDK adapter used
//! in production, and [`memory`], an in-memory table with DynamoDB's rules that the tests
//! and the benchmark use.

pub mod dynamodb;
pub mod memory;
