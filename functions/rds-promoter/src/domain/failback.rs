//! Failback as a planned switchover back to the original region, as pure decisions: may it
//! start, is the re-protecting replica ready, has it drained after the write freeze, and
//! the names of the instances it creates and retires. The durable [`FailbackRecord`] says
//! how far a failback got, so every step of the failback plan is idempotent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fence::FenceRecord;
use super::instance::DbInstanceView;
use super::lock::{LockRecord, Stage};
use super::rpo::LagMinute;

/// How far a failback got; each step of the plan moves it forward (never back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailbackStage {
    /// Approved and recorded; nothing created yet.
    Started,
    /// CreateDBInstanceReadReplica accepted in the original region.
    ReplicaRequested,
    /// The new replica replicates, within the lag limit.
    ReplicaReady,
    /// Writes are frozen; waiting for the replica to apply everything.
    Draining,
    /// A lag of 0 was measured after the freeze.
    Drained,
    /// PromoteReadReplica accepted for the original-region replica.
    Promoting,
    /// The new primary takes writes.
    Writable,
    /// Its endpoint and the original region are published.
    Published,
    /// The old writer (the promoted replica) is being renamed and stopped.
    Retiring,
    /// A new replica of the new primary is being created in the failover region.
    Reprotecting,
    /// The shop is back, and protected again.
    Done,
}

impl FailbackStage {
    /// The stage's name in reports and the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::ReplicaRequested => "replica-requested",
            Self::ReplicaReady => "replica-ready",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Promoting => "promoting",
            Self::Writable => "writable",
            Self::Published => "published",
            Self::Retiring => "retiring",
            Self::Reprotecting => "reprotecting",
            Self::Done => "done",
        }
    }
}

/// One failback of one failover, stored beside the failover's lock record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailbackRecord {
    /// The failover this failback reverses.
    pub failover_id: String,
    /// The failback plan execution that owns it: only its steps may move it.
    pub execution: String,
    /// How far it got.
    pub stage: FailbackStage,
    /// Optimistic concurrency: each save expects the version it read.
    pub version: u64,
    /// The region the shop runs in now (the failover region).
    pub from_region: String,
    /// The region it goes back to.
    pub to_region: String,
    /// The current primary: the replica the failover promoted.
    pub current_primary: String,
    /// Its ARN (the new replica's source).
    pub current_primary_arn: String,
    /// The replica created in the original region, promoted at the switch.
    pub new_primary: String,
    /// The name the old writer is renamed to when it is retired.
    pub retired_as: String,
    /// The replica of the new primary in the failover region (the configured replica id).
    pub protecting_replica: String,
    /// The new primary's endpoint, once writable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_address: Option<String>,
    /// Its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_port: Option<u16>,
    /// The replica's `ReplicaLag` (max) in the datapoint that proved it drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_when_drained: Option<f64>,
    /// The reverse DynamoDB replicator's drain check that proved the copy's stream drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_drain: Option<super::StreamDrain>,
    /// When each stage was reached (epoch ms), by stage name.
    #[serde(default)]
    pub reached_at_ms: BTreeMap<String, i64>,
}

impl FailbackRecord {
    /// Moves to `stage` at `now_ms` (a stage already passed is kept: steps are retried).
    pub fn advance(&mut self, stage: FailbackStage, now_ms: i64) {
        if stage > self.stage {
            self.stage = stage;
        }
        self.reached_at_ms.entry(stage.as_str().to_owned()).or_insert(now_ms);
    }

    /// Gives up a failback that stopped before the switch (the plan lifted the freeze): no
    /// owner any more, and back to `ReplicaRequested`, so a later approved execution takes
    /// it over and looks at the replica (and freezes, and drains) again. Past the promotion
    /// nothing can be given up: `false`.
    pub fn abandon(&mut self) -> bool {
        if self.stage >= FailbackStage::Promoting {
            return false;
        }
        self.execution.clear();
        if self.stage > FailbackStage::ReplicaRequested {
            self.stage = FailbackStage::ReplicaRequested;
        }
        let kept = [FailbackStage::Started, FailbackStage::ReplicaRequested].map(FailbackStage::as_str);
        self.reached_at_ms.retain(|stage, _| kept.contains(&stage.as_str()));
        true
    }

