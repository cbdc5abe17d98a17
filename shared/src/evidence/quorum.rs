//! The quorum rule: the primary region is down only when the secondary region's observer
//! and the witness (a third region's observer) both saw it down in N consecutive checks,
//! the secondary itself is healthy, and the primary was seen healthy at some time before.
//! One observer alone cannot tell a dead region from a cut link between two regions.

use serde::Serialize;

use super::outcome::CheckOutcome;
use super::tally::Observation;
use crate::region::Region;

/// The rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumRule {
    /// N: consecutive `Down` checks each observer must have seen.
    pub failures: u32,
    /// An observation older than this is no evidence (its observer stopped reporting).
    pub max_age_ms: i64,
    /// Whether a witness must confirm (false only where none is deployed: one vantage point).
    pub witness_required: bool,
}

/// What the evidence says, with the reason in words for the report and the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "kebab-case")]
pub enum QuorumVerdict {
    /// Fail over: both observers saw the primary down N times in a row.
    PrimaryDown(String),
    /// No outage: the primary answers (or has not failed N times in a row).
    Up(String),
    /// The secondary cannot reach the primary but the witness can: a partition between
    /// the two, not an outage. Paged; never a failover.
    Partition(String),
    /// The secondary saw the primary down N times, but the witness has not confirmed it
    /// yet (fewer than N of its checks, or it answered misconfigured).
    Unconfirmed(String),
    /// The secondary saw the primary down N times and no fresh witness observation exists.
    WitnessUnavailable(String),
    /// The secondary region itself is not healthy: there is nowhere safe to go.
    SecondaryUnhealthy(String),
    /// No observer ever saw the primary healthy (a fresh deployment, an alarm created
    /// during an outage, a heartbeat table never written): not evidence of a failure.
    NeverSeenHealthy(String),
    /// The secondary's own observation is missing or stale: the monitor is not running.
    NoEvidence(String),
}

impl QuorumVerdict {
    /// Whether the rule says fail over.
    pub fn is_primary_down(&self) -> bool {
        matches!(self, Self::PrimaryDown(_))
    }

    /// The reason in words.
    pub fn reason(&self) -> &str {
        match self {
            Self::PrimaryDown(r)
            | Self::Up(r)
            | Self::Partition(r)
            | Self::Unconfirmed(r)
            | Self::WitnessUnavailable(r)
            | Self::SecondaryUnhealthy(r)
            | Self::NeverSeenHealthy(r)
            | Self::NoEvidence(r) => r,
        }
    }
}

fn fresh(observation: &Observation, rule: &QuorumRule, now_ms: i64) -> bool {
    observation
        .checked_at_ms
        .is_some_and(|at| now_ms - at <= rule.max_age_ms)
}

