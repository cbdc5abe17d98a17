//! Retry with exponential backoff and full jitter, and polling with growing pauses, both
//! bounded by a deadline (normally the Lambda invocation's, see [`Deadline::for_invocation`]).
//!
//! The delay before attempt *n* is drawn uniformly from `[0, min(cap, base * 2^n)]`
//! ("full jitter", which spreads retries of many concurrent callers best). A retry is
//! only started if its delay ends before the deadline, which is normally the Lambda
//! invocation's remaining time minus a safety margin.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::error::ErrorClass;

/// The moment by which work must be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// The invocation's deadline less [`INVOCATION_MARGIN`]: what every function's handler
    /// works against.
    pub fn for_invocation(context: &lambda_runtime::Context) -> Self {
        Self::from_lambda(context.deadline(), INVOCATION_MARGIN)
    }

    /// The Lambda invocation's deadline (from `Context::deadline`), less `margin` kept
    /// for reporting and cleanup.
    pub fn from_lambda(deadline: SystemTime, margin: Duration) -> Self {
        let deadline = normalize_lambda_deadline(deadline);
        let remaining = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        tracing::debug!(?remaining, ?margin, "invocation deadline");
        Self::after(remaining.saturating_sub(margin))
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// True once the deadline has passed.
    pub fn is_past(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The tokio instant, for `sleep_until` and timeouts.
    pub fn instant(&self) -> Instant {
        self.0
    }
}

/// Time every function keeps back from its invocation deadline to release what it holds
/// (locks, leases) and to report.
pub const INVOCATION_MARGIN: Duration = Duration::from_secs(5);

/// Any real deadline is after this instant (2001-09-09); anything earlier is not an epoch time.
const EARLIEST_EPOCH_DEADLINE: Duration = Duration::from_secs(1_000_000_000);

/// The invocation deadline as an absolute time. AWS sends epoch milliseconds; local
/// runtimes such as `cargo lambda watch` send the timeout itself (e.g. 900000), which
/// would otherwise read as a deadline in 1970 and leave no time at all: such a value is
/// taken as a budget from now.
pub fn normalize_lambda_deadline(deadline: SystemTime) -> SystemTime {
    match deadline.duration_since(UNIX_EPOCH) {
        Ok(since_epoch) if since_epoch < EARLIEST_EPOCH_DEADLINE => SystemTime::now() + since_epoch,
        _ => deadline,
    }
}

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub base: Duration,
    /// Upper bound of any delay.
    pub cap: Duration,
    /// Total attempts including the first; at least 1.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// Upper bound of the delay after `failed_attempts` failures (1 = after the first).
    pub fn ceiling(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }

    /// Full-jitter delay: `unit` is a uniform sample from `[0, 1)`.
    pub fn delay(&self, failed_attempts: u32, unit: f64) -> Duration {
        self.ceiling(failed_attempts).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Whether another attempt may start after `failed_attempts` failures, given the delay
    /// chosen and the time left.
    pub fn may_retry(&self, failed_attempts: u32, delay: Duration, remaining: Duration) -> bool {
        failed_attempts < self.max_attempts.max(1) && delay < remaining
    }
}

/// Why [`retry`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError<E> {
    /// The error is permanent; retrying cannot help.
    #[error("{0}")]
    Permanent(E),
    /// The attempts or the time ran out while the error was still transient.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last transient error.
        last: E,
    },
}

impl<E> RetryError<E> {
    /// The underlying error, whatever the reason for giving up.
    pub fn into_inner(self) -> E {
        match self {
            Self::Permanent(e) | Self::Exhausted { last: e, .. } => e,
        }
    }
}

