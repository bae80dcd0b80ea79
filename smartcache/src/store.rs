//! What a cache holds at rest: values, cached errors, and the upkeep that keeps them within
//! their time to live, retry window and capacity.
//!
//! Values and errors live in two maps. Errors are rare, so keeping them out of the value map
//! keeps a stored value as small as a value plus one word (see [`Entry`]). Flights (running
//! computations) are not stored here at all: see `cache.rs`.
//!
//! The state machines behind the upkeep each have their own module: the eviction policy of a
//! cache with a capacity (`policy.rs`, an adaptive W-TinyLFU) and the expiry order of values
//! and cached errors (`expiry.rs`). Both live behind one lock, the *upkeep lock*, taken by
//! every insertion that has to queue its entry (a capacity, a time to live, or a cached
//! error) and by the expiry step; each holder does a bounded amount of work, so no call pays
//! for the whole cache. An unbounded cache without a time to live stores values with no lock
//! but the map's.
//!
//! # Memory
//!
//! Cached errors are bounded even without a capacity ([`DEFAULT_MAX_CACHED_ERRORS`]), oldest
//! first. `clear` swaps every map shard for an empty one, so the memory comes back at once;
//! a shard emptied by expiry is shrunk by a later upkeep step once it holds few entries. The
//! large blocks that leaves (old tables of 64 KiB and more, emptied or holding plain data)
//! are freed by the reclaimer thread (`reclaim.rs`), so that no caller pays for the heap
//! trims their frees can cause.

use std::borrow::Borrow;
use std::hash::Hash;
use std::mem::needs_drop;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::KeyHasher;
use crate::blocks::BlockQueue;
use crate::clock::{Clock, lock, nanos};
use crate::expiry::{self, ErrorQueue, ExpiryQueue, Popped};
use crate::hasher::MapHasher;
use crate::key::BorrowedKey;
use crate::listener::{Listener, Notices, RemovalCause};
use crate::minisim::HitSamples;
use crate::policy::{Evicted, Node, Policy, Residents, Stamp};
use crate::reclaim;
use crate::resilience::{self, Backoff, Hint, Jitter};
use crate::shard_map::{self, ShardMap, table_bytes};
use crate::stats::StatsCore;

/// The hasher of every map (the builder's [`KeyHasher`]).
pub(crate) type Hasher = MapHasher;

/// The default bound on cached errors ([`AsyncSmartCacheBuilder::max_cached_errors`]).
///
/// [`AsyncSmartCacheBuilder::max_cached_errors`]: crate::AsyncSmartCacheBuilder::max_cached_errors
pub const DEFAULT_MAX_CACHED_ERRORS: u64 = 100_000;

/// A stored value and one word of metadata.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    value: V,
    /// When the value was stored (nanoseconds on the cache clock, a multiple of 16), with the
    /// four low bits counting hits (saturating at 15) since the eviction policy last looked
    /// at the entry.
    meta: AtomicU64,
}

/// The hit count bits of [`Entry::meta`].
const HITS: u64 = 15;

impl<V> Entry<V> {
    fn stored_at(&self) -> u64 {
        self.meta.load(Relaxed) & !HITS
    }
}

/// A cached failure.
#[derive(Debug)]
struct Failure<E> {
    error: Arc<E>,
    /// When the computation failed (nanoseconds on the cache clock, a multiple of 16).
    failed_at: u64,
    /// When its retry window ends. Past it the failure is no longer answered, but with
    /// backoff it is kept a while longer (see `Store::linger`) for its count.
    until: u64,
    /// Consecutive failures of the key, this one included.
    failures: u32,
}

/// The limits a store keeps to, from the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) retry: Duration,
    pub(crate) ttl: Option<Duration>,
    pub(crate) capacity: Option<u64>,
    pub(crate) max_errors: u64,
    pub(crate) hasher: KeyHasher,
    /// The cap on backoff (`None`: the retry interval, no growth).
    pub(crate) max_retry: Option<Duration>,
    /// Refresh-ahead after this age.
    pub(crate) refresh: Option<Duration>,
    /// Stale-if-error window past the time to live.
    pub(crate) stale: Option<Duration>,
}

/// The state behind the upkeep lock.
#[derive(Debug)]
struct Upkeep<K> {
    /// Present iff there is a capacity.
    policy: Option<Policy<K>>,
    /// Present iff there is a time to live.
    values: Option<ExpiryQueue<K>>,
    errors: ErrorQueue<K>,
    /// The next map shard an upkeep step looks at for shrinking.
    shrink_cursor: usize,
    /// Upkeep steps in a row that found no shard to shrink; below the shard count, a step
    /// runs on every write even with nothing due, until the cursor has made a lap.
    idle_shrinks: usize,
}

impl<K> Upkeep<K> {
    fn due(&self) -> u64 {
        let values = self.values.as_ref().map_or(u64::MAX, ExpiryQueue::due);
        values.min(self.errors.due())
    }
}