    /// Whether an execution owns it (an abandoned failback has no owner).
    pub fn owned(&self) -> bool {
        !self.execution.is_empty()
    }

    /// When `stage` was reached, if it was.
    pub fn reached(&self, stage: FailbackStage) -> Option<i64> {
        self.reached_at_ms.get(stage.as_str()).copied()
    }
}

/// What the failback plan's first step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Everything holds: ask the operator.
    Ready,
    /// This failover was failed back already: nothing to do.
    AlreadyDone,
    /// Another failback plan execution owns it.
    InProgress {
        /// The owning execution.
        execution: String,
    },
    /// A condition does not hold; the reason says which and what to do.
    Refused(String),
}

/// What the preconditions are judged from.
#[derive(Debug, Clone, Copy)]
pub struct Preconditions<'a> {
    /// The latest published failover, if any.
    pub failover: Option<&'a LockRecord>,
    /// The promoted replica as described now (the current primary).
    pub current_primary: Option<&'a DbInstanceView>,
    /// The failover's fence record.
    pub fence: Option<&'a FenceRecord>,
    /// health-monitor's healthy checks of the original primary region in a row.
    pub primary_healthy_checks: u32,
    /// How many are required (M).
    pub required_healthy_checks: u32,
    /// A failback record of this failover, if one exists.
    pub existing: Option<&'a FailbackRecord>,
    /// The execution asking.
    pub execution: &'a str,
}

/// May a failback start (or go on, for its own execution)?
pub fn failback_readiness(p: Preconditions<'_>) -> Readiness {
    let Some(failover) = p.failover else {
        return Readiness::Refused("no completed failover is recorded in the state table: nothing to fail back".into());
    };
    if failover.stage != Stage::Published {
        return Readiness::Refused(format!(
            "failover {} is at stage {}, not published: let it finish first",
            failover.failover_id,
            failover.stage.as_str()
        ));
    }
    match p.existing {
        Some(record) if record.stage == FailbackStage::Done => return Readiness::AlreadyDone,
        Some(record) if record.owned() && record.execution != p.execution => {
            return Readiness::InProgress {
                execution: record.execution.clone(),
            }
        }
        _ => {}
    }
    match p.fence {
        Some(fence) if fence.is_pending() => {
            return Readiness::Refused(format!(
                "the fence of failover {} is still pending (old primary database: {:?}; forward replicator: {:?}): \
                 the old writers may still take writes; wait for the fence sweep to complete it",
                failover.failover_id, fence.database, fence.replication
            ))
        }
        None => {
            return Readiness::Refused(format!(
                "failover {} has no fence record: the old primary was never fenced; run the fence sweep first",
                failover.failover_id
            ))
        }
        Some(_) => {}
    }
    match p.current_primary {
        None => {
            return Readiness::Refused(format!(
                "the current primary {} does not exist in the failover region",
                failover.replica_id
            ))
        }
        Some(view) if view.replica_source.is_some() => {
            return Readiness::Refused(format!(
                "{} is still a read replica of {}: it is not the primary",
                view.id,
                view.replica_source.as_deref().unwrap_or_default()
            ))
        }
        Some(view) if view.status != "available" => {
            return Readiness::Refused(format!(
                "the current primary {} is {}; a replica can only be created from an available instance",
                view.id, view.status
            ))
        }
        Some(view) if view.arn.is_none() => {
            return Readiness::Refused(format!("the current primary {} has no ARN in its description", view.id))
        }
        Some(_) => {}
    }
    if p.primary_healthy_checks < p.required_healthy_checks {
        return Readiness::Refused(format!(
            "health-monitor saw the original primary region healthy in {} checks in a row; failback needs {}",
            p.primary_healthy_checks, p.required_healthy_checks
        ));
    }
    Readiness::Ready
}

/// A replica as failback needs it: replicating, and close enough (or caught up).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaReadiness {
    /// Replicating, with this lag (the latest datapoint's maximum, seconds).
    Ready {
        /// Seconds.
        lag_seconds: f64,
    },
    /// Not yet; why.
    NotYet(String),
    /// Replication is broken: waiting will not help.
    Broken(String),
}

