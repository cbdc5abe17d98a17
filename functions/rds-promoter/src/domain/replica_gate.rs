//! The replica gate: never promote a replica whose replication is broken or far behind
//! unless someone accepted the loss. Promoting it would silently drop every order the
//! source took since replication stopped or fell behind; the on-call person must know.

use serde::{Deserialize, Serialize};

use super::instance::DbInstanceView;
use super::rpo::RpoEstimate;

/// Why the loss may be accepted anyway (the primary is gone for good).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOverride {
    /// The operator wrote `<prefix>/promote-override` after the alarm fired; its value is
    /// the stated reason.
    Operator {
        /// What the operator wrote.
        reason: String,
    },
    /// The outage has lasted longer than `PROMOTE_ANYWAY_AFTER_MINUTES`.
    OutageLasted {
        /// Minutes since the alarm fired.
        minutes: i64,
        /// The configured limit.
        limit: i64,
    },
}

/// The gate's answer, kept with the promotion's record and shown in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "gate", content = "reason", rename_all = "kebab-case")]
pub enum GateVerdict {
    /// Replication runs and the lag is within the limit.
    Pass(String),
    /// Broken or lagging, but overridden: promote, and say what may be lost.
    Overridden(String),
    /// Broken or lagging: do not promote (paged), and say how to override.
    Refuse(String),
}

impl GateVerdict {
    /// Whether the promotion may go ahead.
    pub fn allows(&self) -> bool {
        !matches!(self, Self::Refuse(_))
    }

    /// The reason in words.
    pub fn reason(&self) -> &str {
        match self {
            Self::Pass(r) | Self::Overridden(r) | Self::Refuse(r) => r,
        }
    }
}

/// The `read replication` status RDS reports in `StatusInfos` (`replicating`, `error`,
/// `stopped`, `terminated`), if any.
fn replication_status(view: &DbInstanceView) -> Option<&str> {
    view.status_infos
        .iter()
        .find(|(kind, _)| kind == "read replication")
        .map(|(_, status)| status.as_str())
}

/// Decides from the replica's description, its lag estimate (from `ReplicaLag`), the
/// limit, and an override if one applies.
pub fn replica_gate(
    view: &DbInstanceView,
    lag: &RpoEstimate,
    max_lag_seconds: f64,
    gate_override: Option<&GateOverride>,
) -> GateVerdict {
    let status = replication_status(view);
    let problem = match (status, lag.replica_lag_seconds) {
        (Some(status @ ("error" | "stopped" | "terminated")), _) => {
            Some(format!("replication of {} is {status} ({})", view.id, lag.meaning))
        }
        _ if lag.replica_lag_seconds.is_some() && !lag.replication_running => {
            Some(format!("replication of {} is not running: {}", view.id, lag.meaning))
        }
        (_, Some(seconds)) if seconds > max_lag_seconds => Some(format!(
            "{} is {seconds} s behind its source, more than MAX_REPLICA_LAG_SECONDS = {max_lag_seconds}: {}",
            view.id, lag.meaning
        )),
        _ => None,
    };
    let Some(problem) = problem else {
        return GateVerdict::Pass(format!(
            "replication {}; {}",
            status.unwrap_or("status not reported"),
            lag.meaning
        ));
    };
    match gate_override {
        Some(GateOverride::Operator { reason }) => GateVerdict::Overridden(format!(
            "{problem}; promoted anyway by the operator's override ({reason})"
        )),
        Some(GateOverride::OutageLasted { minutes, limit }) => GateVerdict::Overridden(format!(
            "{problem}; promoted anyway: the outage has lasted {minutes} min, more than PROMOTE_ANYWAY_AFTER_MINUTES = {limit}"
        )),
        None => GateVerdict::Refuse(format!(
            "{problem}. Promoting would lose those writes. If the primary is gone for good, accept the loss: write the reason to the promote-override parameter (after the alarm fired) and start the plan again, or wait for PROMOTE_ANYWAY_AFTER_MINUTES"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(status: &str) -> DbInstanceView {
        DbInstanceView {
            id: "shop-db-replica".into(),
            arn: None,
            status: "available".into(),
            replica_source: Some("shop-db".into()),
            status_infos: vec![("read replication".into(), status.into())],
            endpoint_address: None,
            endpoint_port: None,
            created_at_ms: None,
        }
    }

    fn lag(seconds: Option<f64>, running: bool) -> RpoEstimate {
        RpoEstimate {
            replica_lag_seconds: seconds,
            measured_at_ms: Some(0),
            replication_running: running,
            meaning: format!("lag {seconds:?}"),
            replica_gate: None,
        }
    }

    #[test]
    fn a_replicating_replica_within_the_limit_passes() {
        assert!(matches!(
            replica_gate(&replica("replicating"), &lag(Some(2.0), true), 300.0, None),
            GateVerdict::Pass(_)
        ));
    }

    #[test]
    fn broken_or_far_behind_replication_refuses_and_says_how_to_override() {
        for (status, estimate) in [
            ("error", lag(Some(0.0), true)),
            ("stopped", lag(Some(0.0), false)),
            ("terminated", lag(None, false)),
            ("replicating", lag(Some(3.0), false)),
            ("replicating", lag(Some(900.0), true)),
        ] {
            let verdict = replica_gate(&replica(status), &estimate, 300.0, None);
            assert!(
                matches!(&verdict, GateVerdict::Refuse(r) if r.contains("promote-override")),
                "{status} {estimate:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn an_override_promotes_and_keeps_what_may_be_lost_in_the_reason() {
        let operator = GateOverride::Operator {
            reason: "us-east-1 lost for good".into(),
        };
        let verdict = replica_gate(&replica("stopped"), &lag(Some(4.0), false), 300.0, Some(&operator));
        assert!(matches!(&verdict, GateVerdict::Overridden(r) if r.contains("stopped") && r.contains("lost for good")));
        let lasted = GateOverride::OutageLasted { minutes: 31, limit: 30 };
        assert!(replica_gate(&replica("error"), &lag(None, false), 300.0, Some(&lasted)).allows());
    }
}