pub(crate) struct Store<K, V, E> {
    values: ShardMap<K, Entry<V>>,
    failures: ShardMap<K, Failure<E>>,
    // INVARIANT (lock order): (flight shard) -> upkeep -> value/failure shards. Every
    // insertion that queues its entry holds the upkeep lock from making room to queueing, so
    // `entries` never exceeds the capacity and every such entry has its items queued.
    upkeep: Mutex<Upkeep<K>>,
    /// When the next expiry step may find an item due; `u64::MAX` when none is queued.
    /// Written under the upkeep lock.
    upkeep_due: AtomicU64,
    capacity: Option<u64>,
    /// With a capacity: the hits sampled for the policy's simulations (`minisim.rs`).
    samples: Option<HitSamples>,
    /// Time to live of a value, in nanoseconds; `u64::MAX` for none.
    ttl: u64,
    /// How long a value is kept: its time to live plus the stale-if-error window.
    keep: u64,
    /// The age at which a value is due for refresh-ahead; `u64::MAX` for never.
    refresh: u64,
    /// Whether a hit reads the clock (a time to live, or refresh-ahead).
    timed: bool,
    /// Whether a hit looks at its entry's time word at all: `timed`, or a capacity (the
    /// policy's hit count). One test per hit, decided once per cache; a plain hit skips both.
    hit_meta: bool,
    /// Retry windows of errors; a first failure's is `backoff.retry` (0: none stored).
    backoff: Backoff,
    /// How long a failure is kept past its window, to remember its count for the next
    /// failure's backoff: the cap when intervals grow, else 0.
    linger: u64,
    hint: Option<Hint<E>>,
    jitter: Jitter,
    max_errors: u64,
    /// Removals for the eviction listener, told at the start of a later write.
    notices: Notices<K>,
    pub(crate) clock: Clock,
    pub(crate) stats: Arc<StatsCore>,
}

impl<K, V, E> std::fmt::Debug for Store<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// What a store says about a key that has no fresh value.
pub(crate) enum Lookup<V, E> {
    Value(V),
    Error {
        error: Arc<E>,
        retry_in: Duration,
        /// The last good value, if stale-if-error serves it in place of the error, and how
        /// long ago it expired.
        stale: Option<(V, Duration)>,
    },
    /// Nothing to answer: compute. `failures` is the key's count of consecutive failures
    /// so far (for the backoff of the next one).
    Absent {
        failures: u32,
    },
}

/// A hit: the value, and whether it is due for a refresh-ahead.
pub(crate) struct Hit<V> {
    pub(crate) value: V,
    pub(crate) refresh_due: bool,
}

impl<V> Hit<V> {
    /// A hit of a form that cannot start a refresh-ahead.
    #[inline]
    pub(crate) fn plain(value: V) -> Self {
        Self {
            value,
            refresh_due: false,
        }
    }
}

