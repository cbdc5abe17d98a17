//! Whether a stored failback approval still counts.

use failover_core::parameters::StoredParameter;

use super::state::HealthState;

/// True when `stored`, the failback approval parameter as read with its modification time,
/// approves a failback now: it says `true` and was written after the
/// last switch. An approval set while no failback was pending would otherwise stay `true`
/// and approve the next failback silently, i.e. act as automatic failback.
pub fn approval_is_current(stored: Option<&StoredParameter>, state: &HealthState) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    if !stored.value.trim().eq_ignore_ascii_case("true") {
        return false;
    }
    match (stored.modified_ms, &state.last_switch) {
        (Some(modified_ms), Some(switch)) => modified_ms > switch.at_ms,
        // Without a switch nothing is pending; without a time the approval may be stale.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Switch, SwitchKind};
    use failover_core::Region;

    fn state(last_switch_at: Option<i64>) -> HealthState {
        let (p, s) = (Region::new("us-east-1").unwrap(), Region::new("us-west-2").unwrap());
        let mut state = HealthState::initial(&p, &s);
        if let Some(at_ms) = last_switch_at {
            state.active_region = s.clone();
            state.last_switch = Some(Switch {
                kind: SwitchKind::Failover,
                from: p,
                to: s,
                at_ms,
                reason: "test".into(),
            });
        }
        state
    }

    fn stored(value: &str, modified_ms: Option<i64>) -> StoredParameter {
        StoredParameter {
            value: value.into(),
            modified_ms,
        }
    }

    #[test]
    fn an_approval_written_after_the_last_switch_counts() {
        for value in ["true", "TRUE", " True\n"] {
            assert!(
                approval_is_current(Some(&stored(value, Some(1_001))), &state(Some(1_000))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn an_approval_written_before_or_at_the_last_switch_is_stale() {
        assert!(!approval_is_current(
            Some(&stored("true", Some(999))),
            &state(Some(1_000))
        ));
        assert!(!approval_is_current(
            Some(&stored("true", Some(1_000))),
            &state(Some(1_000))
        ));
    }

    #[test]
    fn anything_but_a_timed_true_after_a_switch_does_not_approve() {
        let after = state(Some(1_000));
        assert!(!approval_is_current(None, &after));
        for value in ["false", "", "yes", "1", "truee"] {
            assert!(
                !approval_is_current(Some(&stored(value, Some(2_000))), &after),
                "{value:?}"
            );
        }
        assert!(
            !approval_is_current(Some(&stored("true", None)), &after),
            "unknown time"
        );
        assert!(
            !approval_is_current(Some(&stored("true", Some(2_000))), &state(None)),
            "nothing pending"
        );
    }
}
