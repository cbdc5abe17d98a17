//! The one decision both the real run and the dry run make before promoting: from the
//! replica's guard and the split-brain verdict to the next step.

use serde::Serialize;

use super::instance::ReplicaGuard;
use super::split_brain::SplitBrainVerdict;

/// What the failover does at stage `Requested`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum PromotionStep {
    /// The instance is no longer a replica: publish its endpoint, promote nothing.
    PublishOnly,
    /// The replica is busy (backing-up, modifying…): fail retryably and look again.
    WaitForReplica {
        /// Its status.
        status: String,
    },
    /// The old primary may still take writes: refuse for good.
    Refuse {
        /// The replica's source.
        source: String,
        /// The guard's verdict.
        verdict: SplitBrainVerdict,
    },
    /// The source's region answered without saying anything about the source: look again.
    LookAgain {
        /// The replica's source.
        source: String,
        /// The guard's verdict.
        verdict: SplitBrainVerdict,
    },
    /// Claim the replica and send PromoteReadReplica.
    Promote {
        /// The replica's source.
        source: String,
        /// The guard's verdict.
        verdict: SplitBrainVerdict,
    },
}

/// Decides the next step. `verdict` is the split-brain guard's answer, asked only for a
/// promotable replica (`None` otherwise: the guard needs the replica's source).
pub fn promotion_step(guard: ReplicaGuard, verdict: Option<SplitBrainVerdict>) -> PromotionStep {
    match (guard, verdict) {
        (ReplicaGuard::AlreadyPromoted, _) => PromotionStep::PublishOnly,
        (ReplicaGuard::Busy { status }, _) => PromotionStep::WaitForReplica { status },
        (ReplicaGuard::Promotable { source }, verdict) => match verdict {
            Some(verdict @ SplitBrainVerdict::Refuse { .. }) => PromotionStep::Refuse { source, verdict },
            Some(verdict @ SplitBrainVerdict::Undecided { .. }) => PromotionStep::LookAgain { source, verdict },
            Some(verdict @ SplitBrainVerdict::Proceed { .. }) => PromotionStep::Promote { source, verdict },
            None => PromotionStep::LookAgain {
                verdict: SplitBrainVerdict::Undecided {
                    reason: format!("the split-brain guard did not look at {source}"),
                },
                source,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promotable() -> ReplicaGuard {
        ReplicaGuard::Promotable {
            source: "shop-db".into(),
        }
    }

    #[test]
    fn each_guard_and_verdict_leads_to_one_step() {
        assert_eq!(
            promotion_step(ReplicaGuard::AlreadyPromoted, None),
            PromotionStep::PublishOnly
        );
        assert_eq!(
            promotion_step(
                ReplicaGuard::Busy {
                    status: "backing-up".into()
                },
                None
            ),
            PromotionStep::WaitForReplica {
                status: "backing-up".into()
            }
        );
        let refuse = SplitBrainVerdict::Refuse {
            reason: "split brain".into(),
        };
        assert!(matches!(
            promotion_step(promotable(), Some(refuse)),
            PromotionStep::Refuse { .. }
        ));
        let undecided = SplitBrainVerdict::Undecided {
            reason: "throttled".into(),
        };
        assert!(matches!(
            promotion_step(promotable(), Some(undecided)),
            PromotionStep::LookAgain { .. }
        ));
        let proceed = SplitBrainVerdict::Proceed { reason: "gone".into() };
        assert!(matches!(
            promotion_step(promotable(), Some(proceed)),
            PromotionStep::Promote { .. }
        ));
    }

    #[test]
    fn a_promotable_replica_is_never_promoted_without_a_verdict() {
        assert!(matches!(
            promotion_step(promotable(), None),
            PromotionStep::LookAgain { .. }
        ));
    }
}