impl<K, V, E> Store<K, V, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + 'static,
    E: Send + Sync + 'static,
{
    pub(crate) fn new(limits: Limits, stats: Arc<StatsCore>, hint: Option<Hint<E>>) -> Self {
        let ttl = limits.ttl.map_or(u64::MAX, nanos);
        let keep = ttl.saturating_add(limits.stale.map_or(0, nanos));
        let refresh = limits.refresh.map_or(u64::MAX, nanos);
        let backoff = Backoff::new(limits.retry, limits.max_retry);
        let retry = backoff.retry;
        let hasher = MapHasher::new(limits.hasher);
        let (shards, fitted) = shard_layout(limits.capacity);
        let timed = ttl != u64::MAX || refresh != u64::MAX;
        Self {
            values: ShardMap::with_layout(hasher.clone(), shards, fitted),
            failures: ShardMap::new(hasher, shards),
            upkeep: Mutex::new(Upkeep {
                policy: limits.capacity.map(Policy::new),
                values: (ttl != u64::MAX).then(|| ExpiryQueue::new(keep)),
                errors: ErrorQueue::new(retry),
                shrink_cursor: 0,
                idle_shrinks: usize::MAX,
            }),
            upkeep_due: AtomicU64::new(u64::MAX),
            capacity: limits.capacity,
            samples: (limits.capacity)
                .map(|capacity| HitSamples::new(capacity, stats.stripe_count())),
            ttl,
            keep,
            refresh,
            timed,
            hit_meta: timed || limits.capacity.is_some(),
            backoff,
            linger: if backoff.grows() { backoff.max } else { 0 },
            hint,
            jitter: Jitter::new(),
            max_errors: limits.max_errors,
            notices: Notices::new(None),
            clock: Clock::new(),
            stats,
        }
    }

    /// The retry window, in nanoseconds, of a key's `failures`-th consecutive failure
    /// (`error`, at `now`): grown by backoff, or the error's own hint. 0: not cached.
    ///
    /// Runs the user's hint: call it outside every lock.
    pub(crate) fn failure_window(&self, key: &K, error: &E, failures: u32, now: u64) -> u64 {
        let hint = self.hint.and_then(|hint| hint(error));
        let random = if self.backoff.grows() {
            self.jitter.draw(key, now)
        } else {
            0
        };
        self.backoff.interval(failures, hint, random)
    }

    /// The store, telling removals by the capacity bound and by expiry to `listener`.
    pub(crate) fn with_listener(mut self, listener: Option<Listener<K>>) -> Self {
        self.notices = Notices::new(listener);
        self
    }

    /// The hasher of the maps, for the flight map to share.
    pub(crate) fn hasher(&self) -> Hasher {
        self.values.hasher().clone()
    }

    /// The hit path: a clone of the stored value if it is fresh.
    ///
    /// NOTE: takes only a shard read lock of the value map, which no computation ever holds:
    /// a hit never waits on a computation, of its own key or any other.
    #[inline(always)]
    #[allow(clippy::inline_always)] // the hit path: see `fresh_value_by`
    pub(crate) fn fresh_value<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hit = self.fresh_value_by::<_, false>(
            key,
            |stored| stored.borrow() == key,
            || self.clock.now(),
        );
        hit.map(|hit| hit.value)
    }

    /// [`fresh_value`](Self::fresh_value) by a borrowed form of the key, which need not be a
    /// `Borrow` of it (a tuple of references, say).
    #[inline(always)]
    #[allow(clippy::inline_always)] // the hit path: see `fresh_value_by`
    pub(crate) fn fresh_value_equivalent<Q>(&self, key: &Q) -> Option<V>
    where
        Q: BorrowedKey<K> + ?Sized,
    {
        let hit = self.fresh_value_by::<_, false>(
            key,
            |stored| key.equivalent(stored),
            || self.clock.now(),
        );
        hit.map(|hit| hit.value)
    }

    /// [`fresh_value`](Self::fresh_value), telling whether the value is due for a
    /// refresh-ahead: for the shared forms, the only ones that can start one.
    #[inline(always)]
    #[allow(clippy::inline_always)] // the hit path: see `fresh_value_by`
    pub(crate) fn fresh_hit<Q>(&self, key: &Q) -> Option<Hit<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.fresh_value_by::<_, true>(key, |stored| stored.borrow() == key, || self.clock.now())
    }

    /// [`fresh_hit`](Self::fresh_hit) by a borrowed form of the key.
    #[inline(always)]
    #[allow(clippy::inline_always)] // the hit path: see `fresh_value_by`
    pub(crate) fn fresh_hit_equivalent<Q>(&self, key: &Q) -> Option<Hit<V>>
    where
        Q: BorrowedKey<K> + ?Sized,
    {
        self.fresh_value_by::<_, true>(key, |stored| key.equivalent(stored), || self.clock.now())
    }

    /// The fresh value of the key hashed from `key` and matched by `matches`, reading the
    /// clock with `now` only if there is a time to live or refresh-ahead; whether it is due
    /// for a refresh is looked at only if `REFRESH` (a caller that cannot start one does not
    /// pay for the look).
    ///
    /// NOTE: `inline(always)`, as are the `fresh_*` forms that call it, so that a hit runs
    /// inside the caller's first poll: as a function of its own it cost a call and six saved
    /// registers per hit. With the time and capacity work one test away (`hit_meta`), a `u64`
    /// hit went from 181 to 157 instructions (callgrind, `zipf-profile`).
    #[inline(always)]
    #[allow(clippy::inline_always)] // measured: see the NOTE
    fn fresh_value_by<Q: Hash + ?Sized, const REFRESH: bool>(
        &self,
        key: &Q,
        matches: impl Fn(&K) -> bool,
        now: impl FnOnce() -> u64,
    ) -> Option<Hit<V>> {
        // The same steps as `ShardMap::read` (hash, shard, probe), but with `matches` as the
        // equality, so that a borrowed key that is no `Borrow` of `K` can look up too. The key
        // is hashed once, here; the probe reuses the hash.
        let hash = self.values.hash(key);
        let guard = self.values.shard(hash).read();
        let (_, entry) = guard.find(hash, |(stored, _)| matches(stored))?;
        let mut refresh_due = false;
        if self.hit_meta {
            refresh_due = self.hit_meta_checks::<REFRESH>(entry, hash, now)?;
        }
        Some(Hit {
            value: entry.value.clone(),
            refresh_due,
        })
    }

    /// The time and capacity part of a hit on `entry` (hashed to `hash`): `None` if its time
    /// to live has passed, else whether it is due for a refresh-ahead (looked at only if
    /// `REFRESH`). With a capacity, counts the hit for the eviction policy.
    #[inline]
    fn hit_meta_checks<const REFRESH: bool>(
        &self,
        entry: &Entry<V>,
        hash: u64,
        now: impl FnOnce() -> u64,
    ) -> Option<bool> {
        let meta = entry.meta.load(Relaxed);
        let mut refresh_due = false;
        if self.timed {
            let age = now().saturating_sub(meta & !HITS);
            if age >= self.ttl {
                return None;
            }
            refresh_due = REFRESH && resilience::refresh_due(age, self.refresh, hash ^ meta);
        }
        if let Some(samples) = &self.samples {
            if meta & HITS != HITS {
                // NOTE: only written while the count is below 15 (fifteen hits per policy
                // visit), so a hot entry's cache line stays shared between cores. A lost race
                // loses one count, never carries into the time bits: the exchange is from the
                // value read.
                _ = (entry.meta).compare_exchange_weak(meta, meta + 1, Relaxed, Relaxed);
            }
            samples.hit(hash);
        }
        Some(refresh_due)
    }

    /// Whether a value is past its time to live and its stale-if-error window: dead.
    fn is_dead(&self, entry: &Entry<V>, now: u64) -> bool {
        now.saturating_sub(entry.stored_at()) >= self.keep
    }

    /// The value of `key` if it is past its time to live but within its stale-if-error
    /// window at `now`, and how long ago it expired.
    pub(crate) fn stale_value(&self, key: &K, now: u64) -> Option<(V, Duration)> {
        if self.keep == self.ttl {
            return None; // no stale-if-error window
        }
        self.values
            .read(key, |entry| {
                let age = now.saturating_sub(entry.stored_at());
                (age >= self.ttl && age < self.keep)
                    .then(|| (entry.value.clone(), Duration::from_nanos(age - self.ttl)))
            })
            .flatten()
    }

    /// Whether `key`'s value is due for a refresh-ahead at `now` (and within its time to
    /// live); reads no more than its time word.
    pub(crate) fn needs_refresh(&self, key: &K, now: u64) -> bool {
        let hash = self.values.hash(key);
        self.values
            .read_hashed(hash, key, |entry| {
                let meta = entry.meta.load(Relaxed);
                let age = now.saturating_sub(meta & !HITS);
                age < self.ttl && resilience::refresh_due(age, self.refresh, hash ^ meta)
            })
            .unwrap_or(false)
    }

    /// The key's count of consecutive failures so far, in its window or past it.
    pub(crate) fn failures_so_far(&self, key: &K) -> u32 {
        self.failure_record(key).map_or(0, |(_, failures)| failures)
    }

    /// Whether `key` may start a refresh at `now`: no failure of it is inside its window.
    /// With the count of its consecutive failures so far.
    pub(crate) fn may_refresh(&self, key: &K, now: u64) -> Option<u32> {
        if self.stats.error_entries.load(Relaxed) == 0 {
            return Some(0);
        }
        match self.failures.read(key, |f| (f.until, f.failures)) {
            Some((until, _)) if now < until => None,
            Some((_, failures)) => Some(failures),
            None => Some(0),
        }
    }

    /// The miss path's look at a key at time `now`: a fresh value, a cached error inside its
    /// window, or nothing. An expired value or an error past its window is removed on the way.
    ///
    /// The caller holds the key's flight shard lock.
    pub(crate) fn lookup(&self, key: &K, now: u64) -> Lookup<V, E> {
        if let Some(hit) = self.fresh_value_by::<_, false>(key, |stored| stored == key, || now) {
            return Lookup::Value(hit.value);
        }
        if self.ttl != u64::MAX
            && self
                .values
                .remove_if(key, |entry| self.forget_if(self.is_dead(entry, now), false))
                .is_some()
        {
            self.stats.record_expirations(1);
            self.notices.push(|| key.clone(), RemovalCause::Expired);
        }
        // Errors are counted before they become visible (`count_insertion`), and a failure
        // is stored only under its key's flight shard lock, which the caller holds: with a
        // count of zero this key has none, and the failure map need not be probed.
        if self.stats.error_entries.load(Relaxed) == 0 {
            return Lookup::Absent { failures: 0 };
        }
        // Read under the shard read lock, released before the value map is read.
        let found = self.failures.read(key, |failure| {
            let error = (now < failure.until).then(|| Arc::clone(&failure.error));
            (error, failure.until, failure.failures)
        });
        let Some((error, until, failures)) = found else {
            return Lookup::Absent { failures: 0 };
        };
        if let Some(error) = error {
            let retry_in = until - now;
            return Lookup::Error {
                error,
                retry_in: Duration::from_nanos(retry_in),
                stale: self.stale_value(key, now),
            };
        }
        // Kept for its count while it lingers (backoff); removed once past that.
        let removed = self.remove_failure_if(key, |failure| {
            now >= failure.until.saturating_add(self.linger)
        });
        if removed {
            self.notices.push(|| key.clone(), RemovalCause::Expired);
            return Lookup::Absent { failures: 0 };
        }
        Lookup::Absent { failures }
    }

    /// Stores a value at time `now`, replacing whatever the key held (value or cached error).
    pub(crate) fn insert_value(&self, key: K, value: V, now: u64) {
        self.remove_failure_if(&key, |_| true);
        let entry = Entry {
            value,
            meta: AtomicU64::new(now),
        };
        if self.capacity.is_none() && self.ttl == u64::MAX {
            // Nothing to queue: no lock but the map's.
            self.count_insertion(&self.values, key, entry, None);
            return;
        }
        let mut upkeep = lock(&self.upkeep);
        let stamp = Stamp::value(now);
        let Some(key) = self.insert_locked(&mut upkeep, &self.values, key, entry, stamp, None)
        else {
            return;
        };
        if let Some(queue) = &mut upkeep.values {
            let live = self.stats.entries.load(Relaxed) - self.stats.error_entries.load(Relaxed);
            queue.push(key, now, now, live, |key, stamp| self.value_is(key, stamp));
        }
        self.publish_due(&upkeep);
    }

    /// Stores a failure at time `now`, cached for `window` nanoseconds (see
    /// [`failure_window`](Self::failure_window)) as the key's `failures`-th in a row, unless
    /// errors are not cached (zero window) or no room can be made for it. The key's value
    /// stays if it is still fresh (a failed refresh) or within its stale-if-error window.
    pub(crate) fn insert_failure(
        &self,
        key: K,
        error: Arc<E>,
        now: u64,
        window: u64,
        failures: u32,
    ) {
        if window == 0 || self.max_errors == 0 {
            return;
        }
        self.values.remove_if(&key, |entry| {
            self.forget_if(self.is_dead(entry, now), false)
        });
        let mut upkeep = lock(&self.upkeep);
        // The bound on cached errors, oldest first (a replacement needs no room).
        while self.stats.error_entries.load(Relaxed) >= self.max_errors
            && !self.failures.contains_key(&key)
        {
            let evict = |key: &K, stamp| self.evict_failure(key, stamp);
            if !upkeep.errors.remove_oldest(expiry::STEP, evict) {
                return; // only stale items within reach: this failure is not cached
            }
        }
        // A multiple of 16, as clock readings are: once the clock reads `now + retry_in`, the
        // window is over (a window ending between two readings would outlast its `retry_in`).
        let until = now.saturating_add(window).saturating_add(15) & !15;
        let failure = Failure {
            error,
            failed_at: now,
            until,
            failures,
        };
        let errors = &self.stats.error_entries;
        let stamp = Stamp::error(now);
        let Some(key) = self.insert_locked(
            &mut upkeep,
            &self.failures,
            key,
            failure,
            stamp,
            Some(errors),
        ) else {
            return;
        };
        let live = self.stats.error_entries.load(Relaxed);
        let due = until.saturating_add(self.linger);
        upkeep
            .errors
            .push(key, due, now, live, |key, due| self.failure_due(key, due));
        self.publish_due(&upkeep);
    }

    /// Under the upkeep lock: stores `item` in `map` (the value map or the failure map) under
    /// `key`, making room for it first if it adds an entry to a bounded cache, and queues it
    /// in the policy with `stamp`. `gauge` is a second counter the entry counts in
    /// (`error_entries` for failures). The key back if it was stored.
    fn insert_locked<T: Send + 'static>(
        &self,
        upkeep: &mut MutexGuard<'_, Upkeep<K>>,
        map: &ShardMap<K, T>,
        key: K,
        item: T,
        stamp: Stamp,
        gauge: Option<&AtomicU64>,
    ) -> Option<K> {
        let Some(policy) = &mut upkeep.policy else {
            self.count_insertion(map, key.clone(), item, gauge);
            return Some(key);
        };
        let capacity = self.capacity.unwrap_or(u64::MAX);
        if capacity == 0 {
            return None; // a zero capacity stores nothing: calls still share flights
        }
        // A replacement, done in place: it needs no room, so a full cache evicts nothing for
        // it. Its old node goes stale.
        if let Err(item) = map.replace(&key, item) {
            // INVARIANT: `entries` only rises under this lock (bounded caches insert nowhere
            // else), so once below the capacity here it stays below until the insertion.
            while self.stats.entries.load(Relaxed) >= capacity {
                if policy.evict_one(self) == Evicted::Nothing {
                    // No live node within the look budget (stale ones piled up at the
                    // heads): storing nothing keeps the bound and the call bounded.
                    policy.tidy(0, self);
                    return None;
                }
            }
            self.count_insertion(map, key.clone(), item, gauge);
        }
        let live = self.stats.entries.load(Relaxed);
        let hash = self.values.hash(&key);
        if let Some(samples) = &self.samples {
            policy.replay_hits(samples);
        }
        policy.admit(
            Node {
                key: key.clone(),
                stamp,
            },
            hash,
            live,
        );
        policy.tidy(live, self);
        Some(key)
    }

    /// Inserts an item, keeping `entries` (and `gauge`) right.
    fn count_insertion<T: Send + 'static>(
        &self,
        map: &ShardMap<K, T>,
        key: K,
        item: T,
        gauge: Option<&AtomicU64>,
    ) {
        // INVARIANT: the entry is counted *before* it becomes visible, so that a concurrent
        // removal (which uncounts it) can never take a counter below zero; a replacement
        // gives the count back.
        let counters = std::iter::once(&self.stats.entries).chain(gauge);
        counters.clone().for_each(|c| _ = c.fetch_add(1, Relaxed));
        if map.insert(key, item).is_some() {
            counters.for_each(|c| _ = c.fetch_sub(1, Relaxed));
        }
    }

    /// Whether the value stored for `key` is the one stored at `stamp`.
    fn value_is(&self, key: &K, stamp: u64) -> bool {
        self.values.read(key, Entry::stored_at) == Some(stamp)
    }

    /// When a failure goes from the store: at the end of its window and lingering.
    fn removal_due(&self, failure: &Failure<E>) -> u64 {
        failure.until.saturating_add(self.linger)
    }

    /// Whether the failure cached for `key` is the one queued to go at `due`.
    fn failure_due(&self, key: &K, due: u64) -> bool {
        self.failures.read(key, |f| self.removal_due(f)) == Some(due)
    }

    /// Evicts the failure queued to go at `due` for `key` (the error bound), counting it.
    fn evict_failure(&self, key: &K, due: u64) -> Popped {
        let removed = (self.failures).remove_if(key, |failure| {
            self.forget_if(self.removal_due(failure) == due, true)
        });
        if removed.is_some() {
            self.stats.record_evictions(1);
            self.notices.push(|| key.clone(), RemovalCause::Evicted);
            Popped::Removed
        } else {
            Popped::Stale
        }
    }

    /// Removes the key's value and cached error; whether there was either.
    pub(crate) fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.values.remove_if(key, |_| self.forget_if(true, false));
        let error = self.failures.remove_if(key, |_| self.forget_if(true, true));
        value.is_some() || error.is_some()
    }

    /// Removes the key's cached error if `predicate` holds for it; whether it did.
    fn remove_failure_if(&self, key: &K, predicate: impl FnOnce(&Failure<E>) -> bool) -> bool {
        // A failure is counted before it becomes visible (`count_insertion`): with none
        // counted, none can be removed, and the map need not be probed.
        if self.stats.error_entries.load(Relaxed) == 0 {
            return false;
        }
        self.failures
            .remove_if(key, |failure| self.forget_if(predicate(failure), true))
            .is_some()
    }

    /// The retry window (nanoseconds) and consecutive-failure count of `key`'s cached
    /// failure, inside its window or lingering past it.
    pub(crate) fn failure_record(&self, key: &K) -> Option<(u64, u32)> {
        // As in `lookup`: with no error counted, none is stored.
        if self.stats.error_entries.load(Relaxed) == 0 {
            return None;
        }
        (self.failures).read(key, |failure| {
            (failure.until - failure.failed_at, failure.failures)
        })
    }

    /// Whether a value and whether a cached error is stored for `key`, fresh or not.
    pub(crate) fn holds(&self, key: &K) -> (bool, bool) {
        (
            self.values.contains_key(key),
            self.failures.contains_key(key),
        )
    }

    /// Removes every entry.
    ///
    /// Each map shard's table is swapped for an empty one under its write lock, which is held
    /// for a constant time: hits on other shards never wait, hits on the same shard wait for
    /// one swap. The old tables (and queues) are dropped after every lock is released, and
    /// user `Drop` code runs outside the locks, before `clear` returns. Those of 64 KiB and
    /// more whose items need no drop (plain data: nothing but memory to free) go to the
    /// reclaimer (`reclaim.rs`) instead, which frees them at once on its own thread: at a
    /// million `u64` entries the caller's frees and heap trims took 6 to 11 ms of its CPU.
    pub(crate) fn clear(&self) {
        // Hold the upkeep lock so no queued insertion interleaves: queues and maps are
        // emptied together, keeping the upkeep invariant.
        let mut upkeep = lock(&self.upkeep);
        let nodes = upkeep.policy.as_mut().map(Policy::clear);
        let value_items = upkeep.values.as_mut().map(ExpiryQueue::take);
        let error_items = upkeep.errors.take();
        let values = self.take_tables(&self.values, false);
        let failures = self.take_tables(&self.failures, true);
        self.upkeep_due.store(u64::MAX, Relaxed);
        drop(upkeep);
        // INVARIANT: handed over only where `needs_drop` says that dropping the items runs no
        // user code. Cached errors hold an `Arc` each: their tables are dropped here.
        let (plain_values, plain_keys) = (!needs_drop::<(K, Entry<V>)>(), !needs_drop::<K>());
        for (table, bytes) in values {
            reclaim::release(table, if plain_values { bytes } else { 0 });
        }
        drop(failures);
        for queue in nodes.into_iter().flatten() {
            let bytes = if plain_keys { queue.footprint() } else { 0 };
            reclaim::release(queue, bytes);
        }
        for queue in value_items.into_iter().chain(error_items) {
            release_queue(queue, plain_keys);
        }
    }

    /// Swaps every shard of `map` for an empty table, uncounting its entries (cached errors
    /// if `errors`); the old tables back, each with the bytes it holds.
    fn take_tables<T: Send + 'static>(
        &self,
        map: &ShardMap<K, T>,
        errors: bool,
    ) -> Vec<(impl Send + 'static + use<K, V, E, T>, usize)> {
        map.shards()
            .iter()
            .map(|shard| {
                let mut table = shard.write();
                let old = std::mem::take(&mut *table);
                // INVARIANT: uncounted under the shard lock, as `forget_if` does.
                let count = old.len() as u64;
                self.stats.entries.fetch_sub(count, Relaxed);
                if errors {
                    self.stats.error_entries.fetch_sub(count, Relaxed);
                }
                let bytes = table_bytes::<(K, T)>(old.num_buckets());
                (old, bytes)
            })
            .collect()
    }

    /// One upkeep step at time `now`, if an expiry may be due: removes expired values and
    /// errors past their window, at most [`expiry::STEP`] queue items, and shrinks the map
    /// shards that this left nearly empty (and one more, round robin).
    ///
    /// Called on the write path, so a cache that is written to never keeps dead entries
    /// for long, with no background task, and no call does more than a bounded step. A step
    /// that removed entries ends with [`settle_allocator`], so that the allocator's deferred
    /// work for the memory it freed stays in the step too.
    pub(crate) fn sweep_if_due(&self, now: u64) {
        // NOTE: the callers hold no lock of the cache here, so the listener may use it.
        self.notices.deliver();
        if now < self.upkeep_due.load(Relaxed) {
            return;
        }
        let mut upkeep = lock(&self.upkeep);
        let mut expired = 0;
        let mut removed_errors = 0;
        let mut budget = expiry::STEP;
        let (mut value_shards, mut failure_shards) = (ShardSet::default(), ShardSet::default());
        if let Some(queue) = &mut upkeep.values {
            budget -= queue.expire(now, budget, |key, stamp| {
                let gone = self.values.remove_if(key, |entry| {
                    self.forget_if(entry.stored_at() == stamp, false)
                });
                if gone.is_none() {
                    return Popped::Stale;
                }
                expired += 1;
                value_shards.insert(self.values.shard_index(self.values.hash(key)));
                self.notices.push(|| key.clone(), RemovalCause::Expired);
                Popped::Removed
            });
        }
        upkeep.errors.expire(now, budget, |key, due| {
            let gone = self.failures.remove_if(key, |failure| {
                self.forget_if(self.removal_due(failure) == due, true)
            });
            if gone.is_none() {
                return Popped::Stale;
            }
            failure_shards.insert(self.failures.shard_index(self.failures.hash(key)));
            self.notices.push(|| key.clone(), RemovalCause::Expired);
            removed_errors += 1;
            Popped::Removed
        });
        upkeep.shrink_cursor = upkeep.shrink_cursor.wrapping_add(1);
        let cursor = upkeep.shrink_cursor;
        value_shards.insert(cursor);
        failure_shards.insert(cursor);
        // NOTE: one shrink per map and call at most: shards fill evenly, so many of them
        // cross the threshold in the same call, and shrinking them all at once would be one
        // long call. The others are shrunk by later steps: after a shrink, steps run on every
        // write (nothing due or not) until the cursor has made a lap without one.
        let old_values = value_shards.find_map(|shard| Self::shrink_shard(&self.values, shard));
        let old_failures =
            failure_shards.find_map(|shard| Self::shrink_shard(&self.failures, shard));
        upkeep.idle_shrinks = if old_values.is_some() || old_failures.is_some() {
            0
        } else {
            upkeep.idle_shrinks.saturating_add(1)
        };
        self.publish_due(&upkeep);
        drop(upkeep);
        // The emptied tables of the shrunk shards, freed outside every lock (see
        // `shrink_shard`).
        if let Some((table, bytes)) = old_values {
            reclaim::release(table, bytes);
        }
        if let Some((table, bytes)) = old_failures {
            reclaim::release(table, bytes);
        }
        self.stats.record_expirations(expired);
        if expired + removed_errors > 0 {
            settle_allocator();
        }
    }

    /// Publishes when the next upkeep step is due: when a queue head is, or at once while
    /// shards may be left to shrink (see `sweep_if_due`). Under the upkeep lock.
    fn publish_due(&self, upkeep: &Upkeep<K>) {
        let lap = self.values.shards().len().max(self.failures.shards().len());
        let due = if upkeep.idle_shrinks < lap {
            0
        } else {
            upkeep.due()
        };
        self.upkeep_due.store(due, Relaxed);
    }

    /// Shrinks shard `cursor` (modulo the shard count) of `map` if it holds few entries in a
    /// table far too large for them: its entries (at most [`SHRINK_MAX_LEN`]) move into a new
    /// table sized for them, under the shard's write lock. The old table back, emptied, with
    /// the bytes it holds, if it did.
    ///
    /// The caller frees the old table with `reclaim::release`, after releasing the upkeep
    /// lock: with glibc, the `free` of a large block can trim megabytes off the heap in the
    /// call that makes it (measured: up to 6.6 ms of CPU in one expiry step at a million
    /// entries, when `shrink_to` freed it here), and the reclaimer thread pays that instead.
    fn shrink_shard<T: Send + 'static>(
        map: &ShardMap<K, T>,
        cursor: usize,
    ) -> Option<(impl Send + 'static + use<K, V, E, T>, usize)> {
        let shards = map.shards();
        let shard = &shards[cursor % shards.len()];
        let worth =
            |len: usize, capacity: usize| len <= SHRINK_MAX_LEN && capacity > 4 * len.max(4);
        {
            let table = shard.read();
            if !worth(table.len(), table.capacity()) {
                return None;
            }
        }
        let mut table = shard.write();
        let len = table.len();
        if !worth(len, table.capacity()) {
            return None;
        }
        let hash = |(key, _): &(K, _)| map.hash(key);
        let mut old = std::mem::take(&mut *table);
        table.reserve(len, hash);
        for item in old.drain() {
            table.insert_unique(hash(&item), item, hash);
        }
        drop(table);
        // INVARIANT: `old` holds no entry (all moved above), so dropping it runs no user code
        // and only frees its buffer, as `reclaim::release` requires.
        let bytes = table_bytes::<(K, T)>(old.num_buckets());
        Some((old, bytes))
    }

    /// Uncounts an entry (a cached error if `error`) that is about to be removed, if
    /// `remove`; returns `remove`. For the predicates of `remove_if`.
    // INVARIANT: called under the map's shard lock, *before* the entry goes: the counters
    // never include an entry that is already gone, so making room never evicts for an entry
    // that a concurrent removal has taken out, and `entries` never reads above the capacity.
    // (Insertions count *before* the entry is visible: the counter never goes below zero.)
    fn forget_if(&self, remove: bool, error: bool) -> bool {
        if remove {
            self.stats.entries.fetch_sub(1, Relaxed);
            if error {
                self.stats.error_entries.fetch_sub(1, Relaxed);
            }
        }
        remove
    }
}

