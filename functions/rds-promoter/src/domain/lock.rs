//! The failover lock: one item per failover id, recording how far promotion got.
//!
//! The item is created with a conditional write, so of many concurrent or repeated
//! deliveries of the same alarm exactly one owns the failover at a time. The owner holds
//! a lease until its invocation's deadline; a later attempt takes over only once that
//! lease has expired or was released, and resumes from the recorded stage.

use serde::Serialize;

use super::rpo::RpoEstimate;

/// How far a failover got. Stages only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Lock taken; PromoteReadReplica not yet known to have been accepted.
    Requested,
    /// PromoteReadReplica accepted; waiting until the instance is writable.
    Promoting,
    /// The instance is writable; the endpoint is known but not yet published.
    Writable,
    /// Endpoint and active region are in Parameter Store: the failover is complete.
    Published,
}

impl Stage {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Requested => "requested",
            Stage::Promoting => "promoting",
            Stage::Writable => "writable",
            Stage::Published => "published",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "requested" => Some(Stage::Requested),
            "promoting" => Some(Stage::Promoting),
            "writable" => Some(Stage::Writable),
            "published" => Some(Stage::Published),
            _ => None,
        }
    }
}

/// The lock item as stored in the state table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockRecord {
    /// The failover id (alarm name @ state timestamp).
    pub failover_id: String,
    /// Progress so far.
    pub stage: Stage,
    /// The invocation holding the lease (Lambda request id).
    pub owner: String,
    /// Lease end, epoch milliseconds; 0 once released.
    pub lease_until_ms: i64,
    /// The replica being promoted.
    pub replica_id: String,
    /// Its source before promotion, once known.
    pub former_source: Option<String>,
    /// When the lock was first taken (epoch ms).
    pub created_at_ms: i64,
    /// When PromoteReadReplica was accepted (epoch ms).
    pub promote_requested_at_ms: Option<i64>,
    /// When the instance was first seen writable (epoch ms).
    pub writable_at_ms: Option<i64>,
    /// When the parameters were published (epoch ms).
    pub published_at_ms: Option<i64>,
    /// Endpoint address once writable.
    pub endpoint_address: Option<String>,
    /// Endpoint port once writable.
    pub endpoint_port: Option<u16>,
    /// How far behind the replica was when PromoteReadReplica was sent (the RPO estimate).
    pub rpo: Option<RpoEstimate>,
}

impl LockRecord {
    /// A new record at stage `Requested`.
    pub fn new(failover_id: &str, replica_id: &str, owner: &str, now_ms: i64, lease_until_ms: i64) -> Self {
        Self {
            failover_id: failover_id.to_owned(),
            stage: Stage::Requested,
            owner: owner.to_owned(),
            lease_until_ms,
            replica_id: replica_id.to_owned(),
            former_source: None,
            created_at_ms: now_ms,
            promote_requested_at_ms: None,
            writable_at_ms: None,
            published_at_ms: None,
            endpoint_address: None,
            endpoint_port: None,
            rpo: None,
        }
    }

    /// What an invocation `me` may do with this existing record at `now_ms`.
    pub fn claim(&self, me: &str, now_ms: i64) -> Claim {
        if self.stage == Stage::Published {
            Claim::Finished
        } else if self.owner == me || self.lease_until_ms <= now_ms {
            Claim::TakeOver
        } else {
            Claim::HeldElsewhere {
                owner: self.owner.clone(),
                lease_until_ms: self.lease_until_ms,
            }
        }
    }
}

/// The answer of [`LockRecord::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The failover is complete; nothing to do.
    Finished,
    /// The lease is ours or has lapsed: take it and resume.
    TakeOver,
    /// Another live invocation is working on it.
    HeldElsewhere {
        /// Its request id.
        owner: String,
        /// When its lease ends (epoch ms).
        lease_until_ms: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_and_order() {
        for stage in [Stage::Requested, Stage::Promoting, Stage::Writable, Stage::Published] {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        assert!(Stage::Requested < Stage::Promoting && Stage::Writable < Stage::Published);
        assert_eq!(Stage::parse("done"), None);
    }

    #[test]
    fn claim_rules() {
        let mut record = LockRecord::new("a@t", "replica", "req-1", 1_000, 61_000);
        assert_eq!(
            record.claim("req-1", 2_000),
            Claim::TakeOver,
            "the owner's own retry resumes"
        );
        assert_eq!(
            record.claim("req-2", 2_000),
            Claim::HeldElsewhere {
                owner: "req-1".into(),
                lease_until_ms: 61_000
            }
        );
        assert_eq!(
            record.claim("req-2", 61_000),
            Claim::TakeOver,
            "an expired lease can be taken over"
        );
        record.lease_until_ms = 0;
        assert_eq!(
            record.claim("req-2", 2_000),
            Claim::TakeOver,
            "a released lease can be taken over"
        );
        record.stage = Stage::Published;
        assert_eq!(record.claim("req-1", 2_000), Claim::Finished);
    }
}
