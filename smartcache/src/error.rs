//! [`CacheError`]: what a cached computation can answer instead of a value.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a call through an [`AsyncSmartCache`](crate::AsyncSmartCache) returned no value.
///
/// The original error `E` is never lost: it is shared as an [`Arc<E>`] by every caller that
/// receives it, whether they shared the failing computation ([`Failed`](Self::Failed)) or
/// came later and were answered from the cache ([`Cached`](Self::Cached)).
///
/// `From<E>` is implemented, so `?` converts an `E` into a `CacheError<E>` inside a
/// computation whose return type is `Result<T, CacheError<E>>`.
///
/// # Display and `source`
///
/// Following the convention of the standard library's error types, `Display` describes what
/// happened in the cache only (`computation failed`, `cached error (retry in 4m12s)`,
/// `computation panicked: <message>`), and the original error is the
/// [`source`](std::error::Error::source). Error reporters print the whole chain once:
/// anyhow's `{:#}` gives `cached error (retry in 4m12s): backend down`. To show the original
/// error alone, use [`error`](Self::error).
///
/// The time left is rounded up to the next whole second (below one second, to the next
/// millisecond), as a countdown is: right after a failure cached for 5 minutes it reads
/// `retry in 5m`, and `retry in 0ms` is never shown while any time is left.
///
/// ```
/// use smartcache::CacheError;
/// use std::error::Error as _;
/// use std::time::Duration;
///
/// let fresh: CacheError<std::io::Error> = CacheError::from(std::io::Error::other("backend down"));
/// assert!(!fresh.is_cached());
/// assert_eq!(fresh.to_string(), "computation failed");
/// assert_eq!(fresh.source().unwrap().to_string(), "backend down");
///
/// let cached = CacheError::Cached {
///     error: fresh.error().unwrap().clone(),
///     retry_in: Duration::from_millis(251_200),
/// };
/// assert!(cached.is_cached());
/// assert_eq!(cached.to_string(), "cached error (retry in 4m12s)");
/// assert_eq!(cached.error().unwrap().to_string(), "backend down");
/// ```
#[non_exhaustive]
#[derive(Debug, PartialEq, Eq)]
pub enum CacheError<E> {
    /// The computation that this call ran or joined failed with this error.
    ///
    /// The error is now cached (unless the retry interval is zero): later calls receive
    /// [`CacheError::Cached`] until the retry interval has passed.
    Failed(Arc<E>),
    /// An earlier computation failed and its error is still cached; nothing ran.
    Cached {
        /// The original error, shared with every caller that receives it.
        error: Arc<E>,
        /// How long until a call computes again.
        retry_in: Duration,
    },
    /// The computation panicked. Nothing was cached: the next call computes again.
    Panicked {
        /// The panic payload, if it was a string; otherwise a fixed description.
        message: String,
    },
    /// The call was made from inside a computation that it would have had to wait for: the
    /// computation of its own key, directly or through the keys it waits for (of any
    /// cache). Waiting would never end, so the call answers at once; nothing was cached.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::{AsyncSmartCache, CacheError};
    ///
    /// let cache: AsyncSmartCache<u32, u32, String> = AsyncSmartCache::new();
    /// let answer = cache
    ///     .get_or_compute(1, || async {
    ///         // The computation of key 1 asks for key 1: a cycle, not a hang.
    ///         let inner = cache.get_or_compute(1, || async { Ok(0) }).await;
    ///         assert!(matches!(inner, Err(CacheError::Cycle)));
    ///         Ok(1)
    ///     })
    ///     .await;
    /// assert_eq!(answer.unwrap(), 1);
    /// # }
    /// ```
    Cycle,
}

impl<E> CacheError<E> {
    /// Whether this answer came from a cached failure (nothing ran for this call).
    ///
    /// ```
    /// use smartcache::CacheError;
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let cached = CacheError::Cached { error: Arc::new("down"), retry_in: Duration::from_secs(9) };
    /// assert!(cached.is_cached());
    /// assert!(!CacheError::from("down").is_cached()); // a fresh failure
    /// ```
    #[must_use]
    pub fn is_cached(&self) -> bool {
        matches!(self, Self::Cached { .. })
    }

    /// Whether the computation panicked.
    ///
    /// ```
    /// use smartcache::CacheError;
    ///
    /// let panicked = CacheError::<std::io::Error>::Panicked { message: "index out of bounds".into() };
    /// assert!(panicked.is_panic());
    /// assert_eq!(panicked.to_string(), "computation panicked: index out of bounds");
    /// ```
    #[must_use]
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked { .. })
    }

    /// The original error, for [`Failed`](Self::Failed) and [`Cached`](Self::Cached);
    /// `None` for a panic.
    ///
    /// ```
    /// use smartcache::CacheError;
    ///
    /// let failed = CacheError::from(std::io::Error::other("no route to host"));
    /// assert_eq!(failed.error().unwrap().to_string(), "no route to host");
    /// assert!(CacheError::<std::io::Error>::Panicked { message: "boom".into() }.error().is_none());
    /// ```
    #[must_use]
    pub fn error(&self) -> Option<&Arc<E>> {
        match self {
            Self::Failed(error) | Self::Cached { error, .. } => Some(error),
            Self::Panicked { .. } | Self::Cycle => None,
        }
    }

    /// Time left before a call computes again, for a cached error; `None` otherwise.
    ///
    /// ```
    /// use smartcache::CacheError;
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let cached = CacheError::Cached { error: Arc::new("down"), retry_in: Duration::from_secs(30) };
    /// assert_eq!(cached.retry_in(), Some(Duration::from_secs(30)));
    /// assert_eq!(CacheError::from("down").retry_in(), None);
    /// ```
    #[must_use]
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Self::Cached { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}

