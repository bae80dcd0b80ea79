//! Request counters and entry gauges: the live, striped form ([`StatsCore`]) and the plain
//! snapshot handed to users ([`CacheStats`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of a cache's counters and gauges, taken by
/// [`AsyncSmartCache::stats`](crate::AsyncSmartCache::stats).
///
/// Counters count since the cache was built (or since [`reset`](crate::AsyncSmartCache::reset_stats)):
/// they are never decremented and [`clear`](crate::AsyncSmartCache::clear) leaves them alone.
/// Gauges (`total_entries`, `error_entries`, `in_flight`) describe the cache now.
///
/// Every call of a get method counts exactly once as a hit, a miss or a cached-error hit, so
/// `requests() == hits + misses + cached_error_hits`. A herd of N callers on a cold key
/// records N misses, of which N - 1 are `coalesced`, and one load.
///
/// Figures are read one by one without stopping the cache, so a snapshot taken while calls
/// are running may be a few counts apart between fields; one taken at rest is exact. A
/// snapshot is always consistent with itself all the same: `coalesced <= misses` and
/// `error_entries <= total_entries`, and every ratio is within `0.0..=1.0`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use smartcache::AsyncSmartCache;
///
/// let cache: AsyncSmartCache<u32, u32> = AsyncSmartCache::new();
/// cache.get_or_compute(1, || async { Ok(10) }).await.unwrap(); // miss, one load
/// cache.get_or_compute(1, || async { Ok(10) }).await.unwrap(); // hit
///
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.load_successes), (1, 1, 1));
/// assert_eq!(stats.requests(), 2);
/// assert!((stats.hit_rate() - 0.5).abs() < f64::EPSILON);
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered with a stored value.
    pub hits: u64,
    /// Calls that found no usable value, including those that joined a computation in flight.
    pub misses: u64,
    /// Misses that joined a computation already in flight instead of starting one. (A waiter
    /// that later gives up on a stuck computation after the builder's `wait_timeout` and
    /// runs its own stays counted here.)
    pub coalesced: u64,
    /// Computations that returned a value.
    pub load_successes: u64,
    /// Computations that returned an error or panicked.
    pub load_failures: u64,
    /// Calls answered with a cached error; nothing ran for them.
    pub cached_error_hits: u64,
    /// Entries removed to keep the cache within its capacity.
    pub evictions: u64,
    /// Values removed because their time to live had passed.
    pub expirations: u64,
    /// Values stored directly with [`prime`](crate::AsyncSmartCache::prime), not computed.
    pub primes: u64,
    /// Refreshes started: background refreshes of values past the builder's
    /// [`refresh_after`](crate::AsyncSmartCacheBuilder::refresh_after), and explicit ones
    /// ([`refresh`](crate::AsyncSmartCache::refresh)). Each is also a load when it ends.
    pub refreshes: u64,
    /// Refreshes that failed (the old value stayed; the failure is cached).
    pub refresh_failures: u64,
    /// Calls answered with a stale value because recomputing it failed (the builder's
    /// [`stale_if_error`](crate::AsyncSmartCacheBuilder::stale_if_error)); each is also
    /// counted as a miss or a cached error hit.
    pub stale_hits: u64,
    /// Time spent in finished computations, from start to completion, summed.
    pub total_load_time: Duration,
    /// Entries stored now: values plus cached errors.
    pub total_entries: u64,
    /// Cached errors stored now (included in `total_entries`).
    pub error_entries: u64,
    /// Computations running now.
    pub in_flight: u64,
    /// The shared tier's part (feature `redis`; all zero for a cache that is not shared).
    pub shared: SharedStats,
}

