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
/// ```
/// use smartcache::CacheError;
/// use std::time::Duration;
///
/// let fresh: CacheError<&str> = CacheError::from("backend down");
/// assert!(!fresh.is_cached());
/// assert_eq!(fresh.to_string(), "backend down");
///
/// let cached = CacheError::Cached { error: fresh.error().unwrap().clone(), retry_in: Duration::from_secs(252) };
/// assert!(cached.is_cached());
/// assert_eq!(cached.to_string(), "cached error (retry in 4m12s): backend down");
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
    #[must_use]
    pub fn is_cached(&self) -> bool {
        matches!(self, Self::Cached { .. })
    }

    /// Whether the computation panicked.
    #[must_use]
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked { .. })
    }

    /// The original error, for [`Failed`](Self::Failed) and [`Cached`](Self::Cached);
    /// `None` for a panic.
    #[must_use]
    pub fn error(&self) -> Option<&Arc<E>> {
        match self {
            Self::Failed(error) | Self::Cached { error, .. } => Some(error),
            Self::Panicked { .. } | Self::Cycle => None,
        }
    }

    /// Time left before a call computes again, for a cached error.
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

impl<E: fmt::Display> fmt::Display for CacheError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(error) => error.fmt(f),
            Self::Cached { error, retry_in } => {
                write!(
                    f,
                    "cached error (retry in {}): {error}",
                    HumanDuration(*retry_in)
                )
            }
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

/// A duration printed the way people read a countdown: `4m12s`, `1h30m`, `850ms`.
///
/// Whole seconds above one second (sub-second remainders are dropped, a countdown does not
/// need them); milliseconds below.
pub(crate) struct HumanDuration(pub(crate) Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs();
        if total == 0 {
            return write!(f, "{}ms", self.0.subsec_millis());
        }
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
    fn human_durations_read_like_countdowns() {
        let cases = [
            (Duration::from_millis(0), "0ms"),
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(1_999), "1s"),
            (Duration::from_secs(252), "4m12s"),
            (Duration::from_secs(5_400), "1h30m"),
            (Duration::from_secs(2 * 86_400 + 5), "2d5s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(
                HumanDuration(duration).to_string(),
                expected,
                "{duration:?}"
            );
        }
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
