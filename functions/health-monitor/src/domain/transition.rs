//! One monitor run's decision: stay, fail over, fail back, or raise the alarm.

use serde::Serialize;

use super::check::CheckResult;
use super::state::{HealthState, Switch, SwitchKind};
use failover_core::evidence::{quorum, CheckOutcome, Observation, QuorumRule, QuorumVerdict};
use failover_core::Region;

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

/// What the other vantage point saw: the witness's observation (when one is deployed) and
/// the quorum rule that combines it with this observer's.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The witness's last saved observation (`None`: none deployed, or none saved yet).
    pub witness: Option<&'a Observation>,
    /// How old an observation may be, and whether a witness must confirm.
    pub rule: QuorumRule,
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
    /// The failover region failed N times in a row while only the primary is healthy, but
    /// the failback rules do not allow going home yet: no region is usable. Critical.
    NoUsableRegion {
        /// True when the primary has been healthy M times and only the approval is missing.
        awaiting_approval: bool,
    },
}

fn healthy(results: &[CheckResult], region: &Region) -> bool {
    results.iter().any(|r| &r.region == region && r.healthy)
}

fn outcome(results: &[CheckResult], region: &Region) -> CheckOutcome {
    results
        .iter()
        .find(|r| &r.region == region)
        .map_or(CheckOutcome::Down, |r| r.outcome)
}

