//! One monitor run's decision: stay, fail over, fail back, or raise the alarm.

use serde::Serialize;

use super::check::CheckResult;
use super::state::{HealthState, Switch, SwitchKind};
use crate::region::Region;

/// When to switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// N: consecutive failures of the active region before failing over.
    pub failover_after: u32,
    /// M: consecutive healthy checks of the primary before failing back.
    pub failback_after: u32,
    /// Fail back without an explicit approval (opt-in).
    pub auto_failback: bool,
}

/// What this run decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Nothing to change.
    Stay,
    /// Switch the active region.
    Switch(Switch),
    /// Both regions failed this check: no switch is safe. Critical.
    BothUnhealthy,
    /// The primary has been healthy long enough; failback waits for an approval.
    FailbackAwaitingApproval,
}

fn healthy(results: &[CheckResult], region: &Region) -> bool {
    results.iter().any(|r| &r.region == region && r.healthy)
}

/// Applies this run's results to `state` and decides. A region without a result counts
/// as unhealthy. Never switches to a region that is unhealthy in this run; fails over only
/// after `failover_after` consecutive failures of the active region; fails back to
/// `primary` only after `failback_after` consecutive healthy checks and, unless
/// `auto_failback`, an approval.
pub fn decide(
    state: &HealthState,
    primary: &Region,
    secondary: &Region,
    results: &[CheckResult],
    thresholds: Thresholds,
    approved: bool,
    now_ms: i64,
) -> (HealthState, Decision) {
    let mut next = state.clone();
    for region in [primary, secondary] {
        let counters = next.regions.entry(region.clone()).or_default();
        if healthy(results, region) {
            counters.consecutive_successes = counters.consecutive_successes.saturating_add(1);
            counters.consecutive_failures = 0;
        } else {
            counters.consecutive_failures = counters.consecutive_failures.saturating_add(1);
            counters.consecutive_successes = 0;
        }
    }
    let active = next.active_region.clone();
    let other = if &active == primary {
        secondary.clone()
    } else {
        primary.clone()
    };
    let (active_ok, other_ok) = (healthy(results, &active), healthy(results, &other));
    let active_counters = next.counters(&active);
    let primary_counters = next.counters(primary);

    let decision = if !active_ok && !other_ok {
        Decision::BothUnhealthy
    } else if !active_ok && active_counters.consecutive_failures >= thresholds.failover_after.max(1) {
        Decision::Switch(Switch {
            kind: SwitchKind::Failover,
            reason: format!(
                "{active} failed {} consecutive checks (threshold {}); {other} is healthy",
                active_counters.consecutive_failures, thresholds.failover_after
            ),
            from: active,
            to: other,
            at_ms: now_ms,
        })
    } else if &active != primary
        && other_ok
        && primary_counters.consecutive_successes >= thresholds.failback_after.max(1)
    {
        if thresholds.auto_failback || approved {
            Decision::Switch(Switch {
                kind: SwitchKind::Failback,
                reason: format!(
                    "{primary} healthy for {} consecutive checks (threshold {}); failback {}",
                    primary_counters.consecutive_successes,
                    thresholds.failback_after,
                    if approved { "approved" } else { "automatic" }
                ),
                from: active,
                to: primary.clone(),
                at_ms: now_ms,
            })
        } else {
            Decision::FailbackAwaitingApproval
        }
    } else {
        Decision::Stay
    };
    if let Decision::Switch(switch) = &decision {
        next.active_region = switch.to.clone();
        next.last_switch = Some(switch.clone());
        next.published = false;
    }
    (next, decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn regions() -> (Region, Region) {
        (Region::new("us-east-1").unwrap(), Region::new("us-west-2").unwrap())
    }

    fn results(a: bool, b: bool) -> Vec<CheckResult> {
        let (p, s) = regions();
        let one = |region: Region, ok: bool| {
            if ok {
                CheckResult::healthy(region, 5, 3)
            } else {
                CheckResult::unhealthy(region, "timeout")
            }
        };
        vec![one(p, a), one(s, b)]
    }

    const T: Thresholds = Thresholds {
        failover_after: 3,
        failback_after: 10,
        auto_failback: false,
    };

    /// Runs a sequence; returns the decisions.
    fn run(steps: &[(bool, bool, bool)], thresholds: Thresholds) -> (HealthState, Vec<Decision>) {
        let (p, s) = regions();
        let mut state = HealthState::initial(&p, &s);
        let mut decisions = Vec::new();
        for (i, (a, b, approved)) in steps.iter().enumerate() {
            let (next, decision) = decide(&state, &p, &s, &results(*a, *b), thresholds, *approved, i as i64);
            state = next;
            decisions.push(decision);
        }
        (state, decisions)
    }

    #[test]
    fn fails_over_on_exactly_the_nth_failure() {
        let steps = vec![(false, true, false); 3];
        let (state, decisions) = run(&steps, T);
        assert_eq!(decisions[..2], [Decision::Stay, Decision::Stay]);
        assert!(
            matches!(&decisions[2], Decision::Switch(s) if s.kind == SwitchKind::Failover && s.to.as_str() == "us-west-2")
        );
        assert_eq!(state.active_region.as_str(), "us-west-2");
        assert!(!state.published);
    }

    #[test]
    fn a_single_success_resets_the_failure_count() {
        let steps = vec![
            (false, true, false),
            (false, true, false),
            (true, true, false),
            (false, true, false),
            (false, true, false),
        ];
        let (state, decisions) = run(&steps, T);
        assert!(decisions.iter().all(|d| *d == Decision::Stay));
        assert_eq!(state.active_region.as_str(), "us-east-1");
    }

    #[test]
    fn both_unhealthy_never_switches() {
        let (state, decisions) = run(&[(false, false, true); 5], T);
        assert!(decisions.iter().all(|d| *d == Decision::BothUnhealthy));
        assert_eq!(state.active_region.as_str(), "us-east-1");
    }

    #[test]
    fn failback_needs_m_healthy_checks_and_approval() {
        let mut steps = vec![(false, true, false); 3];
        steps.extend(vec![(true, true, false); 10]);
        let (state, decisions) = run(&steps, T);
        assert_eq!(decisions.last(), Some(&Decision::FailbackAwaitingApproval));
        assert_eq!(state.active_region.as_str(), "us-west-2");
        steps.push((true, true, true));
        let (state, decisions) = run(&steps, T);
        assert!(matches!(decisions.last(), Some(Decision::Switch(s)) if s.kind == SwitchKind::Failback));
        assert_eq!(state.active_region.as_str(), "us-east-1");
    }

    #[test]
    fn automatic_failback_is_opt_in() {
        let mut steps = vec![(false, true, false); 3];
        steps.extend(vec![(true, true, false); 10]);
        let (state, _) = run(
            &steps,
            Thresholds {
                auto_failback: true,
                ..T
            },
        );
        assert_eq!(state.active_region.as_str(), "us-east-1");
    }

    proptest! {
        /// For any sequence of check results and approvals: never switch to a region that
        /// is unhealthy in that run, never fail over before N consecutive failures of the
        /// active region, never fail back without approval (when required) and M healthy
        /// checks of the primary.
        #[test]
        fn the_state_machine_is_safe(
            steps in prop::collection::vec((any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)), 1..200),
            auto_failback in any::<bool>(),
            failover_after in 1u32..5,
            failback_after in 1u32..12,
        ) {
            let thresholds = Thresholds { failover_after, failback_after, auto_failback };
            let (p, s) = regions();
            let mut state = HealthState::initial(&p, &s);
            let mut history: Vec<(bool, bool)> = Vec::new();
            for (i, (a, b, approved)) in steps.iter().enumerate() {
                history.push((*a, *b));
                let before = state.active_region.clone();
                let (next, decision) = decide(&state, &p, &s, &results(*a, *b), thresholds, *approved, i as i64);
                if let Decision::Switch(switch) = &decision {
                    let to_ok = if switch.to == p { *a } else { *b };
                    prop_assert!(to_ok, "switched to unhealthy {}", switch.to);
                    prop_assert_eq!(&switch.from, &before);
                    match switch.kind {
                        SwitchKind::Failover => {
                            let failed_in_a_row = history.iter().rev().take_while(|(a, b)| !(if before == p { *a } else { *b })).count();
                            prop_assert!(failed_in_a_row as u32 >= failover_after);
                        }
                        SwitchKind::Failback => {
                            prop_assert_eq!(&switch.to, &p);
                            prop_assert!(auto_failback || *approved, "failback without approval");
                            let healthy_in_a_row = history.iter().rev().take_while(|(a, _)| *a).count();
                            prop_assert!(healthy_in_a_row as u32 >= failback_after);
                        }
                    }
                } else {
                    prop_assert_eq!(&next.active_region, &before);
                }
                state = next;
            }
        }
    }
}