/// Runs `operation` until it succeeds, fails permanently (per `classify`), runs out of
/// attempts, or the next delay would end past `deadline`.
pub async fn retry<T, E, F, Fut>(
    backoff: Backoff,
    deadline: Deadline,
    classify: impl Fn(&E) -> ErrorClass,
    mut operation: F,
) -> Result<T, RetryError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failed = 0u32;
    loop {
        let err = match operation(failed + 1).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        failed += 1;
        if classify(&err) == ErrorClass::NonRetryable {
            return Err(RetryError::Permanent(err));
        }
        let delay = backoff.delay(failed, fastrand::f64());
        if !backoff.may_retry(failed, delay, deadline.remaining()) {
            return Err(RetryError::Exhausted {
                attempts: failed,
                last: err,
            });
        }
        tracing::debug!(
            attempt = failed,
            delay_ms = delay.as_millis() as u64,
            "transient failure, retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Paces a polling loop: pauses grow from `initial` to `max` with equal jitter (never a
/// tight loop, never every poller at the same instant), and polling stops before a pause
/// would end past the deadline. Used for "until the replica is writable" and "until every
/// command finished".
#[derive(Debug)]
pub struct Poller {
    backoff: Backoff,
    deadline: Deadline,
    started: Instant,
    polls: u32,
}

impl Poller {
    /// Starts pacing now.
    pub fn new(initial: Duration, max: Duration, deadline: Deadline) -> Self {
        Self {
            backoff: Backoff {
                base: initial,
                cap: max.max(initial),
                max_attempts: u32::MAX,
            },
            deadline,
            started: Instant::now(),
            polls: 0,
        }
    }

    /// Counts a poll just made and sleeps before the next one; `false` (without sleeping)
    /// when the pause would end past the deadline, i.e. polling must stop.
    pub async fn pause_before_next(&mut self) -> bool {
        self.polls = self.polls.saturating_add(1);
        let delay = self.backoff.ceiling(self.polls).mul_f64(0.5 + 0.5 * fastrand::f64());
        if delay >= self.deadline.remaining() {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Polls counted so far.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// Time since polling started.
    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            max_attempts: 5,
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = backoff();
        let ceilings: Vec<u128> = (1..=7).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let b = backoff();
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(3, 7.0), Duration::from_millis(400));
    }

    #[test]
    fn retry_stops_at_attempt_limit_and_deadline() {
        let b = backoff();
        assert!(b.may_retry(4, Duration::from_millis(10), Duration::from_secs(1)));
        assert!(!b.may_retry(5, Duration::from_millis(10), Duration::from_secs(1)));
        assert!(!b.may_retry(1, Duration::from_millis(10), Duration::from_millis(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let calls = Cell::new(0);
        let result = retry(
            backoff(),
            Deadline::after(Duration::from_secs(60)),
            |_: &&str| ErrorClass::Retryable,
            |attempt| {
                calls.set(calls.get() + 1);
                async move {
                    if attempt < 3 {
                        Err("throttled")
                    } else {
                        Ok(attempt)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_stop_at_once() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(
            backoff(),
            Deadline::after(Duration::from_secs(60)),
            |_: &&str| ErrorClass::NonRetryable,
            |_| {
                calls.set(calls.get() + 1);
                async { Err("not found") }
            },
        )
        .await;
        assert_eq!(result, Err(RetryError::Permanent("not found")));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let result: Result<(), _> = retry(
            backoff(),
            Deadline::after(Duration::from_secs(600)),
            |_: &&str| ErrorClass::Retryable,
            |_| async { Err("busy") },
        )
        .await;
        assert_eq!(
            result,
            Err(RetryError::Exhausted {
                attempts: 5,
                last: "busy"
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_deadline_allows_exactly_one_attempt() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(
            backoff(),
            Deadline::after(Duration::ZERO),
            |_: &&str| ErrorClass::Retryable,
            |_| {
                calls.set(calls.get() + 1);
                async { Err("busy") }
            },
        )
        .await;
        assert_eq!(result.unwrap_err().into_inner(), "busy");
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_relative_local_deadline_is_read_as_a_budget() {
        let local = Deadline::from_lambda(UNIX_EPOCH + Duration::from_secs(30), Duration::from_secs(5));
        let left = local.remaining();
        assert!(
            left <= Duration::from_secs(25) && left > Duration::from_secs(24),
            "{left:?}"
        );
        let real = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(normalize_lambda_deadline(real), real);
    }

    #[test]
    fn lambda_deadline_subtracts_margin_and_never_underflows() {
        let past = Deadline::from_lambda(SystemTime::now() - Duration::from_secs(5), Duration::from_secs(1));
        assert!(past.is_past());
        let future = Deadline::from_lambda(SystemTime::now() + Duration::from_secs(30), Duration::from_secs(10));
        let left = future.remaining();
        assert!(
            left <= Duration::from_secs(20) && left > Duration::from_secs(19),
            "{left:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_poller_grows_its_pauses_and_stops_before_the_deadline() {
        let mut poller = Poller::new(
            Duration::from_secs(1),
            Duration::from_secs(4),
            Deadline::after(Duration::from_secs(20)),
        );
        let mut pauses = Vec::new();
        let mut last = Instant::now();
        while poller.pause_before_next().await {
            pauses.push(last.elapsed());
            last = Instant::now();
            assert!(pauses.len() < 100, "the poller never stopped");
        }
        // Equal jitter: each pause lies in [ceiling/2, ceiling], ceilings 1, 2, 4, 4, ... s.
        for (i, pause) in pauses.iter().enumerate() {
            let ceiling = Duration::from_secs(1 << i.min(2));
            assert!(*pause >= ceiling / 2 && *pause <= ceiling, "pause {i}: {pause:?}");
        }
        assert!(poller.waited() <= Duration::from_secs(20), "{:?}", poller.waited());
        assert!(
            poller.waited() >= Duration::from_secs(16),
            "stopped early: {:?}",
            poller.waited()
        );
        assert_eq!(poller.polls() as usize, pauses.len() + 1);
    }
}