/// What a cache on the shared tier did there, counted per flight (one process sends one
/// request per key however many callers share the flight).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Flights answered by the fleet's entry: a value or a cached failure computed by
    /// another process (or earlier by this one); nothing ran here. (Such a flight still
    /// counts as a load in [`CacheStats`]: it filled the local copy.)
    pub hits: u64,
    /// Flights that took the key's lease and computed for the fleet.
    pub misses: u64,
    /// Times a flight waited for the lease another process held.
    pub lease_waits: u64,
    /// Waits that ended because the holder's lease ran out (it stopped renewing: killed,
    /// or cut off from Redis) rather than with its result.
    pub lease_timeouts: u64,
    /// Commands to Redis that failed or timed out.
    pub redis_errors: u64,
    /// Flights that ran local-only because Redis could not be asked (down, slow, or the
    /// breaker open).
    pub local_only: u64,
    /// Time the cache's tier has spent degraded (its breaker open), shared by every cache
    /// on the tier.
    pub degraded: Duration,
}

impl CacheStats {
    /// Calls counted: `hits + misses + cached_error_hits`.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.hits
            .saturating_add(self.misses)
            .saturating_add(self.cached_error_hits)
    }

    /// The share of requests answered with a stored value, in `0.0..=1.0`; `0.0` before any
    /// request.
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.requests())
    }

    /// The share of stored entries that are values rather than cached errors, in
    /// `0.0..=1.0`; `0.0` when the cache is empty.
    ///
    /// This is what the Python original called `cache_hit_rate`; it says nothing about
    /// requests (see [`hit_rate`](Self::hit_rate) for that).
    #[must_use]
    pub fn success_ratio(&self) -> f64 {
        // Saturating: the fields are public, and a hand-made snapshot may disagree.
        ratio(
            self.total_entries.saturating_sub(self.error_entries),
            self.total_entries,
        )
    }

    /// Finished computations: `load_successes + load_failures`.
    #[must_use]
    pub fn loads(&self) -> u64 {
        self.load_successes.saturating_add(self.load_failures)
    }

    /// Mean duration of a finished computation; zero before the first one.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // only past u32::MAX loads, where it does not matter
    pub fn mean_load_time(&self) -> Duration {
        match u32::try_from(self.loads()) {
            Ok(0) => Duration::ZERO,
            Ok(loads) => self.total_load_time / loads,
            // Beyond u32::MAX loads, divide in f64: precision no longer matters there.
            Err(_) => self.total_load_time.div_f64(self.loads() as f64),
        }
    }
}

#[allow(clippy::cast_precision_loss)] // a ratio of counters: 52 bits of precision are plenty
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64).min(1.0)
    }
}

impl fmt::Display for CacheStats {
    /// One line, for logs: `hits 9, misses 3 (2 coalesced), loads 1 ok / 0 failed, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hits {}, misses {} ({} coalesced), cached errors {}, loads {} ok / {} failed, \
             refreshes {} ({} failed), stale hits {}, entries {} ({} errors), in flight {}, \
             hit rate {:.1}%",
            self.hits,
            self.misses,
            self.coalesced,
            self.cached_error_hits,
            self.load_successes,
            self.load_failures,
            self.refreshes,
            self.refresh_failures,
            self.stale_hits,
            self.total_entries,
            self.error_entries,
            self.in_flight,
            self.hit_rate() * 100.0,
        )
    }
}

/// The counters bumped on the request path, one set per stripe.
///
/// NOTE: one shared counter bumped on every hit halves multi-thread hit throughput (every
/// core fights for its cache line), so each thread bumps the stripe it was given.
#[derive(Debug, Default)]
#[repr(align(128))] // one stripe per cache line pair: no false sharing with neighbours
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    cached_error_hits: AtomicU64,
}

/// The live statistics of one cache, shared with the registry.
#[derive(Debug)]
pub(crate) struct StatsCore {
    stripes: Box<[Stripe]>,
    load_successes: AtomicU64,
    load_failures: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    primes: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    stale_hits: AtomicU64,
    load_nanos: AtomicU64,
    /// Values plus cached errors stored now.
    pub(crate) entries: AtomicU64,
    pub(crate) error_entries: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    /// Counted by the shared tier (`redis::shared`).
    pub(crate) shared: SharedCounters,
}

