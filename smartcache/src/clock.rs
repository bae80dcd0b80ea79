//! Time for one cache: tokio's monotonic clock (so tests can pause it), read as nanoseconds
//! since the cache was built.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the cache was built, on tokio's clock, rounded down to a multiple of
    /// 16: the four low bits of an entry's time word count its hits (see `store::Entry`), and
    /// a policy stamp counts 16 ns ticks (see `policy::Stamp`).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        // `saturating_`: a cache shared between runtimes with paused clocks may see an
        // instant before its epoch; treat it as the epoch rather than panic.
        nanos(Instant::now().saturating_duration_since(self.epoch)) & !15
    }
}

/// A duration in nanoseconds, saturating at about 584 years.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Locks a std mutex, ignoring poisoning: every critical section in this crate leaves its
/// data consistent before it calls anything that could panic.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_the_paused_clock() {
        let clock = Clock::new();
        assert_eq!(clock.now(), 0);
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert_eq!(clock.now(), 1_500_000_000);
    }
}
