//! Whether an alarm transition should trigger a failover.

use std::collections::BTreeSet;

use serde::Serialize;

use super::transition::{AlarmState, AlarmTransition};
use crate::config::{ConfigError, EnvReader};

/// Which alarms may trigger a failover: exact names and/or name prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmPolicy {
    names: BTreeSet<String>,
    prefixes: Vec<String>,
}

/// The policy's answer for one transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Act on this transition.
    Act,
    /// Do nothing, for the stated reason.
    Ignored {
        /// Why nothing is done.
        reason: IgnoreReason,
    },
}

/// Why a transition is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IgnoreReason {
    /// The alarm did not enter ALARM (it recovered or lacks data).
    NotAlarm {
        /// The state it entered.
        state: AlarmState,
    },
    /// ALARM → ALARM: a re-notification, not a new incident.
    AlreadyInAlarm,
    /// The alarm is in neither the allow list nor under an allowed prefix.
    AlarmNotAllowed {
        /// The alarm's name.
        alarm_name: String,
    },
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAlarm { state } => write!(f, "alarm entered {state}, not ALARM"),
            Self::AlreadyInAlarm => f.write_str("alarm was already in ALARM (repeated notification)"),
            Self::AlarmNotAllowed { alarm_name } => write!(
                f,
                "alarm {alarm_name:?} is not in the allow list or under an allowed prefix"
            ),
        }
    }
}

impl AlarmPolicy {
    /// A policy from explicit names and prefixes; at least one of them must be non-empty,
    /// because acting on any alarm in the account would turn every alarm into a failover.
    pub fn new(
        names: impl IntoIterator<Item = String>,
        prefixes: impl IntoIterator<Item = String>,
    ) -> Result<Self, ConfigError> {
        let names: BTreeSet<String> = names.into_iter().filter(|n| !n.trim().is_empty()).collect();
        let prefixes: Vec<String> = prefixes.into_iter().filter(|p| !p.trim().is_empty()).collect();
        if names.is_empty() && prefixes.is_empty() {
            return Err(ConfigError::Missing {
                var: "ALLOWED_ALARM_NAMES or ALLOWED_ALARM_PREFIXES".into(),
                expected: "at least one alarm name or name prefix that may trigger a failover".into(),
            });
        }
        Ok(Self { names, prefixes })
    }

    /// Reads `ALLOWED_ALARM_NAMES` and `ALLOWED_ALARM_PREFIXES` (comma-separated lists).
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        Self::new(env.list("ALLOWED_ALARM_NAMES"), env.list("ALLOWED_ALARM_PREFIXES"))
    }

    /// True when `alarm_name` is allowed to trigger a failover.
    pub fn allows(&self, alarm_name: &str) -> bool {
        self.names.contains(alarm_name) || self.prefixes.iter().any(|p| alarm_name.starts_with(p.as_str()))
    }

    /// Decides: act only on a transition into ALARM, from a state other than ALARM,
    /// of an allowed alarm. A missing previous state is accepted: the lock taken by the
    /// acting function, not this policy, makes duplicate deliveries harmless.
    pub fn evaluate(&self, transition: &AlarmTransition) -> Verdict {
        let reason = if transition.to_state != AlarmState::Alarm {
            Some(IgnoreReason::NotAlarm {
                state: transition.to_state,
            })
        } else if transition.from_state == Some(AlarmState::Alarm) {
            Some(IgnoreReason::AlreadyInAlarm)
        } else if !self.allows(&transition.alarm_name) {
            Some(IgnoreReason::AlarmNotAllowed {
                alarm_name: transition.alarm_name.clone(),
            })
        } else {
            None
        };
        match reason {
            Some(reason) => Verdict::Ignored { reason },
            None => Verdict::Act,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::TransitionSource;
    use crate::region::Region;

    fn transition(name: &str, from: Option<AlarmState>, to: AlarmState) -> AlarmTransition {
        AlarmTransition {
            alarm_name: name.into(),
            alarm_arn: None,
            region: Region::new("us-east-1").unwrap(),
            account: None,
            from_state: from,
            to_state: to,
            reason: String::new(),
            timestamp: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            source: TransitionSource::EventBridge,
        }
    }

    fn policy() -> AlarmPolicy {
        AlarmPolicy::new(["shop-db-primary-down".to_string()], ["shop-failover-".to_string()]).unwrap()
    }

    #[test]
    fn acts_on_allowed_alarm_entering_alarm() {
        use AlarmState::*;
        for from in [Some(Ok), Some(InsufficientData), None] {
            assert_eq!(
                policy().evaluate(&transition("shop-db-primary-down", from, Alarm)),
                Verdict::Act
            );
            assert_eq!(
                policy().evaluate(&transition("shop-failover-region-health", from, Alarm)),
                Verdict::Act
            );
        }
    }

    #[test]
    fn ignores_ok_and_insufficient_data() {
        use AlarmState::*;
        for to in [Ok, InsufficientData] {
            assert_eq!(
                policy().evaluate(&transition("shop-db-primary-down", Some(Alarm), to)),
                Verdict::Ignored {
                    reason: IgnoreReason::NotAlarm { state: to }
                }
            );
        }
    }

    #[test]
    fn ignores_repeated_alarm() {
        let verdict = policy().evaluate(&transition(
            "shop-db-primary-down",
            Some(AlarmState::Alarm),
            AlarmState::Alarm,
        ));
        assert_eq!(
            verdict,
            Verdict::Ignored {
                reason: IgnoreReason::AlreadyInAlarm
            }
        );
    }

    #[test]
    fn ignores_unknown_alarms_including_near_misses() {
        for name in [
            "billing-alarm",
            "shop-db-primary-down-2",
            "SHOP-FAILOVER-x",
            "shop-failover",
        ] {
            assert_eq!(
                policy().evaluate(&transition(name, Some(AlarmState::Ok), AlarmState::Alarm)),
                Verdict::Ignored {
                    reason: IgnoreReason::AlarmNotAllowed {
                        alarm_name: name.into()
                    }
                },
                "{name}"
            );
        }
    }

    #[test]
    fn an_empty_policy_is_a_configuration_error() {
        let err = AlarmPolicy::new(Vec::<String>::new(), [" ".to_string()]).unwrap_err();
        assert!(err
            .to_string()
            .contains("ALLOWED_ALARM_NAMES or ALLOWED_ALARM_PREFIXES"));
        let env = EnvReader::from_pairs([("ALLOWED_ALARM_PREFIXES", "shop-failover-")]);
        assert!(AlarmPolicy::from_env(&env).unwrap().allows("shop-failover-x"));
    }

    #[test]
    fn verdicts_serialize_for_the_function_result() {
        let verdict = Verdict::Ignored {
            reason: IgnoreReason::NotAlarm { state: AlarmState::Ok },
        };
        assert_eq!(
            serde_json::to_value(&verdict).unwrap(),
            serde_json::json!({"verdict": "ignored", "reason": {"kind": "not-alarm", "state": "OK"}})
        );
    }
}
