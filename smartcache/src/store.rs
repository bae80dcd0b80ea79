//! What a cache holds at rest: values, cached errors, and the bookkeeping that keeps them
//! within their time to live, retry window and capacity.
//!
//! Values and errors live in two maps. Errors are rare, so keeping them out of the value map
//! keeps a stored value as small as a value plus one word (see [`Entry`]). Flights (running
//! computations) are not stored here at all: see `cache.rs`.
//!
//! # Eviction policy (with a capacity)
//!
//! Second-chance FIFO ("CLOCK"): entries queue up in the order they were stored; a hit marks
//! its entry referenced. To make room, the oldest entry is evicted unless it is referenced,
//! in which case its mark is cleared and it goes to the back of the queue. Cached errors take
//! part like values. Every insertion that may grow the cache holds the queue lock and makes
//! room first, so the number of entries never exceeds the capacity, not even for a moment.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;

use crate::clock::{Clock, lock, nanos};
use crate::stats::StatsCore;

/// The hasher of every map: fast for small keys, seeded per process.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// A stored value and one word of metadata.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    value: V,
    /// When the value was stored (nanoseconds on the cache clock, always even), with the
    /// low bit set when the entry was read since the eviction queue last looked at it.
    meta: AtomicU64,
}

const REFERENCED: u64 = 1;

impl<V> Entry<V> {
    fn stored_at(&self) -> u64 {
        self.meta.load(Relaxed) & !REFERENCED
    }
}

/// A cached failure.
#[derive(Debug)]
struct Failure<E> {
    error: Arc<E>,
    /// When the computation failed (nanoseconds on the cache clock, even).
    failed_at: u64,
}

/// The limits a store keeps to, from the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) retry: Duration,
    pub(crate) ttl: Option<Duration>,
    pub(crate) capacity: Option<u64>,
}

pub(crate) struct Store<K, V, E> {
    values: DashMap<K, Entry<V>, Hasher>,
    failures: DashMap<K, Failure<E>, Hasher>,
    /// Present iff there is a capacity. Holds `(key, stored_at)` of every stored entry, oldest
    /// first, plus stale items for entries since removed or replaced.
    // INVARIANT: every entry stored while the capacity holds has an item with its key and
    // `stored_at` in the queue; insertions push under the queue lock, removals may leave
    // stale items behind (they are skipped when popped).
    queue: Option<Mutex<VecDeque<(K, u64)>>>,
    capacity: u64,
    /// Time to live of a value, in nanoseconds; `u64::MAX` for none.
    ttl: u64,
    /// Retry window of an error, in nanoseconds; 0 means errors are not stored.
    retry: u64,
    /// How often the write path sweeps out expired entries; `u64::MAX` for never.
    sweep_every: u64,
    next_sweep: AtomicU64,
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
    Error { error: Arc<E>, retry_in: Duration },
    Absent,
}

