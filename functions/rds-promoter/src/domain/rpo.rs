//! The RPO estimate of a promotion: how far behind its source the replica was when it was
//! promoted, from RDS's `ReplicaLag` metric (Seconds_Behind_Master each minute, -1 while
//! replication is not running). With asynchronous replication this is what a failover may
//! lose; the report states it, whatever it is.

use serde::{Deserialize, Serialize};

/// One minute of `ReplicaLag` (CloudWatch statistics over a 60 s period).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagMinute {
    /// The period's start (epoch ms).
    pub at_ms: i64,
    /// The worst lag in it, seconds (-1: replication was not running all minute).
    pub maximum: f64,
    /// The best (-1: replication was not running at some point of the minute).
    pub minimum: f64,
}

/// What the report says about the data the promotion may have lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpoEstimate {
    /// The worst lag of the last minute in which replication ran, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_lag_seconds: Option<f64>,
    /// That minute (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_at_ms: Option<i64>,
    /// Whether replication was still running in the last minute before the promotion.
    pub replication_running: bool,
    /// The estimate in words, for the on-call person.
    pub meaning: String,
    /// What the replica gate made of it before the promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_gate: Option<super::replica_gate::GateVerdict>,
}

impl RpoEstimate {
    /// No estimate, and why.
    pub fn unknown(why: &str) -> Self {
        Self {
            replica_lag_seconds: None,
            measured_at_ms: None,
            replication_running: false,
            meaning: format!("RPO unknown: {why}"),
            replica_gate: None,
        }
    }
}

/// The estimate from the replica's recent `ReplicaLag` minutes (any order).
pub fn rpo_estimate(minutes: &[LagMinute]) -> RpoEstimate {
    let mut sorted = minutes.to_vec();
    sorted.sort_by_key(|m| m.at_ms);
    let Some(latest) = sorted.last() else {
        return RpoEstimate::unknown("no ReplicaLag datapoint for the replica in the last 15 minutes");
    };
    let running = latest.minimum >= 0.0;
    let Some(active) = sorted.iter().rev().find(|m| m.maximum >= 0.0) else {
        return RpoEstimate {
            replication_running: false,
            meaning: "replication was not running in any minute of the last 15: the replica may lack everything written since it stopped".into(),
            ..RpoEstimate::unknown("")
        };
    };
    let lag = active.maximum;
    let meaning = if running && lag == 0.0 {
        "replication was running and the replica had caught up (0 s behind) in the last minute: no write is known to be missing".to_owned()
    } else if running {
        format!("replication was running; the replica was at most {lag} s behind its source in the last minute: writes of about the last {lag} s before the failure may be missing")
    } else {
        format!("replication had stopped before the promotion; when it last ran the replica was up to {lag} s behind: writes from then on (at least the last {lag} s before it stopped, and any the source took after) may be missing")
    };
    RpoEstimate {
        replica_lag_seconds: Some(lag),
        measured_at_ms: Some(active.at_ms),
        replication_running: running,
        meaning,
        replica_gate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(at_ms: i64, minimum: f64, maximum: f64) -> LagMinute {
        LagMinute {
            at_ms,
            maximum,
            minimum,
        }
    }

    #[test]
    fn a_running_replica_is_as_far_behind_as_its_worst_lag_of_the_last_minute() {
        let estimate = rpo_estimate(&[minute(120_000, 0.0, 2.0), minute(60_000, 0.0, 9.0)]);
        assert_eq!(estimate.replica_lag_seconds, Some(2.0));
        assert_eq!(estimate.measured_at_ms, Some(120_000));
        assert!(estimate.replication_running);
    }

    #[test]
    fn a_stopped_replication_reports_the_lag_when_it_last_ran() {
        let estimate = rpo_estimate(&[
            minute(60_000, 0.0, 3.0),
            minute(120_000, -1.0, 1.0),
            minute(180_000, -1.0, -1.0),
        ]);
        assert_eq!(estimate.replica_lag_seconds, Some(1.0));
        assert_eq!(estimate.measured_at_ms, Some(120_000));
        assert!(!estimate.replication_running);
        assert!(estimate.meaning.contains("had stopped"), "{}", estimate.meaning);
    }

    #[test]
    fn without_data_the_estimate_says_it_does_not_know() {
        let none = rpo_estimate(&[]);
        assert_eq!(none.replica_lag_seconds, None);
        assert!(none.meaning.starts_with("RPO unknown"), "{}", none.meaning);
        let never = rpo_estimate(&[minute(60_000, -1.0, -1.0)]);
        assert_eq!(never.replica_lag_seconds, None);
        assert!(!never.replication_running);
    }
}
