//! The split-brain guard: never promote while the old primary still serves writes.

use serde::Serialize;

/// What a look at the source primary, in its own region, found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "found", rename_all = "kebab-case")]
pub enum SourceProbe {
    /// The source answered with this status.
    Status {
        /// `DBInstanceStatus` of the source.
        status: String,
    },
    /// Its region answered that the source does not exist.
    NotFound,
    /// Its region did not answer in time (timeout, connection failure, 5xx).
    Unreachable {
        /// What went wrong.
        error: String,
    },
    /// Its region answered, but throttled the request: it is up, the source's state unknown.
    Throttled {
        /// The throttling error.
        error: String,
    },
    /// Its region answered with an error that says nothing about the source (e.g. access denied).
    Unknown {
        /// The error.
        error: String,
    },
    /// The guard is switched off.
    Skipped,
}

/// Whether promotion may go ahead as far as split brain is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum SplitBrainVerdict {
    /// Go ahead, for the stated reason.
    Proceed {
        /// Why it is safe (or accepted).
        reason: String,
    },
    /// Do not promote: the old primary may still take writes.
    Refuse {
        /// Why not.
        reason: String,
    },
    /// Not now: the source's region is up but said nothing about the source; look again.
    Undecided {
        /// Why the guard could not decide.
        reason: String,
    },
}

impl SplitBrainVerdict {
    /// Why the guard decided as it did.
    pub fn reason(&self) -> &str {
        match self {
            Self::Proceed { reason } | Self::Refuse { reason } | Self::Undecided { reason } => reason,
        }
    }
}

/// RDS statuses in which an instance does not take writes (the RDS user guide, "Viewing
/// Amazon RDS DB instance status"). Every other status — `available`, `backing-up`,
/// `modifying`, `storage-optimization`, `configuring-*`, `upgrading`, `rebooting`,
/// `maintenance`, a status added later — may still serve or soon serve writes, so the
/// guard treats it as alive: it fails closed.
const NOT_SERVING_WRITES: [&str; 13] = [
    "stopped",
    "stopping",
    "failed",
    "deleting",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "storage-full",
];

/// Whether an instance in `status` may still take writes.
pub fn serves_writes(status: &str) -> bool {
    !NOT_SERVING_WRITES.contains(&status)
}

/// Decides from the probe; an `authoritative` alarm overrides a live-looking source
/// (the user has declared that this alarm alone proves the primary is gone).
/// `witness_reaches_primary` is the witness's fresh healthy check of the primary region,
/// in words: with it, "no answer" from here is a partition, not a dead primary.
pub fn split_brain_verdict(
    probe: &SourceProbe,
    source: &str,
    authoritative: bool,
    witness_reaches_primary: Option<&str>,
) -> SplitBrainVerdict {
    let proceed = |reason: String| SplitBrainVerdict::Proceed { reason };
    match probe {
        SourceProbe::Skipped => proceed("split-brain guard disabled".into()),
        SourceProbe::NotFound => proceed(format!("source {source} no longer exists")),
        SourceProbe::Status { status } if !serves_writes(status) => {
            proceed(format!("source {source} is {status}: it takes no writes"))
        }
        _ if authoritative => proceed(format!("alarm is authoritative; source probe found {probe:?}")),
        SourceProbe::Unreachable { error } => match witness_reaches_primary {
            Some(witness) => SplitBrainVerdict::Refuse {
                reason: format!(
                    "source region did not answer here ({error}), but {witness}: a partition between the regions, and source {source} may still take writes"
                ),
            },
            None => proceed(format!("source region did not answer ({error})")),
        },
        SourceProbe::Status { status } => SplitBrainVerdict::Refuse {
            reason: format!(
                "source {source} still answers as {status} in its region, which serves writes: promoting now would create two writable primaries (split brain). Fix the alarm, or list it in AUTHORITATIVE_ALARMS if it alone proves the primary is lost"
            ),
        },
        SourceProbe::Throttled { error } => SplitBrainVerdict::Undecided {
            reason: format!(
                "the source's region answered but throttled the look at source {source} ({error}): it is up, so the source may still take writes; retrying"
            ),
        },
        SourceProbe::Unknown { error } => SplitBrainVerdict::Refuse {
            reason: format!("cannot tell whether source {source} is still available: {error}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "arn:aws:rds:us-east-1:1:db:shop-db";

    fn status(s: &str) -> SourceProbe {
        SourceProbe::Status { status: s.into() }
    }

    #[test]
    fn refuses_when_the_source_is_available_unless_authoritative() {
        assert!(
            matches!(split_brain_verdict(&status("available"), SRC, false, None), SplitBrainVerdict::Refuse { reason } if reason.contains("split brain"))
        );
        assert!(matches!(
            split_brain_verdict(&status("available"), SRC, true, None),
            SplitBrainVerdict::Proceed { .. }
        ));
    }

    #[test]
    fn proceeds_when_the_source_is_gone_down_or_unreachable() {
        for probe in [
            status("stopped"),
            status("storage-full"),
            status("failed"),
            status("inaccessible-encryption-credentials"),
            SourceProbe::NotFound,
            SourceProbe::Unreachable {
                error: "connect timeout".into(),
            },
            SourceProbe::Skipped,
        ] {
            assert!(
                matches!(
                    split_brain_verdict(&probe, SRC, false, None),
                    SplitBrainVerdict::Proceed { .. }
                ),
                "{probe:?}"
            );
        }
    }

    #[test]
    fn a_source_in_any_status_that_serves_writes_is_alive() {
        for alive in [
            "available",
            "backing-up",
            "modifying",
            "storage-optimization",
            "configuring-enhanced-monitoring",
            "upgrading",
            "rebooting",
            "a-status-added-later",
        ] {
            assert!(
                matches!(
                    split_brain_verdict(&status(alive), SRC, false, None),
                    SplitBrainVerdict::Refuse { .. }
                ),
                "{alive}"
            );
        }
    }

    #[test]
    fn no_answer_here_while_the_witness_reaches_the_primary_is_a_partition() {
        let probe = SourceProbe::Unreachable {
            error: "connect timeout".into(),
        };
        let witness = "the witness in us-east-2 reached us-east-1 4 s ago";
        assert!(
            matches!(split_brain_verdict(&probe, SRC, false, Some(witness)), SplitBrainVerdict::Refuse { reason } if reason.contains("partition") && reason.contains("us-east-2"))
        );
    }

    #[test]
    fn a_throttled_probe_waits_unless_authoritative() {
        let probe = SourceProbe::Throttled {
            error: "Throttling: Rate exceeded".into(),
        };
        assert!(
            matches!(split_brain_verdict(&probe, SRC, false, None), SplitBrainVerdict::Undecided { reason } if reason.contains("Rate exceeded"))
        );
        assert!(matches!(
            split_brain_verdict(&probe, SRC, true, None),
            SplitBrainVerdict::Proceed { .. }
        ));
    }

    #[test]
    fn an_uninformative_error_refuses_unless_authoritative() {
        let probe = SourceProbe::Unknown {
            error: "AccessDenied".into(),
        };
        assert!(
            matches!(split_brain_verdict(&probe, SRC, false, None), SplitBrainVerdict::Refuse { reason } if reason.contains("AccessDenied"))
        );
        assert!(matches!(
            split_brain_verdict(&probe, SRC, true, None),
            SplitBrainVerdict::Proceed { .. }
        ));
    }
}