/// Applies the rule to the secondary region's observation and the witness's (if any).
pub fn quorum(
    primary: &Region,
    secondary: &Region,
    secondary_view: &Observation,
    witness_view: Option<&Observation>,
    rule: QuorumRule,
    now_ms: i64,
) -> QuorumVerdict {
    let n = rule.failures.max(1);
    if !fresh(secondary_view, &rule, now_ms) {
        return QuorumVerdict::NoEvidence(format!(
            "the observer in {secondary} has no check of {primary} in the last {} s",
            rule.max_age_ms / 1000
        ));
    }
    let seen = secondary_view.tally(primary);
    if seen.consecutive_failures < n {
        return QuorumVerdict::Up(format!(
            "{primary} failed {} consecutive checks from {secondary} (threshold {n})",
            seen.consecutive_failures
        ));
    }
    let witness = witness_view.filter(|w| fresh(w, &rule, now_ms));
    let ever_healthy = seen.last_healthy_at_ms.is_some()
        || witness_view.is_some_and(|w| w.tally(primary).last_healthy_at_ms.is_some());
    if !ever_healthy {
        return QuorumVerdict::NeverSeenHealthy(format!(
            "{primary} was never seen healthy by any observer: a first evaluation is not an outage"
        ));
    }
    let own = secondary_view.tally(secondary);
    if own.last != Some(CheckOutcome::Healthy) {
        return QuorumVerdict::SecondaryUnhealthy(format!(
            "{secondary} itself is not healthy (last check {:?}): no safe region to fail over to",
            own.last
        ));
    }
    let down_from_secondary = format!(
        "{primary} failed {} consecutive checks from {secondary}",
        seen.consecutive_failures
    );
    if !rule.witness_required {
        return QuorumVerdict::PrimaryDown(format!("{down_from_secondary} (threshold {n}; no witness deployed)"));
    }
    let Some(witness) = witness else {
        return QuorumVerdict::WitnessUnavailable(format!(
            "{down_from_secondary}, but the witness has no check in the last {} s: not failing over on one vantage point",
            rule.max_age_ms / 1000
        ));
    };
    let confirmed = witness.tally(primary);
    match confirmed.last {
        Some(CheckOutcome::Healthy) => QuorumVerdict::Partition(format!(
            "{down_from_secondary}, but the witness reaches it: a partition between {primary} and {secondary}, not an outage"
        )),
        _ if confirmed.consecutive_failures >= n => QuorumVerdict::PrimaryDown(format!(
            "{down_from_secondary} and {} from the witness (threshold {n}); {secondary} is healthy",
            confirmed.consecutive_failures
        )),
        last => QuorumVerdict::Unconfirmed(format!(
            "{down_from_secondary}; the witness saw {} consecutive failures (last check {last:?}), fewer than {n}",
            confirmed.consecutive_failures
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const N: u32 = 3;
    const INTERVAL_MS: i64 = 10_000;

    fn regions() -> (Region, Region) {
        (Region::new("us-east-1").unwrap(), Region::new("us-west-2").unwrap())
    }

    fn rule() -> QuorumRule {
        QuorumRule {
            failures: N,
            max_age_ms: 3 * INTERVAL_MS,
            witness_required: true,
        }
    }

    /// One check round: what the secondary saw of the primary, what the witness saw of
    /// the primary, what the secondary saw of itself.
    type Round = (CheckOutcome, CheckOutcome, CheckOutcome);

    fn outcome() -> impl Strategy<Value = CheckOutcome> {
        prop_oneof![
            4 => Just(CheckOutcome::Down),
            3 => Just(CheckOutcome::Healthy),
            1 => Just(CheckOutcome::Misconfigured),
        ]
    }

    /// Plays the rounds (the first always healthy everywhere, so the primary was seen
    /// healthy once) and returns each round's verdict.
    fn play(rounds: &[Round]) -> Vec<QuorumVerdict> {
        let (p, s) = regions();
        let (mut secondary, mut witness) = (Observation::default(), Observation::default());
        let mut verdicts = Vec::new();
        for (i, (s_p, w_p, s_s)) in rounds.iter().enumerate() {
            let at = i as i64 * INTERVAL_MS;
            secondary.record(&p, *s_p, at);
            secondary.record(&s, *s_s, at);
            witness.record(&p, *w_p, at);
            verdicts.push(quorum(&p, &s, &secondary, Some(&witness), rule(), at));
        }
        verdicts
    }

    fn healthy_first(rounds: Vec<Round>) -> Vec<Round> {
        let all_up = (CheckOutcome::Healthy, CheckOutcome::Healthy, CheckOutcome::Healthy);
        std::iter::once(all_up).chain(rounds).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Safety and dampening: a failover verdict only after N consecutive `Down`
        /// checks from both observers with the secondary healthy; never while the witness
        /// reaches the primary (a partition), never from fewer than N (a primary that
        /// answers once in every N checks never fails over: no flapping).
        #[test]
        fn fails_over_only_on_n_consecutive_failures_seen_from_both(rounds in prop::collection::vec((outcome(), outcome(), outcome()), 1..40)) {
            let rounds = healthy_first(rounds);
            for (i, verdict) in play(&rounds).iter().enumerate() {
                if !verdict.is_primary_down() {
                    continue;
                }
                let window = &rounds[(i + 1).saturating_sub(N as usize)..=i];
                prop_assert!(window.len() == N as usize, "round {}: {:?}", i, verdict);
                prop_assert!(window.iter().all(|(s_p, w_p, _)| *s_p == CheckOutcome::Down && *w_p == CheckOutcome::Down), "round {}: {:?}", i, window);
                prop_assert_eq!(rounds[i].2, CheckOutcome::Healthy);
            }
        }

        /// Liveness: whenever the rule requires it, it fails over.
        #[test]
        fn always_fails_over_when_both_saw_n_failures_and_the_secondary_is_healthy(rounds in prop::collection::vec((outcome(), outcome(), outcome()), 0..40)) {
            let rounds = healthy_first(rounds);
            for (i, verdict) in play(&rounds).iter().enumerate() {
                let window = &rounds[(i + 1).saturating_sub(N as usize)..=i];
                let required = window.len() == N as usize
                    && window.iter().all(|(s_p, w_p, _)| *s_p == CheckOutcome::Down && *w_p == CheckOutcome::Down)
                    && rounds[i].2 == CheckOutcome::Healthy;
                prop_assert_eq!(verdict.is_primary_down(), required, "round {}: {:?}", i, verdict);
            }
        }

        /// A partition (the secondary cut off, the witness still reaching the primary)
        /// never fails over, however long it lasts.
        #[test]
        fn a_partition_never_fails_over(length in 1usize..60, witness_blips in prop::collection::vec(any::<bool>(), 60)) {
            let rounds: Vec<Round> = (0..length)
                .map(|i| (CheckOutcome::Down, if witness_blips[i] && i % N as usize != 0 { CheckOutcome::Down } else { CheckOutcome::Healthy }, CheckOutcome::Healthy))
                .collect();
            let verdicts = play(&healthy_first(rounds));
            prop_assert!(verdicts.iter().all(|v| !v.is_primary_down()), "{:?}", verdicts);
        }
    }

    #[test]
    fn each_reason_not_to_fail_over_is_named() {
        let (p, s) = regions();
        let mut secondary = Observation::default();
        secondary.record(&p, CheckOutcome::Healthy, 0);
        for at in 1..=3 {
            secondary.record(&p, CheckOutcome::Down, at);
            secondary.record(&s, CheckOutcome::Healthy, at);
        }
        let verdict =
            |witness: Option<&Observation>, rule: QuorumRule, now: i64| quorum(&p, &s, &secondary, witness, rule, now);
        assert!(matches!(verdict(None, rule(), 3), QuorumVerdict::WitnessUnavailable(_)));
        let single = QuorumRule {
            witness_required: false,
            ..rule()
        };
        assert!(verdict(None, single, 3).is_primary_down());
        assert!(matches!(
            verdict(None, rule(), 3 + 4 * INTERVAL_MS),
            QuorumVerdict::NoEvidence(_)
        ));
        let mut stale = Observation::default();
        stale.record(&p, CheckOutcome::Down, -10 * INTERVAL_MS);
        assert!(matches!(
            verdict(Some(&stale), rule(), 3),
            QuorumVerdict::WitnessUnavailable(_)
        ));

        let mut fresh_deploy = Observation::default();
        for at in 1..=3 {
            fresh_deploy.record(&p, CheckOutcome::Down, at);
            fresh_deploy.record(&s, CheckOutcome::Healthy, at);
        }
        assert!(matches!(
            quorum(&p, &s, &fresh_deploy, Some(&fresh_deploy), rule(), 3),
            QuorumVerdict::NeverSeenHealthy(_)
        ));
    }
}
