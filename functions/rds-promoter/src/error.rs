//! Every way a promotion can stop short, as one closed set: each variant names what it was
//! waiting for or refusing, and its class tells Lambda whether a retry can help.

use failover_core::{AwsFailure, ErrorClass};
use lambda_runtime::Diagnostic;

use crate::domain::Stage;

/// Why an invocation of rds-promoter did not complete the failover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoterError {
    /// The event is neither an alarm state change nor an alarm action payload.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// An AWS call failed; its class comes from the service's answer.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// The configured replica does not exist in its region.
    #[error("DescribeDBInstances failed (DBInstanceNotFound): read replica {replica} not found in {region}: check REPLICA_IDENTIFIER and REPLICA_REGION")]
    ReplicaNotFound {
        /// REPLICA_IDENTIFIER.
        replica: String,
        /// REPLICA_REGION.
        region: String,
    },
    /// The lock item exists (the conditional create said so) but reads back empty.
    #[error("not ready: lock for {failover_id} exists but could not be read")]
    LockUnreadable {
        /// The failover.
        failover_id: String,
    },
    /// Another invocation holds the failover's lease.
    #[error("not ready: failover {failover_id} is being handled by invocation {owner} (lease until {lease_until}); this delivery changes nothing and can be retried")]
    HeldElsewhere {
        /// The failover.
        failover_id: String,
        /// The invocation holding it.
        owner: String,
        /// Its lease, RFC 3339.
        lease_until: String,
    },
    /// Another invocation took the lapsed lease over first.
    #[error("not ready: another invocation took over failover {failover_id} first")]
    TakenOverFirst {
        /// The failover.
        failover_id: String,
    },
    /// This invocation lost its lease while saving a stage.
    #[error("not ready: lost the lock for {failover_id} to another invocation; it continues from stage {}", stage.as_str())]
    LockLost {
        /// The failover.
        failover_id: String,
        /// The stage this invocation had reached.
        stage: Stage,
    },
    /// The replica is a replica but cannot be promoted in its current status.
    #[error("not ready: read replica {replica} is {status}; it can only be promoted once it is available")]
    ReplicaBusy {
        /// The replica.
        replica: String,
        /// Its status.
        status: String,
    },
    /// The split-brain guard refused: the old primary may still take writes.
    #[error("refused: {0}")]
    SplitBrain(String),
    /// The replica gate refused: replication is broken or too far behind (writes would be lost).
    #[error("refused by the replica gate: {0}")]
    ReplicaGate(String),
    /// The evidence gate refused: the monitors' observations do not show the primary down.
    #[error("refused by the evidence gate: {0}")]
    Evidence(String),
    /// The split-brain guard could not decide (the source's region answered but said nothing).
    #[error("not ready: {0}")]
    GuardUndecided(String),
    /// Another failover (another alarm) holds the claim on this replica.
    #[error("not ready: read replica {replica} is being promoted by failover {holder}; a retry of this one publishes the endpoint once that promotion has detached the replica")]
    ReplicaClaimed {
        /// The replica.
        replica: String,
        /// The failover holding the claim.
        holder: String,
    },
    /// PromoteReadReplica was refused while the replica still replicates and is busy.
    #[error("not ready: PromoteReadReplica was refused while read replica {replica} is {status} and still replicates from {source_id}; a retry promotes it once it is available, or finds it already detached ({refusal})")]
    PromoteRefusedWhileBusy {
        /// The replica.
        replica: String,
        /// Its status.
        status: String,
        /// Its source.
        source_id: String,
        /// The refusal.
        refusal: AwsFailure,
    },
    /// The replica vanished between the promote and writability.
    #[error("refused: read replica {replica} disappeared while it was being promoted")]
    ReplicaDisappeared {
        /// The replica.
        replica: String,
    },
    /// The promoted replica was not writable within the wait budget.
    #[error("deadline reached: read replica {replica} not writable after {:.1}s and {polls} status checks ({last_reason}); a retry resumes waiting without promoting again", waited.as_secs_f64())]
    NotWritableInTime {
        /// The replica.
        replica: String,
        /// Time waited.
        waited: std::time::Duration,
        /// Status checks made.
        polls: u32,
        /// What the last check found.
        last_reason: String,
    },
    /// The plan's Wait loop looked for longer than `PROMOTION_MAX_WAIT_SECONDS`.
    #[error("deadline reached: read replica {replica} not writable {:.0}s after PromoteReadReplica, past PROMOTION_MAX_WAIT_SECONDS ({last_reason}); look at the instance in the RDS console: the switch stops here", waited.as_secs_f64())]
    PromotionTimedOut {
        /// The replica.
        replica: String,
        /// Time since PromoteReadReplica.
        waited: std::time::Duration,
        /// What the last look found.
        last_reason: String,
    },
    /// A plan step arrived before the stage it needs (the plan calls them in order).
    #[error("refused: failover {failover_id} is at stage {}, this step needs stage {} first", stage.as_str(), needs.as_str())]
    StepOutOfOrder {
        /// The failover.
        failover_id: String,
        /// Its stage.
        stage: Stage,
        /// The stage the step needs.
        needs: Stage,
    },
    /// A fence step for a failover that has no lock record.
    #[error("refused: failover {failover_id} has no lock record: fence only after promote")]
    NothingToFence {
        /// The failover.
        failover_id: String,
    },
    /// Failback refused or cannot go on: the reason says which condition and what to do.
    #[error("failback stopped: {0}")]
    Failback(String),
    /// Another writer saved the failback record first; a retry reads it again.
    #[error(
        "not ready: the failback record of {failover_id} was changed by another invocation; a retry reads it again"
    )]
    FailbackRace {
        /// The failover.
        failover_id: String,
    },
    /// The lock says writable but holds no endpoint: the record is damaged.
    #[error("refused: lock for {failover_id} is writable but has no endpoint")]
    WritableWithoutEndpoint {
        /// The failover.
        failover_id: String,
    },
}

impl PromoterError {
    /// Whether Lambda should deliver the event again.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Aws(failure) => failure.class,
            Self::PromoteRefusedWhileBusy { .. }
            | Self::LockUnreadable { .. }
            | Self::HeldElsewhere { .. }
            | Self::TakenOverFirst { .. }
            | Self::LockLost { .. }
            | Self::ReplicaBusy { .. }
            | Self::GuardUndecided(_)
            | Self::ReplicaClaimed { .. }
            | Self::NotWritableInTime { .. }
            | Self::FailbackRace { .. } => ErrorClass::Retryable,
            Self::InvalidEvent(_)
            | Self::ReplicaNotFound { .. }
            | Self::SplitBrain(_)
            | Self::ReplicaGate(_)
            | Self::Evidence(_)
            | Self::ReplicaDisappeared { .. }
            | Self::WritableWithoutEndpoint { .. }
            | Self::PromotionTimedOut { .. }
            | Self::StepOutOfOrder { .. }
            | Self::NothingToFence { .. }
            | Self::Failback(_) => ErrorClass::NonRetryable,
        }
    }
}

impl From<PromoterError> for Diagnostic {
    fn from(err: PromoterError) -> Self {
        Diagnostic {
            error_type: err.class().as_str().to_owned(),
            error_message: err.to_string(),
        }
    }
}
