//! What a cache does for a failing backend, as arithmetic: how long one key's failure stays
//! cached (backoff with jitter, or the error's own hint), when a value is due for a
//! refresh-ahead, and the answer that tells a fresh value from a stale one.
//!
//! The state machines that act on these live elsewhere: the store keeps each key's failure
//! count and deadline (`store.rs`), the flight engine runs refreshes and turns a failed
//! recompute into a stale answer (`engine.rs`).
//!
//! # One key through every setting
//!
//! ```text
//!  stored     refresh point           TTL                 TTL + stale_if_error
//!    |  fresh       |  fresh, refreshing |  stale: answered   |  the cached error
//!    |              |  in the background |  while the retry   |  is answered
//!    +--------------+--------------------+--------------------+------------------->
//!                   ^ refresh fails: the value stays, the failure is cached with backoff
//! ```

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use crate::CacheError;
use crate::clock::nanos;

/// What the miss path answers: a value and how fresh it is, or the error.
pub(crate) type Answer<V, E> = Result<Served<V, E>, CacheError<E>>;

/// How an error type says how long to wait before asking again (an HTTP `Retry-After`, a
/// rate limiter's reset time): used instead of the computed retry interval of a failure,
/// capped by the builder's [`max_retry_interval`](crate::AsyncSmartCacheBuilder::max_retry_interval).
///
/// Turn it on with the builder's
/// [`honor_retry_after`](crate::AsyncSmartCacheBuilder::honor_retry_after) (or pass any
/// function to [`retry_hint`](crate::AsyncSmartCacheBuilder::retry_hint) for an error type
/// of another crate). `#[smart_cached]` functions honour it when their error type implements
/// it.
///
/// ```
/// use smartcache::RetryAfter;
/// use std::time::Duration;
///
/// enum ApiError {
///     RateLimited { retry_after_secs: u64 },
///     Down,
/// }
///
/// impl RetryAfter for ApiError {
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             Self::RateLimited { retry_after_secs } => Some(Duration::from_secs(*retry_after_secs)),
///             Self::Down => None, // the computed interval (with backoff)
///         }
///     }
/// }
/// ```
pub trait RetryAfter {
    /// How long to wait before computing again after this error; `None` for the cache's own
    /// interval. The default says nothing.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// A hint function, from [`RetryAfter`] or the builder's `retry_hint`.
pub(crate) type Hint<E> = fn(&E) -> Option<Duration>;

/// A key's retry interval after consecutive failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    /// The first failure's interval, in nanoseconds (0: failures are not cached).
    pub(crate) retry: u64,
    /// The cap, in nanoseconds; at least `retry`. Equal to it: no growth, no jitter.
    pub(crate) max: u64,
}

/// The most a jittered interval strays from the doubled one: a fifth of it, either way.
const JITTER_DIVISOR: u64 = 5;

impl Backoff {
    pub(crate) fn new(retry: Duration, max: Option<Duration>) -> Self {
        let retry = nanos(retry);
        let max = max.map_or(retry, nanos).max(retry);
        Self { retry, max }
    }

    /// Whether intervals grow (and are jittered).
    pub(crate) fn grows(&self) -> bool {
        self.max > self.retry
    }

    /// The interval of a key's `failures`-th consecutive failure (1 for the first), in
    /// nanoseconds: `retry · 2^(failures−1)`, capped by `max`, jittered by up to ±20% with
    /// `random` (never above `max`) when intervals grow; or the error's `hint`, capped by
    /// `max` and not jittered (the backend said when).
    pub(crate) fn interval(&self, failures: u32, hint: Option<Duration>, random: u64) -> u64 {
        if self.retry == 0 {
            return 0;
        }
        if let Some(hint) = hint {
            return nanos(hint).min(self.max);
        }
        if !self.grows() {
            return self.retry;
        }
        let doublings = failures.saturating_sub(1).min(63);
        let grown = self
            .retry
            .checked_mul(1 << doublings)
            .map_or(self.max, |grown| grown.min(self.max));
        // `random` spread evenly over [grown - spread, grown + spread], the top cut at the
        // cap: intervals at the cap still spread (over its last fifth), so a fleet that
        // keeps failing does not retry in step there either.
        let spread = grown / JITTER_DIVISOR;
        let (low, high) = (grown - spread, (grown + spread).min(self.max));
        low + random % (high - low + 1)
    }
}

/// Random numbers for jitter, seeded per cache from the process's random state: two
/// processes (or two caches) do not draw the same sequence.
#[derive(Debug)]
pub(crate) struct Jitter(std::collections::hash_map::RandomState);

impl Jitter {
    pub(crate) fn new() -> Self {
        Self(std::collections::hash_map::RandomState::new())
    }

    /// A random number for `key` at `now` (the same inputs give the same number).
    pub(crate) fn draw(&self, key: &impl Hash, now: u64) -> u64 {
        self.0.hash_one((key, now))
    }
}

/// Whether a value stored `age` nanoseconds ago is due for a refresh-ahead after `refresh`
/// nanoseconds (`u64::MAX`: never), with its refresh point pulled forward by up to a fifth
/// by `spread` (the key's hash mixed with its store time), so that keys stored together do
/// not all refresh at once.
#[inline]
pub(crate) fn refresh_due(age: u64, refresh: u64, spread: u64) -> bool {
    if age >= refresh {
        return refresh != u64::MAX;
    }
    // Only reached by values within the last fifth before the point.
    let early = refresh / JITTER_DIVISOR;
    age >= refresh - early && {
        // A fraction of `early`, from 16 bits of the spread: `early · f / 2^16`.
        let fraction = (spread >> 24) & 0xFFFF;
        let pulled = u64::try_from((u128::from(early) * u128::from(fraction)) >> 16).unwrap_or(0);
        age >= refresh - pulled
    }
}

