//! Fencing the old writers once the replica is writable: the old primary database (stopped
//! or renamed, so no application can keep writing to it) and the forward stream replicator
//! (paused, so its backlog never lands on the table that is now authoritative). A part whose
//! region does not answer stays pending; the scheduled sweep completes it when it answers,
//! and keeps it fenced (RDS starts a stopped instance again on its own after seven days).

use serde::{Deserialize, Serialize};

use crate::domain::SourceProbe;

/// How the old primary database is fenced (`FENCE_DATABASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FenceMode {
    /// `StopDBInstance`: nothing can connect. RDS restarts it after seven days, so the
    /// sweep stops it again.
    Stop,
    /// `ModifyDBInstance NewDBInstanceIdentifier=<id>-fenced`: the old endpoint name stops
    /// resolving, the instance keeps running (its data stays at hand for forensics).
    Rename,
    /// Not fenced by this tool (the operator fences it another way); reported as such.
    None,
}

impl FenceMode {
    /// Parses `stop`, `rename` or `none`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "stop" => Some(Self::Stop),
            "rename" => Some(Self::Rename),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Where one part of the fence stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum FenceState {
    /// The old writer can no longer write.
    Done {
        /// What made it so.
        how: String,
        /// When it was first seen fenced (epoch ms).
        #[serde(rename = "atMs")]
        at_ms: i64,
    },
    /// Not yet: the reason, and how many looks were made.
    Pending {
        /// Why it is not fenced yet.
        reason: String,
        /// Looks so far.
        attempts: u32,
    },
    /// This part is switched off in the configuration.
    NotConfigured {
        /// Which setting says so.
        reason: String,
    },
}

impl FenceState {
    /// True while the part still needs a look.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }

    /// The state after a look that found `outcome`, keeping the first time it was done.
    pub fn after(&self, outcome: FenceOutcome, now_ms: i64) -> FenceState {
        match (outcome, self) {
            (FenceOutcome::Fenced { .. }, FenceState::Done { how, at_ms }) => FenceState::Done {
                how: how.clone(),
                at_ms: *at_ms,
            },
            (FenceOutcome::Fenced { how }, _) => FenceState::Done { how, at_ms: now_ms },
            (FenceOutcome::NotYet { reason }, FenceState::Pending { attempts, .. }) => FenceState::Pending {
                reason,
                attempts: attempts + 1,
            },
            (FenceOutcome::NotYet { reason }, _) => FenceState::Pending { reason, attempts: 1 },
            (FenceOutcome::Off { reason }, _) => FenceState::NotConfigured { reason },
        }
    }
}

/// What one look at a part of the fence achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceOutcome {
    /// Fenced now (or already).
    Fenced {
        /// How.
        how: String,
    },
    /// Could not fence now.
    NotYet {
        /// Why.
        reason: String,
    },
    /// Switched off.
    Off {
        /// Which setting.
        reason: String,
    },
}

/// The fence of one failover, kept in the state table beside its lock record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FenceRecord {
    /// The failover it belongs to.
    pub failover_id: String,
    /// The old primary database (identifier or ARN), as the replica named its source.
    pub former_source: Option<String>,
    /// The old primary database.
    pub database: FenceState,
    /// The forward stream replicator.
    pub replication: FenceState,
    /// Last look (epoch ms).
    pub updated_at_ms: i64,
}

impl FenceRecord {
    /// A record before the first look.
    pub fn new(failover_id: &str, former_source: Option<String>) -> Self {
        let unlooked = FenceState::Pending {
            reason: "not looked at yet".into(),
            attempts: 0,
        };
        Self {
            failover_id: failover_id.to_owned(),
            former_source,
            database: unlooked.clone(),
            replication: unlooked,
            updated_at_ms: 0,
        }
    }

    /// True while any part is pending: failback must not start.
    pub fn is_pending(&self) -> bool {
        self.database.is_pending() || self.replication.is_pending()
    }
}

/// What to do about the old primary database, from a look at it in its own region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseFenceStep {
    /// Call `StopDBInstance`.
    Stop,
    /// Call `ModifyDBInstance` to this new identifier.
    Rename {
        /// The fenced identifier.
        to: String,
    },
    /// Nothing to call: the outcome is known.
    Known(FenceOutcome),
}