/// The text of [`CacheError::Cycle`], also the panic message of the forms that have no
/// error to return it as.
pub(crate) const CYCLE: &str = "computation cycle: a computation waits for its own key";

impl<E> From<E> for CacheError<E> {
    fn from(error: E) -> Self {
        Self::Failed(Arc::new(error))
    }
}

// Not derived: a derive would require `E: Clone`, but the error is shared, never cloned.
impl<E> Clone for CacheError<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Failed(error) => Self::Failed(Arc::clone(error)),
            Self::Cached { error, retry_in } => Self::Cached {
                error: Arc::clone(error),
                retry_in: *retry_in,
            },
            Self::Panicked { message } => Self::Panicked {
                message: message.clone(),
            },
            Self::Cycle => Self::Cycle,
        }
    }
}

// This layer only: the original error is the `source`, so that reporters (anyhow's `{:#}`,
// eyre) print each part of the chain once. No `E: Display` bound: nothing of `E` is printed.
impl<E> fmt::Display for CacheError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(_) => f.write_str("computation failed"),
            Self::Cached { retry_in, .. } => {
                write!(f, "cached error (retry in {})", Countdown(*retry_in))
            }
            // A panic payload is not an error value: there is no source to hand it to.
            Self::Panicked { message } => write!(f, "computation panicked: {message}"),
            Self::Cycle => f.write_str(CYCLE),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CacheError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The original error is the source for both fresh and cached failures, so error
        // reporters (anyhow, eyre) print the chain down to the root cause.
        self.error()
            .map(|error| &**error as &(dyn std::error::Error + 'static))
    }
}

/// Time left, printed the way people read a countdown: `4m12s`, `1h30m`, `850ms`.
///
/// Rounded *up*: to the next whole second from one second on (sub-second remainders are not
/// shown), to the next millisecond below. So a window that has just started shows its full
/// length (`5m`, not `4m59s`), and a countdown never reads `0ms` while time is left.
pub(crate) struct Countdown(pub(crate) Duration);

impl fmt::Display for Countdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NANOS_PER_MILLI: u128 = 1_000_000;
        const MILLIS_PER_SEC: u128 = 1_000;
        let millis = self.0.as_nanos().div_ceil(NANOS_PER_MILLI);
        if millis < MILLIS_PER_SEC {
            return write!(f, "{millis}ms");
        }
        // Saturating: `Duration::MAX` has more seconds than a `u64` once rounded up.
        let total = u64::try_from(millis.div_ceil(MILLIS_PER_SEC)).unwrap_or(u64::MAX);
        let (days, hours, minutes, seconds) = (
            total / 86_400,
            total / 3_600 % 24,
            total / 60 % 60,
            total % 60,
        );
        let mut wrote = false;
        for (amount, unit) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
            if amount > 0 {
                write!(f, "{amount}{unit}")?;
                wrote = true;
            }
        }
        debug_assert!(wrote, "a non-zero total has at least one non-zero part");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_round_up() {
        let cases = [
            (Duration::ZERO, "0ms"),
            (Duration::from_nanos(1), "1ms"),
            (Duration::from_millis(850), "850ms"),
            (Duration::from_micros(850_001), "851ms"),
            (Duration::from_micros(999_999), "1s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_001), "2s"),
            (Duration::from_millis(9_999), "10s"),
            (Duration::from_millis(299_999), "5m"),
            (Duration::from_secs(252), "4m12s"),
            (Duration::from_millis(251_001), "4m12s"),
            (Duration::from_secs(5_400), "1h30m"),
            (Duration::from_secs(2 * 86_400 + 5), "2d5s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(Countdown(duration).to_string(), expected, "{duration:?}");
        }
        // No overflow at the far end.
        assert!(!Countdown(Duration::MAX).to_string().is_empty());
    }

    #[test]
    fn display_describes_this_layer_only() {
        let io = Arc::new(std::io::Error::other("disk on fire"));
        let failed = CacheError::Failed(Arc::clone(&io));
        let cached = CacheError::Cached {
            error: io,
            retry_in: Duration::from_millis(4_001),
        };
        assert_eq!(failed.to_string(), "computation failed");
        assert_eq!(cached.to_string(), "cached error (retry in 5s)");
        let panicked = CacheError::<std::io::Error>::Panicked {
            message: "boom".into(),
        };
        assert_eq!(panicked.to_string(), "computation panicked: boom");
    }

    #[test]
    fn an_error_report_prints_each_layer_once() {
        let io = Arc::new(std::io::Error::other("no user 0"));
        let failed = anyhow::Error::new(CacheError::Failed(Arc::clone(&io)));
        assert_eq!(format!("{failed:#}"), "computation failed: no user 0");
        let cached = anyhow::Error::new(CacheError::Cached {
            error: io,
            retry_in: Duration::from_millis(299_990),
        })
        .context("loading the profile");
        assert_eq!(
            format!("{cached:#}"),
            "loading the profile: cached error (retry in 5m): no user 0"
        );
        let chain: Vec<String> = cached.chain().map(ToString::to_string).collect();
        assert_eq!(
            chain,
            [
                "loading the profile",
                "cached error (retry in 5m)",
                "no user 0"
            ]
        );
    }

    #[test]
    fn source_is_the_original_error() {
        let io = std::io::Error::other("disk on fire");
        let error = CacheError::Cached {
            error: Arc::new(io),
            retry_in: Duration::from_secs(1),
        };
        let source = std::error::Error::source(&error).expect("has a source");
        assert_eq!(source.to_string(), "disk on fire");
        assert!(
            std::error::Error::source(&CacheError::<std::io::Error>::Panicked {
                message: "boom".into()
            })
            .is_none()
        );
    }
}
