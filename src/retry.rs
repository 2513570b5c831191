//! Owns the one retry policy of the provider: bounded exponential backoff with jitter, and the
//! loop that applies it. The metadata client and IAM's eventual-consistency retries run
//! [`retry`]; the STS exchange hands the same numbers to the AWS SDK's standard retry mode
//! (`max_attempts`, `initial_backoff`, `max_backoff`), so `max_retries` means the same thing
//! everywhere.
//!
//! The jitter is "equal jitter": half of each exponential step is fixed and half random, so a
//! retry never fires at once (as "full jitter" allows) yet callers that failed together spread
//! out. The random half comes from `fastrand`, the generator the AWS SDK already uses for its
//! own jitter: one small dependency-free crate, no second generator in the binary for this.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the provider's `max_retries`); attempts in all are one
    /// more.
    pub max_retries: u32,
    /// The step before the first retry, before jitter.
    pub base: Duration,
    /// Upper bound of any single step.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The step before the first retry for the provider's clients.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(200);
    /// No single wait longer than this: a provider run should fail in seconds, not minutes.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(5);

    /// `max_retries` retries with the default steps.
    pub const fn new(max_retries: u32) -> Self {
        RetryPolicy {
            max_retries,
            base: Self::DEFAULT_BASE,
            cap: Self::DEFAULT_CAP,
        }
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// The exponential step before retry number `retry` (0 = the first retry), capped.
    pub fn step(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.cap)
    }

    /// The wait before retry number `retry`: in `[step / 2, step]`.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, fastrand::f64())
    }

    /// [`Self::delay`] with the random draw given: `unit` in `[0, 1]` picks where in
    /// `[step / 2, step]` the wait falls (tests pass it; production draws it).
    pub fn delay_with(&self, retry: u32, unit: f64) -> Duration {
        let half = self.step(retry) / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Runs `op` until it succeeds, fails with an error `is_transient` rejects, or the policy's
/// attempts run out; then returns the last result. `op` gets the attempt number (1 = the first
/// try) so that its errors can say how many attempts were made.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    is_transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt: u32 = 1;
    loop {
        match op(attempt).await {
            Err(e) if attempt < policy.max_attempts() && is_transient(&e) => {
                let delay = policy.delay(attempt - 1);
                tracing::debug!(
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    error = %e,
                    "transient failure, retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A policy for unit tests of the callers: the same bounds, waits of a few milliseconds.
    pub(crate) fn fast(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base: Duration::from_millis(2),
            cap: Duration::from_millis(10),
        }
    }

    #[test]
    fn steps_double_from_the_base_and_stop_at_the_cap() {
        let p = RetryPolicy::new(5);
        let steps: Vec<u128> = (0..7).map(|r| p.step(r).as_millis()).collect();
        assert_eq!(steps, [200, 400, 800, 1600, 3200, 5000, 5000]);
        // Far past the cap the arithmetic neither overflows nor shrinks.
        assert_eq!(p.step(u32::MAX), RetryPolicy::DEFAULT_CAP);
    }

    #[test]
    fn the_random_draw_spans_half_a_step_to_a_step() {
        let p = RetryPolicy::new(5);
        for retry in 0..8 {
            let step = p.step(retry);
            assert_eq!(p.delay_with(retry, 0.0), step / 2, "retry {retry}");
            assert_eq!(p.delay_with(retry, 1.0), step, "retry {retry}");
            assert_eq!(
                p.delay_with(retry, 0.5),
                step / 2 + step / 4,
                "retry {retry}"
            );
            // Out-of-range draws are clamped, never outside the bounds.
            assert_eq!(p.delay_with(retry, -3.0), step / 2);
            assert_eq!(p.delay_with(retry, 7.0), step);
        }
    }

    #[test]
    fn drawn_delays_stay_within_their_bounds_and_vary() {
        let p = RetryPolicy::new(5);
        for retry in 0..8 {
            let step = p.step(retry);
            for _ in 0..50 {
                let d = p.delay(retry);
                assert!(d >= step / 2 && d <= step, "retry {retry}: {d:?}");
            }
        }
        let distinct: std::collections::BTreeSet<_> = (0..50).map(|_| p.delay(4)).collect();
        assert!(distinct.len() > 1, "no jitter");
    }

    #[test]
    fn attempts_are_retries_plus_one() {
        assert_eq!(RetryPolicy::new(0).max_attempts(), 1);
        assert_eq!(RetryPolicy::new(5).max_attempts(), 6);
        assert_eq!(RetryPolicy::new(u32::MAX).max_attempts(), u32::MAX);
    }

    /// Runs `retry` over scripted results and returns its result and the attempt numbers seen.
    async fn scripted(
        policy: RetryPolicy,
        script: Vec<Result<&'static str, &'static str>>,
    ) -> (Result<&'static str, &'static str>, Vec<u32>) {
        let seen = RefCell::new(Vec::new());
        let result = retry(
            policy,
            |e: &&str| e.starts_with("transient"),
            |attempt| {
                seen.borrow_mut().push(attempt);
                let next = script[(attempt as usize - 1).min(script.len() - 1)];
                async move { next }
            },
        )
        .await;
        (result, seen.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let (r, attempts) = scripted(
            RetryPolicy::new(5),
            vec![Err("transient 1"), Err("transient 2"), Ok("done")],
        )
        .await;
        assert_eq!(r, Ok("done"));
        assert_eq!(attempts, [1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_the_attempts_and_the_last_error_is_returned() {
        let (r, attempts) = scripted(RetryPolicy::new(2), vec![Err("transient")]).await;
        assert_eq!(r, Err("transient"));
        assert_eq!(attempts, [1, 2, 3]);

        let (r, attempts) = scripted(RetryPolicy::new(0), vec![Err("transient")]).await;
        assert_eq!(r, Err("transient"));
        assert_eq!(attempts, [1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_error_is_never_retried() {
        let (r, attempts) = scripted(
            RetryPolicy::new(5),
            vec![Err("transient"), Err("denied"), Ok("unreached")],
        )
        .await;
        assert_eq!(r, Err("denied"));
        assert_eq!(attempts, [1, 2]);
    }

    /// On tokio's paused clock (advanced only by the sleeps themselves) the waits add up to
    /// between half and all of the steps: the loop sleeps the policy's delays, no more, no less.
    #[tokio::test(start_paused = true)]
    async fn the_loop_waits_the_policy_delays_between_attempts() {
        let policy = RetryPolicy::new(4);
        let start = tokio::time::Instant::now();
        let (r, attempts) = scripted(policy, vec![Err("transient")]).await;
        let waited = start.elapsed();
        assert_eq!(r, Err("transient"));
        assert_eq!(attempts.len(), 5);
        let steps: Duration = (0..4).map(|retry| policy.step(retry)).sum();
        assert!(
            waited >= steps / 2 && waited <= steps + Duration::from_millis(4),
            "{waited:?} for steps of {steps:?}"
        );
    }
}