/// Decides the database fence from the look at the old primary (`source_id`).
pub fn database_fence_step(mode: FenceMode, source_id: &str, probe: &SourceProbe) -> DatabaseFenceStep {
    let known = DatabaseFenceStep::Known;
    let not_yet = |reason: String| known(FenceOutcome::NotYet { reason });
    if mode == FenceMode::None {
        return known(FenceOutcome::Off {
            reason: "FENCE_DATABASE=none: the old primary is left to the operator".into(),
        });
    }
    match probe {
        SourceProbe::NotFound if mode == FenceMode::Rename => known(FenceOutcome::Fenced {
            how: format!(
                "no instance answers as {source_id} any more (renamed to {})",
                fenced_name(source_id)
            ),
        }),
        SourceProbe::NotFound => known(FenceOutcome::Fenced {
            how: format!("{source_id} no longer exists"),
        }),
        SourceProbe::Status { status } if mode == FenceMode::Stop && (status == "stopped" || status == "stopping") => {
            known(FenceOutcome::Fenced {
                how: format!("{source_id} is {status}"),
            })
        }
        SourceProbe::Status { status } if status == "deleting" => known(FenceOutcome::Fenced {
            how: format!("{source_id} is being deleted"),
        }),
        SourceProbe::Status { status } if status == "available" => match mode {
            FenceMode::Stop => DatabaseFenceStep::Stop,
            _ => DatabaseFenceStep::Rename {
                to: fenced_name(source_id),
            },
        },
        SourceProbe::Status { status } => not_yet(format!(
            "{source_id} is {status}; it is fenced once it is available again (RDS accepts the change only then)"
        )),
        SourceProbe::Unreachable { error } => not_yet(format!("its region did not answer ({error})")),
        SourceProbe::Throttled { error } | SourceProbe::Unknown { error } => {
            not_yet(format!("its region answered with an error ({error})"))
        }
        SourceProbe::Skipped => not_yet("the old primary was not looked at".into()),
    }
}

/// `<id>-fenced`, within RDS's 63 characters and never ending in a hyphen.
pub fn fenced_name(source_id: &str) -> String {
    let base: String = source_id.chars().take(63 - "-fenced".len()).collect();
    format!("{}-fenced", base.trim_end_matches('-'))
}

/// An event source mapping of the forward replicator, as listed in the primary region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingView {
    /// The mapping's UUID.
    pub uuid: String,
    /// `State`: Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting.
    pub state: String,
}

/// What to do about the forward replicator's mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationFenceStep {
    /// Disable these mappings.
    Disable(Vec<String>),
    /// Nothing to call.
    Known(FenceOutcome),
}