/// The error of a cache of optional values: a computation's `None`, stored like a failure
/// (negative caching) for the retry interval, with backoff, so a key that has nothing is
/// not asked again on every call. `retry_interval(Duration::ZERO)` stores no `None`.
///
/// [`get_or_compute_option`](crate::AsyncSmartCache::get_or_compute_option) takes a
/// computation that returns an `Option`; `#[smart_cached]` functions that return an
/// `Option` use this too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "redis", derive(serde::Serialize, serde::Deserialize))]
pub struct Absent;

impl std::fmt::Display for Absent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no value (a cached `None`)")
    }
}

impl std::error::Error for Absent {}

/// A value and how fresh it is: what the `_served` methods of
/// [`AsyncSmartCache`](crate::AsyncSmartCache) answer, for callers that must tell a fresh
/// value from one served under [`stale_if_error`](crate::AsyncSmartCacheBuilder::stale_if_error).
#[derive(Debug)]
pub enum Served<V, E> {
    /// A value within its time to live (possibly being refreshed in the background).
    Fresh(V),
    /// A value past its time to live, answered because recomputing it failed with `error`
    /// (which is cached: the backend is not asked again until its retry interval passes).
    Stale {
        /// The last good value.
        value: V,
        /// Why it could not be recomputed.
        error: Arc<E>,
        /// How long ago it expired.
        expired_for: Duration,
    },
}

impl<V, E> Served<V, E> {
    /// The value, fresh or stale.
    pub fn into_value(self) -> V {
        match self {
            Self::Fresh(value) | Self::Stale { value, .. } => value,
        }
    }

    /// The value, fresh or stale.
    pub fn value(&self) -> &V {
        match self {
            Self::Fresh(value) | Self::Stale { value, .. } => value,
        }
    }

    /// Whether it is a stale value answered in place of an error.
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Stale { .. })
    }

    /// The error that a stale value stands in for; `None` for a fresh value.
    pub fn error(&self) -> Option<&Arc<E>> {
        match self {
            Self::Fresh(_) => None,
            Self::Stale { error, .. } => Some(error),
        }
    }
}

impl<V: Clone, E> Clone for Served<V, E> {
    fn clone(&self) -> Self {
        match self {
            Self::Fresh(value) => Self::Fresh(value.clone()),
            Self::Stale {
                value,
                error,
                expired_for,
            } => Self::Stale {
                value: value.clone(),
                error: Arc::clone(error),
                expired_for: *expired_for,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn intervals_double_within_a_fifth_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Some(Duration::from_secs(20)));
        for failures in 1..=8 {
            let doubled = (SEC << (failures - 1)).min(20 * SEC);
            for random in [0, 1, u64::MAX / 2, u64::MAX] {
                let interval = backoff.interval(failures, None, random);
                assert!(interval >= doubled - doubled / 5, "{failures}: {interval}");
                assert!(interval <= (doubled + doubled / 5).min(20 * SEC));
            }
        }
        // Extremes of the draw reach both ends.
        assert_eq!(backoff.interval(1, None, 0), SEC - SEC / 5);
        assert_eq!(backoff.interval(1, None, 2 * (SEC / 5)), SEC + SEC / 5);
        // At the cap, intervals still spread over its last fifth.
        assert_eq!(backoff.interval(9, None, 0), 16 * SEC);
        assert_eq!(backoff.interval(9, None, 4 * SEC), 20 * SEC);
        let at_cap: std::collections::BTreeSet<_> = (0..50u64)
            .map(|r| backoff.interval(9, None, r * 999_999_937))
            .collect();
        assert!(at_cap.len() > 40, "{} distinct", at_cap.len());
    }

    #[test]
    fn no_cap_above_the_retry_interval_means_no_growth_and_no_jitter() {
        let backoff = Backoff::new(Duration::from_secs(3), None);
        assert!(!backoff.grows());
        assert_eq!(backoff.interval(10, None, 12_345), 3 * SEC);
        let off = Backoff::new(Duration::ZERO, Some(Duration::from_secs(9)));
        assert_eq!(off.interval(1, Some(Duration::from_secs(1)), 0), 0);
    }

    #[test]
    fn a_hint_replaces_the_interval_and_is_capped() {
        let backoff = Backoff::new(Duration::from_secs(1), Some(Duration::from_secs(60)));
        let hint = Some(Duration::from_secs(7));
        assert_eq!(backoff.interval(5, hint, 99), 7 * SEC);
        assert_eq!(
            backoff.interval(1, Some(Duration::from_secs(600)), 0),
            60 * SEC
        );
    }

    #[test]
    fn refresh_points_spread_over_the_last_fifth() {
        let refresh = 100 * SEC;
        assert!(!refresh_due(79 * SEC, refresh, u64::MAX));
        assert!(refresh_due(100 * SEC, refresh, 0));
        assert!(!refresh_due(99 * SEC, refresh, 0), "spread 0: at the point");
        assert!(
            refresh_due(81 * SEC, refresh, u64::MAX),
            "spread max: a fifth early"
        );
        assert!(!refresh_due(u64::MAX - 1, u64::MAX, 0), "never");
    }
}