/// The shard count of the maps, and the buckets each table of the value map is meant to
/// end with (0: no layout, an unbounded cache).
///
/// An unbounded cache takes enough that one shard holds some 16,000 entries at a million (a
/// shard's table grows by rehashing all it holds, under its write lock, in the caller's
/// path), within 8 to 256, and four per core at least. A bounded cache takes, from that many
/// to [`MAX_SHARDS`], the count that fills every table close to its maximum load once the
/// cache is full ([`shard_map::bounded_layout`]), with tables as small as that allows: at a
/// capacity of a million, 145 shards of 2^13 buckets, 1.2 buckets per entry, where 64 shards
/// had 2.1. Small tables keep short the rebuild that a worn table needs now and then (see
/// `ShardMap::insert`), a few thousand entries' moves. A capacity too small for that many
/// shards keeps the unbounded count.
fn shard_layout(capacity: Option<u64>) -> (usize, usize) {
    let expected = capacity.unwrap_or(1 << 20);
    let wanted = usize::try_from(expected / 16_384).unwrap_or(256);
    let fewest = std::thread::available_parallelism()
        .map_or(8, |n| (n.get() * 4).next_power_of_two())
        .clamp(8, 256);
    let unbounded = wanted.next_power_of_two().clamp(fewest, 256);
    capacity
        .and_then(|capacity| shard_map::bounded_layout(capacity, fewest..=MAX_SHARDS))
        .unwrap_or((unbounded, 0))
}

