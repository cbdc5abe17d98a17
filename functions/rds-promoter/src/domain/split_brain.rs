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

/// Decides from the probe; an `authoritative` alarm overrides a live-looking source
/// (the user has declared that this alarm alone proves the primary is gone).
pub fn split_brain_verdict(probe: &SourceProbe, source: &str, authoritative: bool) -> SplitBrainVerdict {
    let proceed = |reason: String| SplitBrainVerdict::Proceed { reason };
    match probe {
        SourceProbe::Skipped => proceed("split-brain guard disabled".into()),
        SourceProbe::NotFound => proceed(format!("source {source} no longer exists")),
        SourceProbe::Unreachable { error } => proceed(format!("source region did not answer ({error})")),
        SourceProbe::Status { status } if status != "available" => {
            proceed(format!("source {source} is {status}, not available"))
        }
        _ if authoritative => proceed(format!("alarm is authoritative; source probe found {probe:?}")),
        SourceProbe::Status { .. } => SplitBrainVerdict::Refuse {
            reason: format!(
                "source {source} still answers as available in its region: promoting now would create two writable primaries (split brain). Fix the alarm, or list it in AUTHORITATIVE_ALARMS if it alone proves the primary is lost"
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
            matches!(split_brain_verdict(&status("available"), SRC, false), SplitBrainVerdict::Refuse { reason } if reason.contains("split brain"))
        );
        assert!(matches!(
            split_brain_verdict(&status("available"), SRC, true),
            SplitBrainVerdict::Proceed { .. }
        ));
    }

    #[test]
    fn proceeds_when_the_source_is_gone_down_or_unreachable() {
        for probe in [
            status("stopped"),
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
                    split_brain_verdict(&probe, SRC, false),
                    SplitBrainVerdict::Proceed { .. }
                ),
                "{probe:?}"
            );
        }
    }

    #[test]
    fn a_throttled_probe_waits_unless_authoritative() {
        let probe = SourceProbe::Throttled {
            error: "Throttling: Rate exceeded".into(),
        };
        assert!(
            matches!(split_brain_verdict(&probe, SRC, false), SplitBrainVerdict::Undecided { reason } if reason.contains("Rate exceeded"))
        );
        assert!(matches!(
            split_brain_verdict(&probe, SRC, true),
            SplitBrainVerdict::Proceed { .. }
        ));
    }

    #[test]
    fn an_uninformative_error_refuses_unless_authoritative() {
        let probe = SourceProbe::Unknown {
            error: "AccessDenied".into(),
        };
        assert!(
            matches!(split_brain_verdict(&probe, SRC, false), SplitBrainVerdict::Refuse { reason } if reason.contains("AccessDenied"))
        );
        assert!(matches!(
            split_brain_verdict(&probe, SRC, true),
            SplitBrainVerdict::Proceed { .. }
        ));
    }
}