/// The live form of [`SharedStats`].
#[derive(Default)]
pub(crate) struct SharedCounters {
    /// How long the tier has been degraded (set when the cache goes on a tier).
    pub(crate) degraded: std::sync::OnceLock<Box<dyn Fn() -> Duration + Send + Sync>>,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) lease_timeouts: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) local_only: AtomicU64,
}

impl fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCounters").finish_non_exhaustive()
    }
}

impl SharedCounters {
    fn snapshot(&self) -> SharedStats {
        SharedStats {
            degraded: self
                .degraded
                .get()
                .map_or(Duration::ZERO, |degraded| degraded()),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            lease_waits: self.lease_waits.load(Relaxed),
            lease_timeouts: self.lease_timeouts.load(Relaxed),
            redis_errors: self.redis_errors.load(Relaxed),
            local_only: self.local_only.load(Relaxed),
        }
    }

    fn reset(&self) {
        for counter in [
            &self.hits,
            &self.misses,
            &self.lease_waits,
            &self.lease_timeouts,
            &self.redis_errors,
            &self.local_only,
        ] {
            counter.store(0, Relaxed);
        }
    }
}

/// Which request counter a call bumps.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    Hit,
    /// A miss that started a computation (or found nothing, for `get`).
    Miss,
    /// A miss that joined a computation already in flight.
    Coalesced,
    CachedError,
}

impl StatsCore {
    pub(crate) fn new() -> Self {
        let stripes = std::thread::available_parallelism()
            .map_or(4, |cores| cores.get() * 2)
            .next_power_of_two()
            .min(64);
        Self {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
            load_successes: AtomicU64::new(0),
            load_failures: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
            primes: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
            stale_hits: AtomicU64::new(0),
            load_nanos: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            error_entries: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            shared: SharedCounters::default(),
        }
    }

    #[inline]
    /// How many stripes the counters have: a power of two.
    pub(crate) fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    // NOTE: inlined by hand: once `thread_stripe` had a second caller (the policy's sampled
    // hits, `minisim.rs`), the compiler made this a call on every hit (+9 instructions).
    #[inline]
    fn stripe(&self) -> &Stripe {
        // INVARIANT: `stripes.len()` is a power of two, so the mask keeps the index in bounds.
        &self.stripes[thread_stripe() & (self.stripes.len() - 1)]
    }

