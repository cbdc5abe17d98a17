//! Step "lock": the failover's lock record, created by the first delivery, resumed by a
//! later one once the earlier lease lapsed, refused while another invocation holds it.

use failover_core::alarm::AlarmTransition;
use failover_core::parameters::{ParameterWriter, TimedParameterReader};
use tracing::{info, warn};

use crate::domain::{Claim, LockRecord};
use crate::error::PromoterError;
use crate::handler::Promoter;
use crate::invocation::now_ms;
use crate::invocation::Invocation;
use crate::ports::{DbInstances, FailoverLockStore};

/// How this invocation came to hold the failover's lock record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockStart {
    /// It created the record: a new failover.
    Fresh,
    /// It took over a lapsed lease: an earlier attempt died part-way.
    Resumed,
    /// The failover had already been published; nothing is held.
    Finished,
}

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H>
where
    R: DbInstances,
    S: DbInstances,
    L: FailoverLockStore,
    P: ParameterWriter + TimedParameterReader,
{
    /// Gives the lease up (the stage reached stays recorded); a failed write only means the
    /// lease lapses at the invocation's deadline.
    pub(crate) async fn release_lease(&self, record: &mut LockRecord) {
        record.lease_until_ms = 0;
        if let Err(e) = self.lock.save(record).await {
            warn!(failover_id = %record.failover_id, error = %e, "could not release the lock lease; it lapses at the invocation deadline");
        }
    }

    /// The lock record this invocation now owns (or the finished one) and how it got it.
    pub(crate) async fn take_lock(
        &self,
        transition: &AlarmTransition,
        invocation: &Invocation,
    ) -> Result<(LockRecord, LockStart), PromoterError> {
        let failover_id = transition.failover_id();
        let replica = &self.config.replica.id;
        let fresh = LockRecord::new(
            &failover_id,
            replica,
            &invocation.request_id,
            now_ms(),
            invocation.lease_until_ms,
        );
        if self.lock.create(&fresh).await? {
            info!(%failover_id, "failover lock taken");
            return Ok((fresh, LockStart::Fresh));
        }
        let existing = self.lock.load(&failover_id).await?;
        let existing = existing.ok_or_else(|| PromoterError::LockUnreadable {
            failover_id: failover_id.clone(),
        })?;
        match existing.claim(&invocation.request_id, now_ms()) {
            Claim::Finished => Ok((existing, LockStart::Finished)),
            Claim::HeldElsewhere { owner, lease_until_ms } => Err(PromoterError::HeldElsewhere {
                failover_id,
                owner,
                lease_until: chrono::DateTime::from_timestamp_millis(lease_until_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            }),
            Claim::TakeOver => {
                if !self
                    .lock
                    .take_over(&existing, &invocation.request_id, invocation.lease_until_ms)
                    .await?
                {
                    return Err(PromoterError::TakenOverFirst { failover_id });
                }
                info!(%failover_id, stage = existing.stage.as_str(), "resuming failover");
                let mut record = existing;
                record.owner = invocation.request_id.clone();
                record.lease_until_ms = invocation.lease_until_ms;
                Ok((record, LockStart::Resumed))
            }
        }
    }
}