/// Applies this run's results to `state` and decides. A region without a result counts
/// as down. Never switches to a region that is unhealthy in this run; fails over to
/// `secondary` only when the quorum rule says the primary is down (N consecutive failures
/// seen from here and, where deployed, from the witness; the primary seen healthy before);
/// switches back to `primary`, for whatever reason, only after `failback_after` consecutive
/// healthy checks of it and, unless `auto_failback`, an approval. Also returns the quorum
/// verdict (the evidence metrics and the report carry it).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    state: &HealthState,
    primary: &Region,
    secondary: &Region,
    results: &[CheckResult],
    thresholds: Thresholds,
    evidence: Evidence<'_>,
    approved: bool,
    now_ms: i64,
) -> (HealthState, Decision, QuorumVerdict) {
    let mut next = state.clone();
    for region in [primary, secondary] {
        next.observation.record(region, outcome(results, region), now_ms);
    }
    let verdict = quorum(
        primary,
        secondary,
        &next.observation,
        evidence.witness,
        evidence.rule,
        now_ms,
    );
    let active = next.active_region.clone();
    let at_home = &active == primary;
    let other = if at_home { secondary.clone() } else { primary.clone() };
    let (active_ok, other_ok) = (healthy(results, &active), healthy(results, &other));
    let active_counters = next.counters(&active);
    let primary_counters = next.counters(primary);
    let active_failed = !active_ok && active_counters.consecutive_failures >= thresholds.failover_after.max(1);

    // Going home is the risky direction (flapping, a second writer, orders not yet copied
    // back), so it obeys the failback rules even when the failover region is the one failing.
    let decision = if !active_ok && !other_ok {
        Decision::BothUnhealthy
    } else if at_home {
        if active_failed && verdict.is_primary_down() {
            Decision::Switch(Switch {
                kind: SwitchKind::Failover,
                reason: verdict.reason().to_owned(),
                from: active,
                to: other,
                at_ms: now_ms,
            })
        } else {
            Decision::Stay
        }
    } else if other_ok {
        let primary_ready = primary_counters.consecutive_successes >= thresholds.failback_after.max(1);
        if primary_ready && (thresholds.auto_failback || approved) {
            let why_now = if active_failed {
                format!(
                    "{active} failed {} consecutive checks; ",
                    active_counters.consecutive_failures
                )
            } else {
                String::new()
            };
            Decision::Switch(Switch {
                kind: SwitchKind::Failback,
                reason: format!(
                    "{why_now}{primary} healthy for {} consecutive checks (threshold {}); failback {}",
                    primary_counters.consecutive_successes,
                    thresholds.failback_after,
                    if approved { "approved" } else { "automatic" }
                ),
                from: active,
                to: primary.clone(),
                at_ms: now_ms,
            })
        } else if active_failed {
            Decision::NoUsableRegion {
                awaiting_approval: primary_ready,
            }
        } else if primary_ready {
            Decision::FailbackAwaitingApproval
        } else {
            Decision::Stay
        }
    } else {
        Decision::Stay
    };
    if let Decision::Switch(switch) = &decision {
        next.active_region = switch.to.clone();
        next.last_switch = Some(switch.clone());
        next.published = false;
    }
    (next, decision, verdict)
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

    /// One vantage point (no witness), observations never stale: the state machine alone.
    const ALONE: Evidence<'static> = Evidence {
        witness: None,
        rule: QuorumRule {
            failures: 3,
            max_age_ms: i64::MAX,
            witness_required: false,
        },
    };

    fn alone(thresholds: Thresholds) -> Evidence<'static> {
        Evidence {
            rule: QuorumRule {
                failures: thresholds.failover_after,
                ..ALONE.rule
            },
            ..ALONE
        }
    }

    /// The state after the primary and the secondary were seen healthy once (a deployment
    /// that has run): a failover needs a primary seen healthy before.
    fn seen_healthy() -> HealthState {
        let (p, s) = regions();
        let mut state = HealthState::initial(&p, &s);
        state.observation.record(&p, CheckOutcome::Healthy, -1);
        state.observation.record(&s, CheckOutcome::Healthy, -1);
        state
            .observation
            .regions
            .values_mut()
            .for_each(|t| t.consecutive_successes = 0);
        state
    }

    /// Runs a sequence; returns the decisions.
    fn run(steps: &[(bool, bool, bool)], thresholds: Thresholds) -> (HealthState, Vec<Decision>) {
        let (p, s) = regions();
        let mut state = seen_healthy();
        let mut decisions = Vec::new();
        for (i, (a, b, approved)) in steps.iter().enumerate() {
            let (next, decision, _) = decide(
                &state,
                &p,
                &s,
                &results(*a, *b),
                thresholds,
                alone(thresholds),
                *approved,
                i as i64,
            );
            state = next;
            decisions.push(decision);
        }
        (state, decisions)
    }

    #[test]
    fn a_primary_never_seen_healthy_is_not_failed_over_from() {
        let (p, s) = regions();
        let mut state = HealthState::initial(&p, &s);
        for i in 0..5 {
            let (next, decision, verdict) = decide(&state, &p, &s, &results(false, true), T, alone(T), false, i);
            assert_eq!(decision, Decision::Stay, "{verdict:?}");
            assert!(
                matches!(verdict, QuorumVerdict::NeverSeenHealthy(_) | QuorumVerdict::Up(_)),
                "{verdict:?}"
            );
            state = next;
        }
    }

    #[test]
    fn a_partition_seen_by_the_witness_does_not_fail_over() {
        let (p, s) = regions();
        let mut witness = Observation::default();
        witness.record(&p, CheckOutcome::Healthy, 10);
        let evidence = Evidence {
            witness: Some(&witness),
            rule: QuorumRule {
                witness_required: true,
                ..alone(T).rule
            },
        };
        let mut state = seen_healthy();
        let mut last = None;
        for i in 0..5 {
            let (next, decision, verdict) = decide(&state, &p, &s, &results(false, true), T, evidence, false, i);
            assert_eq!(decision, Decision::Stay);
            state = next;
            last = Some(verdict);
        }
        assert!(matches!(last, Some(QuorumVerdict::Partition(_))), "{last:?}");
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

    #[test]
    fn a_failing_failover_region_does_not_send_the_shop_home_before_m_healthy_checks() {
        // Failed over; then the primary recovers for 2 checks while the secondary fails 3.
        let mut steps = vec![(false, true, false); 3];
        steps.extend(vec![(true, false, false); 3]);
        let (state, decisions) = run(&steps, T);
        assert_eq!(decisions[3..5], [Decision::Stay, Decision::Stay]);
        assert_eq!(
            decisions[5],
            Decision::NoUsableRegion {
                awaiting_approval: false
            }
        );
        assert_eq!(state.active_region.as_str(), "us-west-2");
    }

    #[test]
    fn a_failing_failover_region_does_not_send_the_shop_home_without_approval() {
        let mut steps = vec![(false, true, false); 3];
        steps.extend(vec![(true, true, false); 10]);
        steps.extend(vec![(true, false, false); 3]);
        let (state, decisions) = run(&steps, T);
        assert_eq!(decisions[12], Decision::FailbackAwaitingApproval);
        assert_eq!(
            decisions[13..15],
            [Decision::FailbackAwaitingApproval, Decision::FailbackAwaitingApproval]
        );
        assert_eq!(
            decisions[15],
            Decision::NoUsableRegion {
                awaiting_approval: true
            }
        );
        assert_eq!(state.active_region.as_str(), "us-west-2");

        steps.push((true, false, true));
        let (state, decisions) = run(&steps, T);
        assert!(
            matches!(decisions.last(), Some(Decision::Switch(s)) if s.kind == SwitchKind::Failback && s.reason.contains("us-west-2 failed 4"))
        );
        assert_eq!(state.active_region.as_str(), "us-east-1");
    }

    #[test]
    fn a_failing_failover_region_goes_home_automatically_only_with_auto_failback() {
        let mut steps = vec![(false, true, false); 3];
        steps.extend(vec![(true, false, false); 10]);
        let auto = Thresholds {
            auto_failback: true,
            ..T
        };
        let (state, decisions) = run(&steps, auto);
        assert!(decisions[3..12]
            .iter()
            .all(|d| matches!(d, Decision::Stay | Decision::NoUsableRegion { .. })));
        assert!(matches!(decisions.last(), Some(Decision::Switch(s)) if s.kind == SwitchKind::Failback));
        assert_eq!(state.active_region.as_str(), "us-east-1");
    }

    /// Check results in runs of equal values, so long healthy and failing streaks occur.
    fn streaks() -> impl Strategy<Value = Vec<(bool, bool, bool)>> {
        prop::collection::vec(
            ((any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)), 1usize..15),
            1..40,
        )
        .prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(step, len)| std::iter::repeat_n(step, len))
                .collect()
        })
    }

    proptest! {
        /// For any sequence of check results and approvals, the active region changes exactly
        /// when the rules say so.
        /// Safety: never to a region unhealthy in that run; to the secondary only after N
        /// consecutive failures of the primary; to the primary, for whatever reason, only
        /// after M consecutive healthy checks of it and the approval when required.
        /// Liveness: the primary failed N times in a row while the secondary is healthy →
        /// failover; the secondary is active and failback is allowed → failback; the
        /// secondary failed N times in a row while going home is not allowed → critical.
        #[test]
        fn the_state_machine_switches_exactly_when_the_rules_say(
            steps in prop_oneof![
                prop::collection::vec((any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)), 1..200),
                streaks(),
            ],
            auto_failback in any::<bool>(),
            failover_after in 1u32..5,
            failback_after in 1u32..12,
        ) {
            let thresholds = Thresholds { failover_after, failback_after, auto_failback };
            let (p, s) = regions();
            let mut state = seen_healthy();
            let mut history: Vec<(bool, bool)> = Vec::new();
            for (i, (a, b, approved)) in steps.iter().enumerate() {
                let (a, b, approved) = (*a, *b, *approved);
                history.push((a, b));
                let in_a_row = |f: &dyn Fn(&(bool, bool)) -> bool| history.iter().rev().take_while(|x| f(x)).count() as u32;
                let primary_failed = in_a_row(&|(a, _)| !*a);
                let secondary_failed = in_a_row(&|(_, b)| !*b);
                let primary_healthy = in_a_row(&|(a, _)| *a);
                let failback_allowed = a && primary_healthy >= failback_after && (auto_failback || approved);
                let must_fail_over = state.active_region == p && b && primary_failed >= failover_after;
                let must_fail_back = state.active_region == s && failback_allowed;

                let before = state.active_region.clone();
                let (next, decision, _) = decide(&state, &p, &s, &results(a, b), thresholds, alone(thresholds), approved, i as i64);
                match &decision {
                    Decision::Switch(switch) => {
                        prop_assert_eq!(&switch.from, &before);
                        prop_assert_eq!(&next.active_region, &switch.to);
                        prop_assert_eq!(next.last_switch.as_ref(), Some(switch));
                        prop_assert!(!next.published);
                        if switch.to == p {
                            prop_assert_eq!(&before, &s);
                            prop_assert_eq!(switch.kind, SwitchKind::Failback);
                            prop_assert!(a, "switched home to an unhealthy primary");
                            prop_assert!(primary_healthy >= failback_after, "home after {} healthy checks", primary_healthy);
                            prop_assert!(auto_failback || approved, "home without approval");
                        } else {
                            prop_assert_eq!(&switch.to, &s);
                            prop_assert_eq!(&before, &p);
                            prop_assert_eq!(switch.kind, SwitchKind::Failover);
                            prop_assert!(b, "failed over to an unhealthy secondary");
                            prop_assert!(primary_failed >= failover_after, "failover after {} failures", primary_failed);
                        }
                    }
                    _ => prop_assert_eq!(&next.active_region, &before),
                }
                let switched_to = match &decision {
                    Decision::Switch(switch) => Some(&switch.to),
                    _ => None,
                };
                if must_fail_over {
                    prop_assert_eq!(switched_to, Some(&s), "no failover: {:?}", decision);
                } else if must_fail_back {
                    prop_assert_eq!(switched_to, Some(&p), "no failback: {:?}", decision);
                } else {
                    prop_assert_eq!(switched_to, None);
                }
                if !a && !b {
                    prop_assert_eq!(&decision, &Decision::BothUnhealthy);
                } else if before == s && !b && secondary_failed >= failover_after && !failback_allowed {
                    let critical = matches!(decision, Decision::NoUsableRegion { .. });
                    prop_assert!(critical, "the failover region failed {} times: {:?}", secondary_failed, decision);
                }
                state = next;
            }
        }
    }
}