impl<K, V, E> Store<K, V, E>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    pub(crate) fn new(limits: Limits, stats: Arc<StatsCore>) -> Self {
        let ttl = limits.ttl.map_or(u64::MAX, nanos);
        let retry = nanos(limits.retry);
        let sweep_every = ttl.min(if retry == 0 { u64::MAX } else { retry });
        Self {
            values: DashMap::with_hasher(Hasher::default()),
            failures: DashMap::with_hasher(Hasher::default()),
            queue: limits.capacity.map(|_| Mutex::new(VecDeque::new())),
            capacity: limits.capacity.unwrap_or(u64::MAX),
            ttl,
            retry,
            sweep_every,
            next_sweep: AtomicU64::new(sweep_every),
            clock: Clock::new(),
            stats,
        }
    }

    /// The retry interval, in nanoseconds (0: errors are not stored).
    pub(crate) fn retry_nanos(&self) -> u64 {
        self.retry
    }

    /// The hit path: a clone of the stored value if it is fresh.
    ///
    /// NOTE: takes only a shard read lock of the value map, which no computation ever holds:
    /// a hit never waits on a computation, of its own key or any other.
    #[inline]
    pub(crate) fn fresh_value<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.fresh_value_at(key, || self.clock.now())
    }

    /// [`fresh_value`](Self::fresh_value), reading the clock with `now` only if there is a
    /// time to live.
    #[inline]
    fn fresh_value_at<Q>(&self, key: &Q, now: impl FnOnce() -> u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entry = self.values.get(key)?;
        if self.ttl != u64::MAX && self.is_expired(&entry, now()) {
            return None;
        }
        if self.queue.is_some() && entry.meta.load(Relaxed) & REFERENCED == 0 {
            // Only write when the bit is clear, so hot entries keep their cache line shared.
            entry.meta.fetch_or(REFERENCED, Relaxed);
        }
        Some(entry.value.clone())
    }

    fn is_expired(&self, entry: &Entry<V>, now: u64) -> bool {
        now.saturating_sub(entry.stored_at()) >= self.ttl
    }

    /// The miss path's look at a key at time `now`: a fresh value, a cached error inside its
    /// window, or nothing. An expired value or an error past its window is removed on the way.
    ///
    /// The caller holds the key's flight shard lock.
    pub(crate) fn lookup(&self, key: &K, now: u64) -> Lookup<V, E> {
        if let Some(value) = self.fresh_value_at(key, || now) {
            return Lookup::Value(value);
        }
        if self.ttl != u64::MAX
            && self
                .values
                .remove_if(key, |_, entry| {
                    self.forget_if(self.is_expired(entry, now), false)
                })
                .is_some()
        {
            self.stats.record_expirations(1);
        }
        // Errors are counted before they become visible (`count_insertion`), and a failure
        // is stored only under its key's flight shard lock, which the caller holds: with a
        // count of zero this key has none, and the failure map need not be probed.
        if self.stats.error_entries.load(Relaxed) == 0 {
            return Lookup::Absent;
        }
        if let Some(failure) = self.failures.get(key) {
            let age = now.saturating_sub(failure.failed_at);
            if age < self.retry {
                return Lookup::Error {
                    error: Arc::clone(&failure.error),
                    retry_in: Duration::from_nanos(self.retry - age),
                };
            }
            drop(failure); // release the shard read lock before removing from that shard
            self.remove_failure_if(key, |failure| {
                now.saturating_sub(failure.failed_at) >= self.retry
            });
        }
        Lookup::Absent
    }

    /// Stores a value at time `now`, replacing whatever the key held (value or cached error).
    pub(crate) fn insert_value(&self, key: K, value: V, now: u64) {
        self.remove_failure_if(&key, |_| true);
        let entry = |now| Entry {
            value,
            meta: AtomicU64::new(now),
        };
        self.insert_with(&self.values, key, entry, None, now);
    }

    /// Stores a failure at time `now`, unless errors are not cached (zero retry interval).
    pub(crate) fn insert_failure(&self, key: K, error: Arc<E>, now: u64) {
        if self.retry == 0 {
            return;
        }
        self.values
            .remove_if(&key, |_, _| self.forget_if(true, false));
        let failure = |failed_at| Failure { error, failed_at };
        let errors = &self.stats.error_entries;
        self.insert_with(&self.failures, key, failure, Some(errors), now);
    }

    /// Stores `make(now)` in `map` (the value map or the failure map) under `key`, making
    /// room for it first if it adds an entry, and queues it for eviction. `gauge` is a second
    /// counter the entry counts in (`error_entries` for failures).
    fn insert_with<T>(
        &self,
        map: &DashMap<K, T, Hasher>,
        key: K,
        make: impl FnOnce(u64) -> T,
        gauge: Option<&AtomicU64>,
        now: u64,
    ) {
        let Some(queue) = &self.queue else {
            self.count_insertion(map, key, make(now), gauge);
            return;
        };
        if self.capacity == 0 {
            return; // a zero capacity stores nothing: calls still share flights
        }
        // INVARIANT: every insertion that can add an entry holds this lock from making room
        // to counting the new entry, so `entries` never exceeds `capacity`. Lock order:
        // (flight shard) -> queue -> value/failure shards; nothing here takes a flight shard.
        let mut queue = lock(queue);
        if let Some(mut existing) = map.get_mut(&key) {
            // A replacement, done in place: it needs no room, so a full cache evicts nothing
            // for it. The old queue item goes stale.
            *existing = make(now);
        } else {
            self.make_room(&mut queue);
            self.count_insertion(map, key.clone(), make(now), gauge);
        }
        queue.push_back((key, now));
        if queue.len() as u64 > self.capacity.saturating_mul(2).saturating_add(32) {
            self.compact(&mut queue);
        }
    }

    /// Inserts an item, keeping `entries` (and `gauge`) right.
    fn count_insertion<T>(
        &self,
        map: &DashMap<K, T, Hasher>,
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

    /// Evicts until one more entry fits.
    fn make_room(&self, queue: &mut VecDeque<(K, u64)>) {
        let mut spared = 0;
        while self.stats.entries.load(Relaxed) >= self.capacity {
            // INVARIANT (queue): entries >= capacity > 0 means a live item is queued, since
            // removals uncount an entry before it goes (see `forget_if`). Should that ever
            // fail, stopping here is safe: with no live item there is nothing to evict.
            let Some((key, stored_at)) = queue.pop_front() else {
                return;
            };
            if let Some(entry) = self.values.get(&key) {
                let meta = entry.meta.load(Relaxed);
                if meta & !REFERENCED == stored_at
                    && meta & REFERENCED != 0
                    && spared <= queue.len()
                {
                    // Second chance: clear the mark and requeue. `spared` bounds the loop:
                    // after one full lap every mark is clear (`<=`, not `<`: the last item of
                    // the lap is spared too, so the oldest entry goes, not the newest).
                    entry.meta.fetch_and(!REFERENCED, Relaxed);
                    drop(entry); // release the shard lock before touching the queue again
                    queue.push_back((key, stored_at));
                    spared += 1;
                    continue;
                }
            }
            let evicted = self
                .values
                .remove_if(&key, |_, entry| {
                    self.forget_if(entry.stored_at() == stored_at, false)
                })
                .is_some()
                || self
                    .failures
                    .remove_if(&key, |_, failure| {
                        self.forget_if(failure.failed_at == stored_at, true)
                    })
                    .is_some();
            if evicted {
                self.stats.record_evictions(1);
            }
        }
    }

    /// Drops stale queue items (and duplicates: two insertions of one key within the same
    /// paused-clock instant), leaving one item per stored entry.
    fn compact(&self, queue: &mut VecDeque<(K, u64)>) {
        let mut seen = HashSet::with_hasher(Hasher::default());
        let mut live: VecDeque<(K, u64)> = queue
            .drain(..)
            .rev()
            .filter(|(key, stored_at)| {
                let current = self
                    .values
                    .get(key)
                    .map(|e| e.stored_at())
                    .or_else(|| self.failures.get(key).map(|f| f.failed_at));
                current == Some(*stored_at) && seen.insert(key.clone())
            })
            .collect();
        live.make_contiguous().reverse();
        *queue = live;
    }

    /// Removes the key's value and cached error; whether there was either.
    pub(crate) fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self
            .values
            .remove_if(key, |_, _| self.forget_if(true, false));
        let error = self
            .failures
            .remove_if(key, |_, _| self.forget_if(true, true));
        value.is_some() || error.is_some()
    }

    fn remove_failure_if(&self, key: &K, predicate: impl FnOnce(&Failure<E>) -> bool) {
        // A failure is counted before it becomes visible (`count_insertion`): with none
        // counted, none can be removed, and the map need not be probed.
        if self.stats.error_entries.load(Relaxed) == 0 {
            return;
        }
        self.failures
            .remove_if(key, |_, failure| self.forget_if(predicate(failure), true));
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        // Hold the queue lock so no insertion interleaves: the queue is emptied together
        // with the maps, keeping the queue invariant.
        let queue = self.queue.as_ref().map(lock);
        self.values.retain(|_, _| !self.forget_if(true, false));
        self.failures.retain(|_, _| !self.forget_if(true, true));
        if let Some(mut queue) = queue {
            queue.clear();
        }
    }

    /// Removes expired values and errors past their window (at time `now`), at most once per
    /// sweep period.
    ///
    /// Called on the write path, so a cache that is written to never keeps dead entries for
    /// longer than about one period, with no background task. A sweep visits every entry,
    /// one shard at a time.
    pub(crate) fn sweep_if_due(&self, now: u64) {
        if self.sweep_every == u64::MAX {
            return;
        }
        let due = self.next_sweep.load(Relaxed);
        // Only the caller that moves the deadline sweeps; the others go on.
        if now < due
            || self
                .next_sweep
                .compare_exchange(due, now.saturating_add(self.sweep_every), Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        let mut expired = 0;
        if self.ttl != u64::MAX {
            self.values.retain(|_, entry| {
                let gone = self.forget_if(self.is_expired(entry, now), false);
                expired += u64::from(gone);
                !gone
            });
        }
        self.failures.retain(|_, failure| {
            let gone = now.saturating_sub(failure.failed_at) >= self.retry;
            !self.forget_if(gone, true)
        });
        self.stats.record_expirations(expired);
    }

    /// Uncounts an entry (a cached error if `error`) that is about to be removed, if
    /// `remove`; returns `remove`. For the predicates of `remove_if` and `retain`.
    // INVARIANT: called under the map's shard lock, *before* the entry goes: the counters
    // never include an entry that is already gone, so `make_room` never evicts for an entry
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
