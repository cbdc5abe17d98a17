//! What an RDS instance description says about promotion.

use serde::Serialize;

/// The parts of `DescribeDBInstances` that promotion decisions need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbInstanceView {
    /// Instance identifier.
    pub id: String,
    /// Instance ARN.
    pub arn: Option<String>,
    /// `DBInstanceStatus`, e.g. `available`, `modifying`, `backing-up`.
    pub status: String,
    /// `ReadReplicaSourceDBInstanceIdentifier`: set while the instance is a replica.
    pub replica_source: Option<String>,
    /// `StatusInfos` as (type, status) pairs, e.g. `("read replication", "replicating")`.
    pub status_infos: Vec<(String, String)>,
    /// Endpoint address, once the instance has one.
    pub endpoint_address: Option<String>,
    /// Endpoint port.
    pub endpoint_port: Option<u16>,
    /// `InstanceCreateTime` in epoch milliseconds: tells a re-created replica of the same
    /// name apart from the one promoted before it.
    pub created_at_ms: Option<i64>,
}

impl DbInstanceView {
    /// Names this incarnation of the instance: its id and, when known, its creation time.
    pub fn incarnation(&self) -> String {
        match self.created_at_ms {
            Some(ms) => format!("{}@{ms}", self.id),
            None => self.id.clone(),
        }
    }
}

/// The verdict on the replica before promoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaGuard {
    /// An available read replica of `source`: promotion may go ahead.
    Promotable {
        /// The replica's source (identifier or ARN).
        source: String,
    },
    /// Not a replica any more: promoted before (by us or by hand). Idempotent success.
    AlreadyPromoted,
    /// A replica, but busy: promoting now would fail; try again later.
    Busy {
        /// The current status.
        status: String,
    },
}

/// Decides whether the replica can be promoted now.
pub fn guard_replica(view: &DbInstanceView) -> ReplicaGuard {
    match &view.replica_source {
        None => ReplicaGuard::AlreadyPromoted,
        Some(_) if view.status != "available" => ReplicaGuard::Busy {
            status: view.status.clone(),
        },
        Some(source) => ReplicaGuard::Promotable { source: source.clone() },
    }
}

/// Whether a promoted instance accepts writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writability {
    /// Available, no longer a replica, no replication status left: writable.
    Writable {
        /// Endpoint address.
        address: String,
        /// Endpoint port.
        port: u16,
    },
    /// Not yet, for the stated reason.
    NotYet(String),
}

/// Judges writability from one description; only descriptions read after the promote
/// request returned may be passed in (an older read says nothing about the change).
pub fn writability(view: &DbInstanceView) -> Writability {
    if view.status != "available" {
        return Writability::NotYet(format!("status is {}", view.status));
    }
    if let Some(source) = &view.replica_source {
        return Writability::NotYet(format!("still a read replica of {source}"));
    }
    if let Some((_, status)) = view
        .status_infos
        .iter()
        .find(|(kind, _)| kind.eq_ignore_ascii_case("read replication"))
    {
        return Writability::NotYet(format!("read replication status is still {status}"));
    }
    match (&view.endpoint_address, view.endpoint_port) {
        (Some(address), Some(port)) => Writability::Writable {
            address: address.clone(),
            port,
        },
        _ => Writability::NotYet("no endpoint yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: &str, source: Option<&str>, infos: &[(&str, &str)]) -> DbInstanceView {
        DbInstanceView {
            id: "shop-db-replica".into(),
            arn: None,
            status: status.into(),
            replica_source: source.map(str::to_owned),
            status_infos: infos.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            endpoint_address: Some("shop-db-replica.abc.us-west-2.rds.amazonaws.com".into()),
            endpoint_port: Some(3306),
            created_at_ms: None,
        }
    }

    const SOURCE: &str = "arn:aws:rds:us-east-1:123456789012:db:shop-db";

    #[test]
    fn guard_covers_every_case() {
        assert_eq!(
            guard_replica(&view("available", Some(SOURCE), &[])),
            ReplicaGuard::Promotable { source: SOURCE.into() }
        );
        assert_eq!(
            guard_replica(&view("available", None, &[])),
            ReplicaGuard::AlreadyPromoted
        );
        assert_eq!(
            guard_replica(&view("modifying", None, &[])),
            ReplicaGuard::AlreadyPromoted
        );
        for status in [
            "backing-up",
            "modifying",
            "rebooting",
            "storage-optimization",
            "creating",
        ] {
            assert_eq!(
                guard_replica(&view(status, Some(SOURCE), &[])),
                ReplicaGuard::Busy { status: status.into() }
            );
        }
    }

    #[test]
    fn writable_only_when_available_detached_and_not_replicating() {
        assert_eq!(
            writability(&view("available", None, &[])),
            Writability::Writable {
                address: "shop-db-replica.abc.us-west-2.rds.amazonaws.com".into(),
                port: 3306
            }
        );
        // The read before the change began looks healthy but is still a replica.
        assert_eq!(
            writability(&view("available", Some(SOURCE), &[("read replication", "replicating")])),
            Writability::NotYet(format!("still a read replica of {SOURCE}"))
        );
        assert_eq!(
            writability(&view("modifying", None, &[])),
            Writability::NotYet("status is modifying".into())
        );
        assert_eq!(
            writability(&view("rebooting", None, &[])),
            Writability::NotYet("status is rebooting".into())
        );
        assert_eq!(
            writability(&view("available", None, &[("read replication", "stopped")])),
            Writability::NotYet("read replication status is still stopped".into())
        );
        let mut no_endpoint = view("available", None, &[]);
        assert_eq!(no_endpoint.incarnation(), "shop-db-replica");
        no_endpoint.created_at_ms = Some(1_700_000_000_000);
        assert_eq!(no_endpoint.incarnation(), "shop-db-replica@1700000000000");
        no_endpoint.endpoint_port = None;
        assert_eq!(writability(&no_endpoint), Writability::NotYet("no endpoint yet".into()));
    }
}
