//! Whether an alarm transition should trigger a failover: the one transition policy every
//! entry point applies (EventBridge rule and direct alarm action alike), as a pure function.

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
    /// The alarm did not come from OK: INSUFFICIENT_DATA → ALARM is a new alarm's first
    /// evaluation or the end of a data gap, not a healthy system failing.
    NotHealthyBefore {
        /// The state it came from.
        state: AlarmState,
    },
    /// The event does not say which state the alarm came from, so "healthy before" cannot
    /// be shown.
    PreviousStateUnknown,
    /// CloudWatch suppresses the alarm's actions in this state (composite alarm action
    /// suppression); it reports the state again, unsuppressed, if the actions are to run.
    ActionsSuppressed {
        /// `Alarm`, `WaitPeriod` or `ExtensionPeriod`.
        by: String,
        /// CloudWatch's reason.
        reason: String,
    },
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
            Self::NotHealthyBefore { state } => write!(
                f,
                "alarm came from {state}, not OK (a new alarm's first evaluation or the end of a data gap)"
            ),
            Self::PreviousStateUnknown => f.write_str("the event does not say which state the alarm came from"),
            Self::ActionsSuppressed { by, reason } => write!(
                f,
                "CloudWatch suppresses this alarm's actions (actionsSuppressedBy {by}: {reason}); it reports the alarm again when the actions run"
            ),
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

    /// Decides: act only on an allowed alarm entering ALARM from OK with its actions not
    /// suppressed, or staying in ALARM as its actions' suppression ends (CloudWatch then
    /// runs the actions it held back). Everything else is ignored with its reason:
    /// recoveries, re-notifications, INSUFFICIENT_DATA → ALARM (a freshly created alarm, or
    /// the end of a data gap: the system was not seen healthy before), an unknown previous
    /// state, and suppressed actions (a maintenance window's suppressor alarm, or the
    /// WaitPeriod / ExtensionPeriod around it; see the CloudWatch user guide, "Suppressing
    /// composite alarm actions").
    pub fn evaluate(&self, transition: &AlarmTransition) -> Verdict {
        let reason = match (transition.to_state, &transition.suppressed, transition.from_state) {
            (to, _, _) if to != AlarmState::Alarm => Some(IgnoreReason::NotAlarm { state: to }),
            (_, Some(suppression), _) => Some(IgnoreReason::ActionsSuppressed {
                by: suppression.by.clone(),
                reason: suppression.reason.clone(),
            }),
            (_, None, Some(AlarmState::Ok)) => None,
            (_, None, Some(AlarmState::Alarm)) if transition.previously_suppressed.is_some() => None,
            (_, None, Some(AlarmState::Alarm)) => Some(IgnoreReason::AlreadyInAlarm),
            (_, None, Some(state)) => Some(IgnoreReason::NotHealthyBefore { state }),
            (_, None, None) => Some(IgnoreReason::PreviousStateUnknown),
        };
        let reason = reason.or_else(|| {
            (!self.allows(&transition.alarm_name)).then(|| IgnoreReason::AlarmNotAllowed {
                alarm_name: transition.alarm_name.clone(),
            })
        });
        match reason {
            Some(reason) => Verdict::Ignored { reason },
            None => Verdict::Act,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{Suppression, TransitionSource};
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
            suppressed: None,
            previously_suppressed: None,
        }
    }

    fn suppression(by: &str) -> Option<Suppression> {
        Some(Suppression {
            by: by.into(),
            reason: format!("Actions suppressed by {by}"),
        })
    }

    fn policy() -> AlarmPolicy {
        AlarmPolicy::new(["shop-db-primary-down".to_string()], ["shop-failover-".to_string()]).unwrap()
    }

    #[test]
    fn acts_on_allowed_alarm_entering_alarm_from_ok() {
        use AlarmState::*;
        for name in ["shop-db-primary-down", "shop-failover-region-health"] {
            assert_eq!(policy().evaluate(&transition(name, Some(Ok), Alarm)), Verdict::Act);
        }
    }

    #[test]
    fn only_a_system_seen_healthy_before_fails_over() {
        use AlarmState::*;
        // A freshly created alarm's first evaluation, or the end of a data gap.
        assert_eq!(
            policy().evaluate(&transition("shop-db-primary-down", Some(InsufficientData), Alarm)),
            Verdict::Ignored {
                reason: IgnoreReason::NotHealthyBefore {
                    state: InsufficientData
                }
            }
        );
        assert_eq!(
            policy().evaluate(&transition("shop-db-primary-down", None, Alarm)),
            Verdict::Ignored {
                reason: IgnoreReason::PreviousStateUnknown
            }
        );
    }

    /// CloudWatch user guide, "Suppressing composite alarm actions": while the suppressor
    /// alarm is in ALARM (`Alarm`), and during the WaitPeriod and ExtensionPeriod around
    /// it, the composite alarm takes no actions; when a WaitPeriod ends without the
    /// suppressor, the actions run and the alarm is reported again, still in ALARM, with
    /// its previous state's `actionsSuppressedBy` set (the AWS sample composite-alarm
    /// Lambda action payload shows exactly this).
    #[test]
    fn suppressed_actions_never_act_and_their_release_does() {
        use AlarmState::*;
        for by in ["Alarm", "WaitPeriod", "ExtensionPeriod"] {
            for from in [Some(Ok), Some(Alarm), None] {
                let mut t = transition("shop-failover-composite", from, Alarm);
                t.suppressed = suppression(by);
                assert_eq!(
                    policy().evaluate(&t),
                    Verdict::Ignored {
                        reason: IgnoreReason::ActionsSuppressed {
                            by: by.into(),
                            reason: format!("Actions suppressed by {by}")
                        }
                    },
                    "{by} from {from:?}"
                );
            }
            let mut released = transition("shop-failover-composite", Some(Alarm), Alarm);
            released.previously_suppressed = suppression(by);
            assert_eq!(policy().evaluate(&released), Verdict::Act, "released after {by}");
            let mut other = released.clone();
            other.alarm_name = "billing".into();
            assert!(
                matches!(policy().evaluate(&other), Verdict::Ignored { .. }),
                "the allow list still applies"
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