/// The most shards a map has.
const MAX_SHARDS: usize = 1024;

/// Has the allocator settle the small blocks an upkeep step freed, in the step: one request of
/// [`SETTLE_BYTES`], freed at once.
///
/// glibc's malloc keeps freed small blocks unmerged ("fastbins") and merges all of them when
/// the next request of 1 KiB or more comes (or a large block is freed). An upkeep step frees up
/// to 64 entries and what their values and errors own, and a cache that drains makes few large
/// requests, so the merging piles up and lands on one call: measured at a million cached
/// errors, a `malloc(1616)` for a growing map shard took 11 ms merging the blocks of some 1,600
/// earlier steps. With this request after every step that removed entries, each merge covers
/// about one step's blocks. With other allocators it is one allocation and free.
#[inline(never)]
fn settle_allocator() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(SETTLE_BYTES)));
}

/// Above glibc's largest per-thread cached size (1,032 bytes) and its small-request range, and
/// far below its mmap threshold: a request that consolidates.
const SETTLE_BYTES: usize = 4096;

/// Drops an upkeep queue that `clear` took: on the reclaimer thread if it is large and `plain`
/// (its items need no drop: see `reclaim::release`), else here.
fn release_queue<T: Send + 'static>(queue: BlockQueue<T>, plain: bool) {
    let bytes = if plain { queue.footprint() } else { 0 };
    reclaim::release(queue, bytes);
}