/// Judges a replica from its description and `ReplicaLag` minutes, counting only datapoints
/// that start at or after `since_ms` (the write freeze: a lag of 0 measured after it means
/// every frozen write was applied). `max_lag_seconds` 0 asks for a drained replica.
pub fn replica_readiness(
    view: Option<&DbInstanceView>,
    lag: &[LagMinute],
    since_ms: i64,
    max_lag_seconds: f64,
) -> ReplicaReadiness {
    let Some(view) = view else {
        return ReplicaReadiness::NotYet("not visible in DescribeDBInstances yet".into());
    };
    if view.replica_source.is_none() && view.status == "available" {
        return ReplicaReadiness::Broken(format!("{} is not a read replica (it has no source)", view.id));
    }
    if view.status != "available" {
        return ReplicaReadiness::NotYet(format!("{} is {}", view.id, view.status));
    }
    let replication = view
        .status_infos
        .iter()
        .find(|(kind, _)| kind.eq_ignore_ascii_case("read replication"))
        .map(|(_, status)| status.as_str());
    match replication {
        Some("replicating") => {}
        Some(broken @ ("error" | "terminated" | "stopped")) => {
            return ReplicaReadiness::Broken(format!("{}: read replication is {broken}", view.id))
        }
        other => {
            return ReplicaReadiness::NotYet(format!(
                "{}: read replication is {}",
                view.id,
                other.unwrap_or("not reported yet")
            ))
        }
    }
    let Some(latest) = lag.iter().filter(|m| m.at_ms >= since_ms).max_by_key(|m| m.at_ms) else {
        return ReplicaReadiness::NotYet(format!("{}: no ReplicaLag datapoint measured since then yet", view.id));
    };
    if latest.maximum < 0.0 {
        return ReplicaReadiness::NotYet(format!("{}: ReplicaLag is -1 (replication not running)", view.id));
    }
    if latest.maximum > max_lag_seconds {
        return ReplicaReadiness::NotYet(format!(
            "{}: ReplicaLag {} s, above {} s",
            view.id, latest.maximum, max_lag_seconds
        ));
    }
    ReplicaReadiness::Ready {
        lag_seconds: latest.maximum,
    }
}

/// `<base>-<suffix>` within RDS's 63 characters: letters, digits and single hyphens,
/// never ending in a hyphen.
fn suffixed(base: &str, suffix: &str) -> String {
    let keep = 63 - suffix.len() - 1;
    let base: String = base.chars().take(keep).collect();
    format!("{}-{suffix}", base.trim_end_matches('-'))
}

