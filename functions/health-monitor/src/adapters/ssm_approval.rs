//! [`ApprovalReader`] over the core's Parameter Store adapter: the approval comes with its
//! modification time, so an approval written before the last switch is not taken as fresh.

use failover_core::parameters::{SsmParameters, TimedParameterReader};
use failover_core::AwsFailure;

use crate::domain::StoredApproval;
use crate::ports::ApprovalReader;

impl ApprovalReader for SsmParameters {
    async fn approval(&self, name: &str) -> Result<Option<StoredApproval>, AwsFailure> {
        Ok(self.get_with_modified_time(name).await?.map(|p| StoredApproval {
            value: p.value,
            modified_ms: p.modified_ms,
        }))
    }
}
