//! Applying a plan: the [`engine`] carries out each key's action through the
//! [`ports`](crate::ports), in BatchWriteItem calls cut to DynamoDB's limits by
//! [`batching`], and [`checkpoint`] judges what is durably done and where Lambda must
//! resume. The only asynchronous stage, with the adapters.

pub(crate) mod batching;
pub(crate) mod checkpoint;
pub(crate) mod engine;