/// A set of shard indices (below [`MAX_SHARDS`]).
#[derive(Default)]
struct ShardSet([u64; MAX_SHARDS / 64]);

impl ShardSet {
    fn insert(&mut self, shard: usize) {
        let shard = shard % MAX_SHARDS;
        self.0[shard / 64] |= 1 << (shard % 64);
    }

    /// Visits the shards in order until `visit` returns something; that back.
    fn find_map<R>(&self, mut visit: impl FnMut(usize) -> Option<R>) -> Option<R> {
        for (word, bits) in self.0.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                if let Some(found) = visit(word * 64 + bit) {
                    return Some(found);
                }
                bits &= bits - 1;
            }
        }
        None
    }
}

/// A shard is shrunk only when it holds at most this many entries, so that the rehash under
/// its write lock stays in the tens of microseconds.
const SHRINK_MAX_LEN: usize = 1024;

impl<K, V, E> Residents<K> for Store<K, V, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + 'static,
    E: Send + Sync + 'static,
{
    fn take_hits(&self, node: &Node<K>) -> Option<u32> {
        if node.stamp.is_error() {
            return self.is_live(node).then_some(0);
        }
        self.values
            .read(&node.key, |entry| {
                let meta = entry.meta.load(Relaxed);
                if Stamp::value(meta & !HITS) != node.stamp {
                    return None;
                }
                if meta & HITS == 0 {
                    return Some(0);
                }
                // Both bit fields of the old word are read from one atomic step: a hit
                // between the load above and here is not lost.
                let hits = entry.meta.fetch_and(!HITS, Relaxed) & HITS;
                Some(u32::try_from(hits).unwrap_or(0))
            })
            .flatten()
    }

    fn evict(&self, node: &Node<K>) -> bool {
        let evicted = if node.stamp.is_error() {
            (self.failures)
                .remove_if(&node.key, |failure| {
                    self.forget_if(Stamp::error(failure.failed_at) == node.stamp, true)
                })
                .is_some()
        } else {
            (self.values)
                .remove_if(&node.key, |entry| {
                    self.forget_if(Stamp::value(entry.stored_at()) == node.stamp, false)
                })
                .is_some()
        };
        if evicted {
            self.stats.record_evictions(1);
            self.notices
                .push(|| node.key.clone(), RemovalCause::Evicted);
        }
        evicted
    }

    fn is_live(&self, node: &Node<K>) -> bool {
        if node.stamp.is_error() {
            self.failures.read(&node.key, |f| Stamp::error(f.failed_at)) == Some(node.stamp)
        } else {
            self.values.read(&node.key, |e| Stamp::value(e.stored_at())) == Some(node.stamp)
        }
    }

    fn hash(&self, key: &K) -> u64 {
        self.values.hash(key)
    }
}