/// Seconds since the epoch in base 36: short, sortable enough, unique per second.
fn stamp(at_ms: i64) -> String {
    let mut n = (at_ms / 1000).max(0) as u64;
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// The original-region replica's name: the old primary's name, marked with when failback
/// began (the old primary itself may still exist, stopped by the fence).
pub fn failback_replica_name(former_primary_id: &str, at_ms: i64) -> String {
    suffixed(former_primary_id, &format!("b{}", stamp(at_ms)))
}

/// The name the old writer is renamed to, which frees its identifier for the new replica.
pub fn retired_name(id: &str, at_ms: i64) -> String {
    suffixed(id, &format!("retired-{}", stamp(at_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_failback_has_no_owner_and_starts_over_from_its_replica() {
        let mut record: FailbackRecord = serde_json::from_value(serde_json::json!({
            "failoverId": "a@t", "execution": "arn:one", "stage": "draining", "version": 4,
            "fromRegion": "us-west-2", "toRegion": "us-east-1", "currentPrimary": "r",
            "currentPrimaryArn": "arn:r", "newPrimary": "p-b1", "retiredAs": "r-retired-b1",
            "protectingReplica": "r",
            "reachedAtMs": {"started": 1, "replica-requested": 2, "replica-ready": 3, "draining": 4}
        }))
        .unwrap();
        assert!(record.abandon());
        assert!(!record.owned());
        assert_eq!(record.stage, FailbackStage::ReplicaRequested);
        assert_eq!(
            record.reached(FailbackStage::Draining),
            None,
            "the next freeze is timed afresh"
        );
        assert_eq!(record.reached(FailbackStage::ReplicaRequested), Some(2));
        record.stage = FailbackStage::Promoting;
        assert!(!record.abandon(), "past the promotion nothing is given up");
    }
    use crate::domain::FenceState;

    fn view(id: &str, status: &str, source: Option<&str>, replication: Option<&str>) -> DbInstanceView {
        DbInstanceView {
            id: id.into(),
            arn: Some(format!("arn:aws:rds:us-west-2:123456789012:db:{id}")),
            status: status.into(),
            replica_source: source.map(str::to_owned),
            status_infos: replication
                .map(|s| vec![("read replication".to_owned(), s.to_owned())])
                .unwrap_or_default(),
            endpoint_address: Some(format!("{id}.example")),
            endpoint_port: Some(3306),
            created_at_ms: Some(1),
        }
    }

    fn published() -> LockRecord {
        let mut record = LockRecord::new("alarm-1", "shop-db-replica", "me", 0, 0);
        record.stage = Stage::Published;
        record
    }

    fn fence(pending: bool) -> FenceRecord {
        let mut fence = FenceRecord::new("alarm-1", Some("shop-db".into()));
        let done = FenceState::Done {
            how: "stopped".into(),
            at_ms: 5,
        };
        fence.database = done.clone();
        fence.replication = if pending { fence.replication.clone() } else { done };
        fence
    }

    fn record(execution: &str, stage: FailbackStage) -> FailbackRecord {
        FailbackRecord {
            failover_id: "alarm-1".into(),
            execution: execution.into(),
            stage,
            version: 1,
            from_region: "us-west-2".into(),
            to_region: "us-east-1".into(),
            current_primary: "shop-db-replica".into(),
            current_primary_arn: "arn".into(),
            new_primary: "shop-db-b1".into(),
            retired_as: "shop-db-replica-retired-1".into(),
            protecting_replica: "shop-db-replica".into(),
            endpoint_address: None,
            endpoint_port: None,
            lag_when_drained: None,
            reverse_drain: None,
            reached_at_ms: BTreeMap::new(),
        }
    }

    #[test]
    fn failback_starts_only_when_every_precondition_holds() {
        let failover = published();
        let primary = view("shop-db-replica", "available", None, None);
        let done_fence = fence(false);
        let ready = Preconditions {
            failover: Some(&failover),
            current_primary: Some(&primary),
            fence: Some(&done_fence),
            primary_healthy_checks: 10,
            required_healthy_checks: 10,
            existing: None,
            execution: "arn:exec:1",
        };
        assert_eq!(failback_readiness(ready), Readiness::Ready);
        let refused = |p: Preconditions<'_>| match failback_readiness(p) {
            Readiness::Refused(reason) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(Preconditions {
            failover: None,
            ..ready
        })
        .contains("no completed failover"));
        let pending = fence(true);
        assert!(refused(Preconditions {
            fence: Some(&pending),
            ..ready
        })
        .contains("still pending"));
        assert!(refused(Preconditions { fence: None, ..ready }).contains("never fenced"));
        assert!(refused(Preconditions {
            primary_healthy_checks: 9,
            ..ready
        })
        .contains("9 checks in a row; failback needs 10"));
        let replica = view("shop-db-replica", "available", Some("shop-db"), Some("replicating"));
        assert!(refused(Preconditions {
            current_primary: Some(&replica),
            ..ready
        })
        .contains("still a read replica"));
        let busy = view("shop-db-replica", "modifying", None, None);
        assert!(refused(Preconditions {
            current_primary: Some(&busy),
            ..ready
        })
        .contains("is modifying"));
        let mut promoting = published();
        promoting.stage = Stage::Promoting;
        assert!(refused(Preconditions {
            failover: Some(&promoting),
            ..ready
        })
        .contains("not published"));
    }

    #[test]
    fn a_second_start_is_a_no_op_or_names_the_owner() {
        let failover = published();
        let primary = view("shop-db-replica", "available", None, None);
        let done_fence = fence(false);
        let finished = record("arn:exec:1", FailbackStage::Done);
        let running = record("arn:exec:1", FailbackStage::Draining);
        let base = Preconditions {
            failover: Some(&failover),
            current_primary: Some(&primary),
            fence: Some(&done_fence),
            primary_healthy_checks: 0,
            required_healthy_checks: 10,
            existing: Some(&finished),
            execution: "arn:exec:2",
        };
        // Done wins over every other condition (the old primary's region may be unhealthy again).
        assert_eq!(failback_readiness(base), Readiness::AlreadyDone);
        assert_eq!(
            failback_readiness(Preconditions {
                existing: Some(&running),
                ..base
            }),
            Readiness::InProgress {
                execution: "arn:exec:1".into()
            }
        );
        // The owner itself goes on (its steps are retried), subject to the same checks.
        let own = Preconditions {
            existing: Some(&running),
            execution: "arn:exec:1",
            primary_healthy_checks: 10,
            ..base
        };
        assert_eq!(failback_readiness(own), Readiness::Ready);
    }

    fn minute(at_ms: i64, maximum: f64) -> LagMinute {
        LagMinute {
            at_ms,
            maximum,
            minimum: maximum,
        }
    }

    #[test]
    fn a_replica_is_ready_only_replicating_within_the_limit_and_drained_only_after_the_freeze() {
        let replicating = view("r", "available", Some("src"), Some("replicating"));
        let lag = [minute(60_000, 4.0), minute(120_000, 0.0)];
        assert_eq!(
            replica_readiness(Some(&replicating), &lag, 0, 30.0),
            ReplicaReadiness::Ready { lag_seconds: 0.0 }
        );
        // Drained: only a datapoint that starts after the freeze counts.
        assert!(matches!(
            replica_readiness(Some(&replicating), &lag, 120_001, 0.0),
            ReplicaReadiness::NotYet(reason) if reason.contains("no ReplicaLag datapoint")
        ));
        let behind = [minute(180_000, 3.0)];
        assert!(matches!(
            replica_readiness(Some(&replicating), &behind, 120_001, 0.0),
            ReplicaReadiness::NotYet(reason) if reason.contains("ReplicaLag 3 s, above 0 s")
        ));
        let stopped_running = [minute(180_000, -1.0)];
        assert!(matches!(
            replica_readiness(Some(&replicating), &stopped_running, 0, 30.0),
            ReplicaReadiness::NotYet(reason) if reason.contains("-1")
        ));
        assert!(matches!(
            replica_readiness(None, &lag, 0, 30.0),
            ReplicaReadiness::NotYet(_)
        ));
        let creating = view("r", "creating", Some("src"), None);
        assert!(matches!(
            replica_readiness(Some(&creating), &lag, 0, 30.0),
            ReplicaReadiness::NotYet(reason) if reason.contains("creating")
        ));
        for broken in ["error", "stopped", "terminated"] {
            let replica = view("r", "available", Some("src"), Some(broken));
            assert!(matches!(
                replica_readiness(Some(&replica), &lag, 0, 30.0),
                ReplicaReadiness::Broken(reason) if reason.contains(broken)
            ));
        }
        let standalone = view("r", "available", None, None);
        assert!(matches!(
            replica_readiness(Some(&standalone), &lag, 0, 30.0),
            ReplicaReadiness::Broken(_)
        ));
    }

    #[test]
    fn names_fit_rds_rules() {
        assert_eq!(stamp(0), "0");
        assert_eq!(stamp(36_000), "10");
        let name = failback_replica_name("shop-db", 1_764_806_400_000);
        assert!(name.starts_with("shop-db-b"), "{name}");
        let long = "a".repeat(62) + "-";
        for name in [
            failback_replica_name(&long, 1_764_806_400_000),
            retired_name(&long, 1_764_806_400_000),
        ] {
            assert!(name.len() <= 63, "{name}");
            assert!(!name.contains("--") && !name.ends_with('-'), "{name}");
        }
        assert!(retired_name("shop-db-replica", 1_764_806_400_000).starts_with("shop-db-replica-retired-"));
    }

    #[test]
    fn stages_only_move_forward_and_keep_their_first_time() {
        let mut r = record("e", FailbackStage::Started);
        r.advance(FailbackStage::ReplicaRequested, 10);
        r.advance(FailbackStage::Started, 20);
        r.advance(FailbackStage::ReplicaRequested, 30);
        assert_eq!(r.stage, FailbackStage::ReplicaRequested);
        assert_eq!(r.reached(FailbackStage::ReplicaRequested), Some(10));
    }
}
