//! The circuit breaker in front of Redis: after a few consecutive faults (errors or
//! timeouts) the tier stops asking Redis for a while and every call runs local-only; then
//! one call probes, and a success closes the breaker again.
//!
//! ```text
//!   Closed --(threshold faults in a row)--> Open --(open_for passed)--> Probing
//!     ^                                                                    |
//!     +---------------------------- probe succeeds ------------------------+
//!                                   probe fails: Open again
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    open_for: Duration,
    epoch: Instant,
    /// Faults in a row since the last success.
    faults: AtomicU32,
    /// While open: until when (milliseconds since `epoch`); 0 when closed.
    open_until: AtomicU64,
    /// Milliseconds spent open, summed (for the stats), counted when the breaker closes.
    degraded_ms: AtomicU64,
    /// When the breaker last opened (milliseconds since `epoch`).
    opened_at: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            epoch: Instant::now(),
            faults: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            degraded_ms: AtomicU64::new(0),
            opened_at: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a command may be sent now. While open, no; once `open_for` has passed, one
    /// caller at a time probes (it moves the deadline on, so the others still see it open).
    pub(crate) fn allow(&self) -> bool {
        let until = self.open_until.load(Relaxed);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= until
            && self
                .open_until
                .compare_exchange(until, now + self.open_for_ms(), Relaxed, Relaxed)
                .is_ok()
    }

    fn open_for_ms(&self) -> u64 {
        u64::try_from(self.open_for.as_millis())
            .unwrap_or(u64::MAX / 2)
            .max(1)
    }

    /// Records a success; returns whether it ends a run of faults (Redis is back).
    pub(crate) fn success(&self) -> bool {
        let faults = self.faults.swap(0, Relaxed);
        if self.open_until.swap(0, Relaxed) != 0 {
            let opened = self.opened_at.load(Relaxed);
            self.degraded_ms
                .fetch_add(self.now_ms().saturating_sub(opened), Relaxed);
        }
        faults > 0
    }

    /// Records a fault; returns whether this one opened the breaker.
    pub(crate) fn fault(&self) -> bool {
        let faults = self.faults.fetch_add(1, Relaxed) + 1;
        if faults < self.threshold {
            return false;
        }
        let now = self.now_ms();
        let opened = self
            .open_until
            .compare_exchange(0, now + self.open_for_ms(), Relaxed, Relaxed)
            .is_ok();
        if opened {
            self.opened_at.store(now, Relaxed);
        }
        opened
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open_until.load(Relaxed) != 0
    }

    /// Time spent degraded: closed periods summed, plus the current one if open.
    pub(crate) fn degraded(&self) -> Duration {
        let mut ms = self.degraded_ms.load(Relaxed);
        if self.is_open() {
            ms += self.now_ms().saturating_sub(self.opened_at.load(Relaxed));
        }
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_one_at_a_time() {
        let breaker = Breaker::new(3, Duration::ZERO);
        assert!(!breaker.fault() && !breaker.fault());
        assert!(breaker.allow(), "two faults: still closed");
        assert!(breaker.fault(), "the third opens it");
        assert!(breaker.is_open());
        // `open_for` of zero (one millisecond at least): after it, one caller probes.
        std::thread::sleep(Duration::from_millis(2));
        assert!(breaker.allow());
        assert!(!breaker.allow(), "only one probe at a time");
        breaker.success();
        assert!(!breaker.is_open() && breaker.allow());
    }
}