/// Decides the replication fence from the mappings of `function` (`None`: not configured).
pub fn replication_fence_step(function: Option<&str>, mappings: Result<&[MappingView], &str>) -> ReplicationFenceStep {
    let Some(function) = function else {
        return ReplicationFenceStep::Known(FenceOutcome::Off {
            reason: "FORWARD_REPLICATOR_FUNCTION is not set: no stream replication to pause".into(),
        });
    };
    let mappings = match mappings {
        Ok(mappings) => mappings,
        Err(error) => {
            return ReplicationFenceStep::Known(FenceOutcome::NotYet {
                reason: format!("the primary region's Lambda API did not answer ({error}); paused on recovery"),
            })
        }
    };
    let running: Vec<String> = mappings
        .iter()
        .filter(|m| !matches!(m.state.as_str(), "Disabled" | "Disabling" | "Deleting"))
        .map(|m| m.uuid.clone())
        .collect();
    if running.is_empty() {
        ReplicationFenceStep::Known(FenceOutcome::Fenced {
            how: match mappings.len() {
                0 => format!("{function} has no event source mapping"),
                n => format!("all {n} event source mapping(s) of {function} are disabled"),
            },
        })
    } else {
        ReplicationFenceStep::Disable(running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str) -> SourceProbe {
        SourceProbe::Status { status: s.into() }
    }

    #[test]
    fn an_available_old_primary_is_stopped_or_renamed() {
        assert_eq!(
            database_fence_step(FenceMode::Stop, "shop-db", &status("available")),
            DatabaseFenceStep::Stop
        );
        assert_eq!(
            database_fence_step(FenceMode::Rename, "shop-db", &status("available")),
            DatabaseFenceStep::Rename {
                to: "shop-db-fenced".into()
            }
        );
    }

    #[test]
    fn a_stopped_or_vanished_old_primary_is_already_fenced() {
        for (mode, probe) in [
            (FenceMode::Stop, status("stopped")),
            (FenceMode::Stop, status("stopping")),
            (FenceMode::Stop, SourceProbe::NotFound),
            (FenceMode::Rename, SourceProbe::NotFound),
            (FenceMode::Rename, status("deleting")),
        ] {
            assert!(
                matches!(
                    database_fence_step(mode, "shop-db", &probe),
                    DatabaseFenceStep::Known(FenceOutcome::Fenced { .. })
                ),
                "{mode:?} {probe:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_or_busy_old_primary_stays_pending_with_the_reason() {
        let unreachable = SourceProbe::Unreachable {
            error: "connect timeout".into(),
        };
        for (probe, needle) in [
            (unreachable, "connect timeout"),
            (status("rebooting"), "rebooting"),
            (
                SourceProbe::Unknown {
                    error: "AccessDenied".into(),
                },
                "AccessDenied",
            ),
        ] {
            match database_fence_step(FenceMode::Stop, "shop-db", &probe) {
                DatabaseFenceStep::Known(FenceOutcome::NotYet { reason }) => {
                    assert!(reason.contains(needle), "{reason}")
                }
                other => panic!("{probe:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn mode_none_is_reported_as_not_configured() {
        assert!(matches!(
            database_fence_step(FenceMode::None, "shop-db", &status("available")),
            DatabaseFenceStep::Known(FenceOutcome::Off { .. })
        ));
        assert_eq!(FenceMode::parse("rename"), Some(FenceMode::Rename));
        assert_eq!(FenceMode::parse("delete"), None);
    }

    #[test]
    fn fenced_names_stay_valid_rds_identifiers() {
        let long = "a".repeat(63);
        assert_eq!(fenced_name(&long).len(), 63);
        assert_eq!(fenced_name("db-"), "db-fenced");
    }

    #[test]
    fn running_mappings_are_disabled_and_disabled_ones_count_as_paused() {
        let mapping = |uuid: &str, state: &str| MappingView {
            uuid: uuid.into(),
            state: state.into(),
        };
        let some = [
            mapping("a", "Enabled"),
            mapping("b", "Disabled"),
            mapping("c", "Updating"),
        ];
        assert_eq!(
            replication_fence_step(Some("shop-stream-replicator"), Ok(&some)),
            ReplicationFenceStep::Disable(vec!["a".into(), "c".into()])
        );
        let paused = [mapping("a", "Disabling"), mapping("b", "Disabled")];
        assert!(matches!(
            replication_fence_step(Some("f"), Ok(&paused)),
            ReplicationFenceStep::Known(FenceOutcome::Fenced { how }) if how.contains("all 2")
        ));
        assert!(matches!(
            replication_fence_step(Some("f"), Err("timeout")),
            ReplicationFenceStep::Known(FenceOutcome::NotYet { reason }) if reason.contains("timeout")
        ));
        assert!(matches!(
            replication_fence_step(None, Ok(&[])),
            ReplicationFenceStep::Known(FenceOutcome::Off { .. })
        ));
    }

    #[test]
    fn states_keep_the_first_fenced_time_and_count_attempts() {
        let pending = FenceState::Pending {
            reason: "x".into(),
            attempts: 2,
        };
        let not_yet = FenceOutcome::NotYet { reason: "y".into() };
        assert_eq!(
            pending.after(not_yet, 5),
            FenceState::Pending {
                reason: "y".into(),
                attempts: 3
            }
        );
        let done = pending.after(FenceOutcome::Fenced { how: "stopped".into() }, 7);
        assert_eq!(
            done.after(FenceOutcome::Fenced { how: "again".into() }, 9),
            FenceState::Done {
                how: "stopped".into(),
                at_ms: 7
            }
        );
        let mut record = FenceRecord::new("a@t", None);
        assert!(record.is_pending());
        record.database = done;
        record.replication = FenceState::NotConfigured { reason: "off".into() };
        assert!(!record.is_pending());
    }
}
