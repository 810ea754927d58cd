//! When and how long to wait before repeating a request: exponential backoff with full
//! jitter, `Retry-After` honoured, everything clamped to the call's deadline.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Attempts per call when none is configured (1 first try + 2 retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Backoff ceiling before the first retry when none is configured.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Largest wait between two attempts when none is configured.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most attempts a configuration may ask for.
pub const MAX_ATTEMPTS_LIMIT: u32 = 10;

/// How transient failures are retried.
///
/// Only requests that are safe to repeat are retried: the shadow read (GET) and the POSTs
/// that carry a `clientToken` (shadow report and the four jobs calls; the client generates a
/// token when the caller gave none). Events and command responses are never repeated.
/// Retried failures: connection failures, timeouts before any byte of the response, and HTTP
/// 429, 502, 503 and 504. Never other 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// A policy; `max_attempts` 0 and zero durations keep the defaults, 1 disables retries.
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
    ) -> Result<Self> {
        let policy = RetryPolicy {
            max_attempts: if max_attempts == 0 {
                DEFAULT_MAX_ATTEMPTS
            } else {
                max_attempts
            },
            initial_backoff: if initial_backoff.is_zero() {
                DEFAULT_INITIAL_BACKOFF
            } else {
                initial_backoff
            },
            max_backoff: if max_backoff.is_zero() {
                DEFAULT_MAX_BACKOFF
            } else {
                max_backoff
            },
        };
        if policy.max_attempts > MAX_ATTEMPTS_LIMIT {
            return Err(Error::invalid_config(format!(
                "max_attempts must be at most {MAX_ATTEMPTS_LIMIT}"
            )));
        }
        if policy.initial_backoff > policy.max_backoff {
            return Err(Error::invalid_config(
                "initial backoff must not exceed the maximum backoff",
            ));
        }
        Ok(policy)
    }

    /// Attempts per call, including the first.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether any retry can happen.
    pub fn enabled(&self) -> bool {
        self.max_attempts > 1
    }

    /// The wait before attempt `attempt + 1` (attempts count from 1): the server's
    /// `Retry-After` when it sent one, else full jitter over the exponential ceiling; never
    /// more than the maximum backoff.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_backoff);
        }
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random_u64() % nanos.saturating_add(1))
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (a date in the past is 0).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A pseudo-random number for jitter and generated client tokens: SipHash with the
/// process's random keys over a counter. Not for secrets.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A client token for a request the caller sent without one, so that it may be retried.
pub fn generated_client_token() -> String {
    format!("fleets-{:016x}", random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_an_exponential_ceiling() {
        let p =
            RetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(350)).unwrap();
        for _ in 0..200 {
            assert!(p.delay(1, None) <= Duration::from_millis(100));
            assert!(p.delay(2, None) <= Duration::from_millis(200));
            assert!(p.delay(3, None) <= Duration::from_millis(350));
            assert!(p.delay(30, None) <= Duration::from_millis(350));
        }
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| p.delay(3, None)).collect();
        assert!(distinct.len() > 10, "jitter varies");
    }

    #[test]
    fn retry_after_wins_but_is_clamped() {
        let p = RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(2)).unwrap();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(parsed > Duration::from_secs(27) && parsed <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn policy_limits() {
        assert!(RetryPolicy::new(11, Duration::ZERO, Duration::ZERO).is_err());
        assert!(RetryPolicy::new(2, Duration::from_secs(3), Duration::from_secs(1)).is_err());
        let p = RetryPolicy::new(1, Duration::ZERO, Duration::ZERO).unwrap();
        assert!(!p.enabled());
        assert_eq!(
            RetryPolicy::new(0, Duration::ZERO, Duration::ZERO).unwrap(),
            RetryPolicy::default()
        );
    }

    #[test]
    fn generated_tokens_are_valid_and_distinct() {
        let a = generated_client_token();
        let b = generated_client_token();
        assert_ne!(a, b);
        assert!(crate::validate::client_token(Some(&a)).is_ok());
    }
}