    #[inline]
    pub(crate) fn record(&self, request: Request) {
        let stripe = self.stripe();
        let counter = match request {
            Request::Hit => &stripe.hits,
            Request::Miss => &stripe.misses,
            Request::Coalesced => {
                stripe.coalesced.fetch_add(1, Relaxed);
                &stripe.misses
            }
            Request::CachedError => &stripe.cached_error_hits,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_load(&self, succeeded: bool, took: Duration) {
        let counter = if succeeded {
            &self.load_successes
        } else {
            &self.load_failures
        };
        counter.fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.load_nanos.fetch_add(nanos, Relaxed);
    }

    pub(crate) fn record_evictions(&self, count: u64) {
        self.evictions.fetch_add(count, Relaxed);
    }

    pub(crate) fn record_expirations(&self, count: u64) {
        self.expirations.fetch_add(count, Relaxed);
    }

    pub(crate) fn record_prime(&self) {
        self.primes.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_refresh(&self) {
        self.refreshes.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_refresh_failure(&self) {
        self.refresh_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_stale_hits(&self, count: u64) {
        self.stale_hits.fetch_add(count, Relaxed);
    }

    /// Sets every counter back to zero; gauges stay, they describe the cache now.
    pub(crate) fn reset(&self) {
        for stripe in &*self.stripes {
            stripe.hits.store(0, Relaxed);
            stripe.misses.store(0, Relaxed);
            stripe.coalesced.store(0, Relaxed);
            stripe.cached_error_hits.store(0, Relaxed);
        }
        for counter in [
            &self.load_successes,
            &self.load_failures,
            &self.evictions,
            &self.expirations,
            &self.primes,
            &self.refreshes,
            &self.refresh_failures,
            &self.stale_hits,
            &self.load_nanos,
        ] {
            counter.store(0, Relaxed);
        }
        self.shared.reset();
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let sum = |field: fn(&Stripe) -> &AtomicU64| {
            self.stripes.iter().map(|s| field(s).load(Relaxed)).sum()
        };
        // INVARIANT (a snapshot agrees with itself): each part is clamped to its whole. The
        // two halves of one update (a coalesced miss, an error entry coming or going) are
        // separate atomic writes, so a reader racing them may see the part ahead of the whole
        // by the calls in between; such a snapshot reads as if those calls came just after.
        let coalesced: u64 = sum(|s| &s.coalesced);
        let misses: u64 = sum(|s| &s.misses);
        let error_entries = self.error_entries.load(Relaxed);
        let total_entries = self.entries.load(Relaxed);
        CacheStats {
            hits: sum(|s| &s.hits),
            misses,
            coalesced: coalesced.min(misses),
            cached_error_hits: sum(|s| &s.cached_error_hits),
            load_successes: self.load_successes.load(Relaxed),
            load_failures: self.load_failures.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            expirations: self.expirations.load(Relaxed),
            primes: self.primes.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            refresh_failures: self.refresh_failures.load(Relaxed),
            stale_hits: self.stale_hits.load(Relaxed),
            total_load_time: Duration::from_nanos(self.load_nanos.load(Relaxed)),
            total_entries,
            error_entries: error_entries.min(total_entries),
            in_flight: self.in_flight.load(Relaxed),
            shared: self.shared.snapshot(),
        }
    }
}

/// This thread's stripe number, handed out round-robin the first time a thread asks.
#[inline]
pub(crate) fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed);
    }
    STRIPE.with(|stripe| *stripe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_of_an_empty_cache_are_zero() {
        let stats = CacheStats::default();
        assert!(stats.hit_rate().abs() < f64::EPSILON);
        assert!(stats.success_ratio().abs() < f64::EPSILON);
        assert_eq!(stats.mean_load_time(), Duration::ZERO);
    }

    #[test]
    fn counters_from_many_threads_add_up() {
        let core = StatsCore::new();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        core.record(Request::Hit);
                        core.record(Request::Coalesced);
                    }
                });
            }
        });
        let stats = core.snapshot();
        assert_eq!(
            (stats.hits, stats.misses, stats.coalesced),
            (8_000, 8_000, 8_000)
        );
        core.reset();
        assert_eq!(core.snapshot().requests(), 0);
    }

    #[test]
    fn ratios_of_a_disagreeing_snapshot_stay_within_bounds() {
        // Fields read at different instants (or set by hand) may disagree: no overflow, no
        // ratio above 1.
        let stats = CacheStats {
            total_entries: 2,
            error_entries: 3,
            hits: u64::MAX,
            misses: 5,
            ..CacheStats::default()
        };
        assert!(stats.success_ratio().abs() < f64::EPSILON);
        assert_eq!(stats.requests(), u64::MAX);
        assert!(stats.hit_rate() <= 1.0);
    }

    #[test]
    fn a_snapshot_never_shows_a_part_above_its_whole() {
        // The state a reader can see between two halves of an update: an error entry
        // counted in `error_entries` but no longer in `entries`, a coalesced miss counted
        // as coalesced but not yet as a miss.
        let core = StatsCore::new();
        core.error_entries.store(3, Relaxed);
        core.entries.store(2, Relaxed);
        core.stripe().coalesced.store(4, Relaxed);
        core.stripe().misses.store(1, Relaxed);
        let stats = core.snapshot();
        assert_eq!((stats.error_entries, stats.total_entries), (2, 2));
        assert_eq!((stats.coalesced, stats.misses), (1, 1));
        assert!((0.0..=1.0).contains(&stats.success_ratio()));
    }

    #[test]
    fn success_ratio_is_the_share_of_value_entries() {
        let stats = CacheStats {
            total_entries: 4,
            error_entries: 1,
            ..CacheStats::default()
        };
        assert!((stats.success_ratio() - 0.75).abs() < f64::EPSILON);
    }
}
