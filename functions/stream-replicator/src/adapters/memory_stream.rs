//! [`StreamSource`] in memory: a fixed set of records, for tests of the drain check.

use failover_core::retry::Deadline;
use failover_core::AwsFailure;

use crate::ports::{StreamRead, StreamSource};

/// A stream holding exactly the records of one Lambda event.
#[derive(Debug, Clone, Default)]
pub struct MemoryStream {
    read: StreamRead,
}

impl MemoryStream {
    /// The stream `stream_arn` (one shard) holding `records_json` (`{"Records": [...]}`).
    pub fn new(stream_arn: &str, records_json: String, records: usize) -> Self {
        Self {
            read: StreamRead {
                stream_arn: stream_arn.to_owned(),
                shards: 1,
                records,
                records_json,
                truncated: false,
            },
        }
    }
}

impl StreamSource for MemoryStream {
    async fn read_all(&self, max_records: usize, _deadline: Deadline) -> Result<StreamRead, AwsFailure> {
        let mut read = self.read.clone();
        read.truncated = read.records > max_records;
        Ok(read)
    }
}
