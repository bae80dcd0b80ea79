//! Model-based test: random sequences of operations on a cache with a paused clock, each
//! answer and every statistic compared with a small sequential model of the documented
//! semantics (cache.rs, store.rs, flight.rs).
//!
//! The model is deliberately naive: ordered maps of values and cached errors with their
//! timestamps, and the expiry queues of `expiry.rs` (storing order, at most 64 items popped
//! per write). With a capacity, the model does not choose the victim (the adaptive policy's
//! choices are checked against a reference in `policy.rs`'s own tests): it predicts *that*
//! one entry is evicted, never the one being stored, and learns *which* from the cache after
//! the operation; every answer, counter and the bound are still checked exactly. Concurrency enters through herds (N callers of one key, which
//! must share one computation) and cancelled callers (a lone caller abandoning its flight, a
//! leader cancelled while others wait); the paused clock makes their interleaving exact.
//!
//! Two resilience settings are modelled too (`resilience.rs`). Stale-if-error: values are
//! kept (and queued for expiry) until `ttl + stale_if_error`, and a failed recompute of a
//! stale value, and every call inside that failure's window, answers the value. Backoff
//! (`max_retry_interval`): a key's consecutive failures are counted, a failure lingers past
//! its window for its count, and errors expire through the lanes of `expiry::ErrorQueue`.
//! The jitter is random, so the model learns each new failure's window from the cache
//! (`__failure`) right after the operation that stored it, as it learns eviction victims,
//! and checks it against the bounds of backoff; the failure count it predicts. Refresh-ahead
//! (background timing) is not modelled.
//!
//! `SMARTCACHE_MODEL_CASES` sets the number of random cases (default 128).

mod reliability_support;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use smartcache::{AsyncSmartCache, CacheError, CacheStats};
use tokio::task::JoinHandle;

type Key = u8;
/// Keys are drawn from `0..KEYS`.
const KEYS: Key = 5;
/// A value names its key and the operation whose computation or prime produced it.
type Val = (Key, u32);
type Cache = AsyncSmartCache<Key, Val, String>;
type Reply = Result<Val, CacheError<String>>;

const MS: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// The settings of the cache under test.
#[derive(Debug, Clone, Copy)]
struct Config {
    ttl_ms: Option<u64>,
    retry_ms: u64,
    capacity: Option<u64>,
    /// `stale_if_error`, if set.
    stale_ms: Option<u64>,
    /// `max_retry_interval`, if set.
    max_retry_ms: Option<u64>,
}

/// What a computation does once its delay has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Value,
    Error,
    Panic,
}

/// Which method starts the computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `get_or_compute`: a cancelled driver hands over to a waiter that computes again.
    Local,
    /// `get_or_compute_shared`: a cancelled driver hands its future to a waiter.
    Shared,
    /// `get_or_compute_sync`: no delay.
    Sync,
}

#[derive(Debug, Clone)]
enum Op {
    /// One caller.
    Get {
        key: Key,
        form: Form,
        ends: Ends,
        delay_ms: u64,
    },
    /// `get`: never computes.
    Peek {
        key: Key,
    },
    /// `callers` callers of one key, all started before the computation ends.
    Herd {
        key: Key,
        callers: usize,
        form: Form,
        ends: Ends,
        delay_ms: u64,
    },
    /// One caller cancelled by a timeout before its computation ends: the flight is abandoned.
    Abandon {
        key: Key,
        delay_ms: u64,
        after_ms: u64,
    },
    /// A leader cancelled by a timeout while `waiters` wait on its flight.
    CancelLeader {
        key: Key,
        waiters: usize,
        form: Form,
        ends: Ends,
        delay_ms: u64,
        after_ms: u64,
    },
    Prime {
        key: Key,
    },
    Invalidate {
        key: Key,
    },
    Clear,
    Advance {
        ms: u64,
    },
}

/// An answer, as compared between the cache and the model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Value(Val),
    Failed(String),
    Cached {
        error: String,
        retry_in: Duration,
    },
    Panicked(String),
    /// The caller was cancelled by its timeout.
    TimedOut,
    /// `get` found nothing.
    Nothing,
    /// `invalidate` returned this.
    Removed(bool),
    /// Operations with nothing to answer.
    Done,
}

impl Answer {
    fn of(reply: Reply) -> Self {
        match reply {
            Ok(value) => Self::Value(value),
            Err(CacheError::Failed(error)) => Self::Failed((*error).clone()),
            Err(CacheError::Cached { error, retry_in }) => Self::Cached {
                error: (*error).clone(),
                retry_in,
            },
            Err(CacheError::Panicked { message }) => Self::Panicked(message),
            Err(other) => panic!("an answer this test does not know: {other:?}"),
        }
    }
}

fn error_text(tag: u32) -> String {
    format!("error {tag}")
}

fn panic_text(tag: u32) -> String {
    format!("injected panic {tag}")
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// The statistics the model predicts, compared field by field with `CacheStats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Figures {
    hits: u64,
    misses: u64,
    coalesced: u64,
    load_successes: u64,
    load_failures: u64,
    cached_error_hits: u64,
    evictions: u64,
    expirations: u64,
    primes: u64,
    refreshes: u64,
    refresh_failures: u64,
    stale_hits: u64,
    total_load_time: Duration,
    total_entries: u64,
    error_entries: u64,
    in_flight: u64,
}

impl Figures {
    fn of(stats: &CacheStats) -> Self {
        Self {
            hits: stats.hits,
            misses: stats.misses,
            coalesced: stats.coalesced,
            load_successes: stats.load_successes,
            load_failures: stats.load_failures,
            cached_error_hits: stats.cached_error_hits,
            evictions: stats.evictions,
            expirations: stats.expirations,
            primes: stats.primes,
            refreshes: stats.refreshes,
            refresh_failures: stats.refresh_failures,
            stale_hits: stats.stale_hits,
            total_load_time: stats.total_load_time,
            total_entries: stats.total_entries,
            error_entries: stats.error_entries,
            in_flight: stats.in_flight,
        }
    }
}

#[derive(Debug)]
struct StoredValue {
    value: Val,
    stored_at: u64,
}

/// Items an upkeep step pops per write (`expiry::STEP`).
const UPKEEP_STEP: u32 = 64;

/// Lanes of the error queue (`expiry::ErrorQueue`).
const ERROR_LANES: usize = 8;

#[derive(Debug)]
struct StoredError {
    tag: u32,
    failed_at: u64,
    /// The end of its retry window: learnt from the cache right after the operation that
    /// stored it (the jitter is random), `u64::MAX` until then.
    until: u64,
    /// Consecutive failures of the key, this one included.
    failures: u32,
}

/// How a caller answered from the store was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// A fresh value: a hit.
    Hit,
    /// A cached error inside its window: a cached error hit.
    CachedError,
    /// A cached error inside its window, answered with the key's stale value
    /// (stale-if-error): a cached error hit and a stale hit.
    Stale,
}

/// What a caller finds before computing.
enum Begin {
    Answer(Answer, Found),
    /// A flight starts; the key's consecutive failures so far (a failure lingering past its
    /// window for backoff).
    Compute {
        failures: u32,
    },
}

/// An item the last operation queued for expiry; the model queues it once it has learnt
/// the operation's evictions (and, for a failure, its window), as the cache queued it after
/// making room.
#[derive(Debug, Clone, Copy)]
enum Queued {
    Value(Key),
    Failure(Key),
}

/// The documented semantics, one call at a time. Times are nanoseconds since the cache was
/// built.
#[derive(Debug)]
struct Model {
    ttl: Option<u64>,
    /// How long a value is kept (its time to live plus the stale-if-error window):
    /// removed once this old, served stale between `ttl` and this. `u64::MAX` without a ttl.
    keep: u64,
    retry: u64,
    /// The cap on backoff, at least `retry`; equal to it: no growth and no jitter.
    max_retry: u64,
    /// How long a failure stays past its window, for its count: `max_retry` when intervals
    /// grow, else 0.
    linger: u64,
    capacity: Option<u64>,
    now: u64,
    values: BTreeMap<Key, StoredValue>,
    errors: BTreeMap<Key, StoredError>,
    /// Expiry order of values (with a time to live): `(key, stamp)` in storing order, each
    /// due `keep` after its stamp. Items of entries since removed or replaced stay behind and
    /// are skipped: the stamp tells them apart.
    value_queue: VecDeque<(Key, u64)>,
    /// Expiry order of cached errors: `(key, due)` with `due` the end of the window plus
    /// the linger, one FIFO lane per doubling of `due - failed_at` over the retry interval.
    error_lanes: [VecDeque<(Key, u64)>; ERROR_LANES],
    /// Evictions counted whose victim the model has not yet learnt from the cache.
    pending_evictions: u64,
    /// The item the last operation stored, to queue once its evictions are learnt.
    queued: Option<Queued>,
    /// The errors of failures whose callers were answered with a stale value.
    served_stale: BTreeSet<String>,
    figures: Figures,
}

/// `t` rounded up to a multiple of 16, as the cache rounds the end of a retry window.
fn round_up_16(t: u64) -> u64 {
    t.saturating_add(15) & !15
}

impl Model {
    fn new(config: Config) -> Self {
        let ttl = config.ttl_ms.map(|ms| ms * MS);
        let retry = config.retry_ms * MS;
        let max_retry = config.max_retry_ms.map_or(retry, |ms| ms * MS).max(retry);
        let keep = ttl.map_or(u64::MAX, |ttl| ttl + config.stale_ms.unwrap_or(0) * MS);
        Self {
            ttl,
            keep,
            retry,
            max_retry,
            linger: if max_retry > retry { max_retry } else { 0 },
            capacity: config.capacity,
            now: 0,
            values: BTreeMap::new(),
            errors: BTreeMap::new(),
            value_queue: VecDeque::new(),
            error_lanes: Default::default(),
            pending_evictions: 0,
            queued: None,
            served_stale: BTreeSet::new(),
            figures: Figures::default(),
        }
    }

    fn expired(&self, stored_at: u64) -> bool {
        self.ttl.is_some_and(|ttl| self.now - stored_at >= ttl)
    }

    /// Past its time to live and its stale-if-error window: removed by a look-up or a
    /// failure of its key, and by the expiry step.
    fn dead(&self, stored_at: u64) -> bool {
        self.now - stored_at >= self.keep
    }

    /// A fresh value.
    fn fresh(&mut self, key: Key) -> Option<Val> {
        let entry = self.values.get(&key)?;
        (!self.expired(entry.stored_at)).then_some(entry.value)
    }

    /// The key's value if it is past its time to live but inside its stale-if-error window.
    fn stale(&self, key: Key) -> Option<Val> {
        let ttl = self.ttl?;
        let entry = self.values.get(&key)?;
        let age = self.now - entry.stored_at;
        (self.keep != ttl && age >= ttl && age < self.keep).then_some(entry.value)
    }

    /// When a cached failure goes from the store: the end of its window and its linger.
    fn removal_due(&self, error: &StoredError) -> u64 {
        error.until.saturating_add(self.linger)
    }

    fn remove_error(&mut self, key: Key) {
        if self.errors.remove(&key).is_some() {
            self.figures.total_entries -= 1;
            self.figures.error_entries -= 1;
        }
    }

    /// The upkeep step of a write: pops due items from the head of the value queue, then of
    /// each error lane in order, at most [`UPKEEP_STEP`] in all, removing their entries if
    /// still current.
    fn sweep_if_due(&mut self) {
        let mut budget = UPKEEP_STEP;
        if self.ttl.is_some() {
            let keep = self.keep;
            // `filter` rather than a let chain: the MSRV (1.85) predates let chains.
            while let Some(&(key, stamp)) = self
                .value_queue
                .front()
                .filter(|&&(_, stamp)| budget > 0 && stamp.saturating_add(keep) <= self.now)
            {
                self.value_queue.pop_front();
                budget -= 1;
                if self.values.get(&key).is_some_and(|v| v.stored_at == stamp) {
                    self.values.remove(&key);
                    self.figures.total_entries -= 1;
                    self.figures.expirations += 1;
                }
            }
        }
        for lane in 0..ERROR_LANES {
            while let Some(&(key, due)) = self.error_lanes[lane]
                .front()
                .filter(|&&(_, due)| budget > 0 && due <= self.now)
            {
                self.error_lanes[lane].pop_front();
                budget -= 1;
                if self
                    .errors
                    .get(&key)
                    .is_some_and(|e| self.removal_due(e) == due)
                {
                    self.remove_error(key);
                }
            }
        }
    }

    /// Counts one caller answered from the store.
    fn count(&mut self, found: Found) {
        match found {
            Found::Hit => self.figures.hits += 1,
            Found::CachedError => self.figures.cached_error_hits += 1,
            Found::Stale => {
                self.figures.cached_error_hits += 1;
                self.figures.stale_hits += 1;
            }
        }
    }

    /// The first caller of an operation: fast path, sweep, then the store.
    fn begin(&mut self, key: Key) -> Begin {
        if let Some(value) = self.fresh(key) {
            self.count(Found::Hit);
            return Begin::Answer(Answer::Value(value), Found::Hit);
        }
        self.sweep_if_due();
        if self
            .values
            .get(&key)
            .is_some_and(|v| self.dead(v.stored_at))
        {
            self.values.remove(&key);
            self.figures.total_entries -= 1;
            self.figures.expirations += 1;
        }
        let mut failures = 0;
        if let Some(error) = self.errors.get(&key) {
            if self.now < error.until {
                let (found, answer) = match self.stale(key) {
                    Some(value) => (Found::Stale, Answer::Value(value)),
                    None => (
                        Found::CachedError,
                        Answer::Cached {
                            error: error_text(error.tag),
                            retry_in: Duration::from_nanos(error.until - self.now),
                        },
                    ),
                };
                self.count(found);
                return Begin::Answer(answer, found);
            }
            if self.now >= self.removal_due(error) {
                self.remove_error(key);
            } else {
                // Lingering past its window (backoff): kept for its count.
                failures = error.failures;
            }
        }
        self.figures.misses += 1;
        self.figures.in_flight += 1;
        Begin::Compute { failures }
    }

    /// The end of a flight started at `started` after `failures` consecutive failures of the
    /// key: the clock is at its end. The answer, and whether it is a stale value.
    fn finish(
        &mut self,
        key: Key,
        tag: u32,
        ends: Ends,
        started: u64,
        failures: u32,
    ) -> (Answer, bool) {
        self.figures.in_flight -= 1;
        self.figures.total_load_time += Duration::from_nanos(self.now - started);
        match ends {
            Ends::Value => {
                self.figures.load_successes += 1;
                self.store_value(key, (key, tag));
                (Answer::Value((key, tag)), false)
            }
            Ends::Error => {
                self.figures.load_failures += 1;
                // Read before the failure is stored (which may make room by evicting it).
                let stale = self.stale(key);
                self.store_error(key, tag, failures.saturating_add(1));
                match stale {
                    Some(value) => {
                        self.served_stale.insert(error_text(tag));
                        (Answer::Value(value), true)
                    }
                    None => (Answer::Failed(error_text(tag)), false),
                }
            }
            Ends::Panic => {
                self.figures.load_failures += 1;
                (Answer::Panicked(panic_text(tag)), false)
            }
        }
    }

    fn store_value(&mut self, key: Key, value: Val) {
        self.remove_error(key);
        let replacing = self.values.contains_key(&key);
        if !self.make_room(key, replacing) {
            return;
        }
        let replaced = self.values.insert(
            key,
            StoredValue {
                value,
                stored_at: self.now,
            },
        );
        if replaced.is_none() {
            self.figures.total_entries += 1;
        }
        if self.ttl.is_some() {
            self.queued = Some(Queued::Value(key));
        }
    }

    /// Stores the key's `failures`-th consecutive failure (if errors are cached): its window
    /// is learnt from the cache after the operation ([`Model::learn_failure`]).
    fn store_error(&mut self, key: Key, tag: u32, failures: u32) {
        if self.retry == 0 {
            return;
        }
        // Only a dead value goes: a fresh or stale one stays beside the failure.
        if self
            .values
            .get(&key)
            .is_some_and(|v| self.dead(v.stored_at))
        {
            self.values.remove(&key);
            self.figures.total_entries -= 1;
        }
        let replacing = self.errors.contains_key(&key);
        if !self.make_room(key, replacing) {
            return;
        }
        let error = StoredError {
            tag,
            failed_at: self.now,
            until: u64::MAX,
            failures,
        };
        if self.errors.insert(key, error).is_none() {
            self.figures.total_entries += 1;
            self.figures.error_entries += 1;
        }
        self.queued = Some(Queued::Failure(key));
    }

    /// With a capacity: one entry is evicted if the cache is full (unless the store
    /// `replaces` an entry in place, which needs no room); which one, the model learns from
    /// the cache after the operation ([`Model::learn_evictions`]). Whether the entry may be
    /// stored (a zero capacity stores nothing).
    fn make_room(&mut self, _key: Key, replaces: bool) -> bool {
        let Some(capacity) = self.capacity else {
            return true;
        };
        if capacity == 0 {
            return false;
        }
        let live = self.figures.total_entries + self.pending_evictions;
        if !replaces && self.figures.total_entries >= capacity {
            assert!(live >= capacity);
            self.figures.total_entries -= 1;
            self.figures.evictions += 1;
            self.pending_evictions += 1;
        }
        true
    }

    /// After an operation: the entries the model holds and the cache no longer does are the
    /// victims of the evictions counted; there must be exactly that many, and the cache must
    /// hold nothing the model does not.
    fn learn_evictions(&mut self, cache: &Cache) -> Result<(), String> {
        let mut evicted = 0;
        for key in 0..KEYS {
            let (value, error) = cache.__stored(&key);
            match (self.values.contains_key(&key), value) {
                (true, false) => {
                    self.values.remove(&key);
                    evicted += 1;
                }
                (false, true) => return Err(format!("the cache holds a value for {key}")),
                _ => {}
            }
            match (self.errors.contains_key(&key), error) {
                (true, false) => {
                    self.errors.remove(&key);
                    self.figures.error_entries -= 1;
                    evicted += 1;
                }
                (false, true) => return Err(format!("the cache holds an error for {key}")),
                _ => {}
            }
        }
        if evicted != self.pending_evictions {
            return Err(format!(
                "{evicted} entries gone from the cache, {} evictions expected",
                self.pending_evictions
            ));
        }
        self.pending_evictions = 0;
        Ok(())
    }

    /// After an operation and its evictions: queues the entry it stored, as the cache did
    /// once it had made room. A failure's window is learnt from the cache first: its count
    /// must be the model's, its window within the bounds of backoff with jitter.
    fn learn_queued(&mut self, cache: &Cache) -> Result<(), String> {
        match self.queued.take() {
            None => Ok(()),
            Some(Queued::Value(key)) => {
                let Some(stamp) = self.values.get(&key).map(|v| v.stored_at) else {
                    return Err(format!("the value of {key} the model stored is gone"));
                };
                let live = self.figures.total_entries - self.figures.error_entries;
                let values = &self.values;
                push_tidy(
                    &mut self.value_queue,
                    (key, stamp),
                    self.now,
                    self.keep,
                    live,
                    |k, stamp| values.get(&k).is_some_and(|v| v.stored_at == stamp),
                );
                Ok(())
            }
            Some(Queued::Failure(key)) => self.learn_failure(cache, key),
        }
    }

    fn learn_failure(&mut self, cache: &Cache, key: Key) -> Result<(), String> {
        let Some(error) = self.errors.get(&key) else {
            return Err(format!("the failure of {key} the model stored is gone"));
        };
        let (failed_at, failures) = (error.failed_at, error.failures);
        let Some((window, count)) = cache.__failure(&key) else {
            return Err(format!("the cache has no failure record for {key}"));
        };
        if count != failures {
            return Err(format!(
                "failure {count} in a row for {key}, model {failures}"
            ));
        }
        let window = u64::try_from(window.as_nanos()).expect("a short window");
        // `Backoff::interval`: `retry · 2^(failures−1)` capped, jittered by up to a fifth
        // either way and capped again; then `until` is rounded up to a multiple of 16.
        let (low, high) = if self.max_retry > self.retry {
            let doubled = self
                .retry
                .checked_mul(1 << failures.saturating_sub(1).min(63))
                .map_or(self.max_retry, |d| d.min(self.max_retry));
            let spread = doubled / 5;
            (doubled - spread, (doubled + spread).min(self.max_retry))
        } else {
            (self.retry, self.retry)
        };
        let rounded = |raw: u64| round_up_16(failed_at + raw) - failed_at;
        if window < rounded(low) || window > rounded(high) {
            return Err(format!(
                "failure {failures} of {key}: window {window} ns outside [{}, {}]",
                rounded(low),
                rounded(high)
            ));
        }
        let until = failed_at + window;
        let due = until.saturating_add(self.linger);
        if let Some(error) = self.errors.get_mut(&key) {
            error.until = until;
        }
        // `ErrorQueue::push`: the lane is the bit length of `(due - now) / retry`, capped.
        let doublings = due.saturating_sub(failed_at) / self.retry.max(1);
        let lane = ((u64::BITS - doublings.leading_zeros()) as usize).min(ERROR_LANES - 1);
        let live = self.figures.error_entries;
        let (errors, linger) = (&self.errors, self.linger);
        push_tidy(
            &mut self.error_lanes[lane],
            (key, due),
            self.now,
            0,
            live,
            |k, due| {
                errors
                    .get(&k)
                    .is_some_and(|e| e.until.saturating_add(linger) == due)
            },
        );
        Ok(())
    }

    fn invalidate(&mut self, key: Key) -> bool {
        let value = self.values.remove(&key).is_some();
        let error = self.errors.remove(&key).is_some();
        self.figures.total_entries -= u64::from(value) + u64::from(error);
        self.figures.error_entries -= u64::from(error);
        value || error
    }

    fn clear(&mut self) {
        self.values.clear();
        self.errors.clear();
        self.value_queue.clear();
        self.error_lanes.iter_mut().for_each(VecDeque::clear);
        self.figures.total_entries = 0;
        self.figures.error_entries = 0;
    }

    /// The predicted answers (first caller first) and number of computations started.
    fn apply(&mut self, op: &Op, tag: u32) -> (Vec<Answer>, usize) {
        match *op {
            Op::Get {
                key,
                ends,
                delay_ms,
                ..
            } => self.flight(key, 1, tag, ends, delay_ms * MS, 1, false),
            Op::Peek { key } => {
                let found = self.fresh(key);
                if found.is_some() {
                    self.figures.hits += 1;
                } else {
                    self.figures.misses += 1;
                }
                (vec![found.map_or(Answer::Nothing, Answer::Value)], 0)
            }
            Op::Herd {
                key,
                callers,
                ends,
                delay_ms,
                ..
            } => self.flight(key, callers, tag, ends, delay_ms * MS, 1, false),
            Op::Abandon { key, after_ms, .. } => match self.begin(key) {
                Begin::Answer(answer, _) => (vec![answer], 0),
                Begin::Compute { .. } => {
                    // The only caller left: the flight is dropped, nothing is counted as a load.
                    self.now += after_ms * MS;
                    self.figures.in_flight -= 1;
                    (vec![Answer::TimedOut], 1)
                }
            },
            Op::CancelLeader {
                key,
                waiters,
                form,
                ends,
                delay_ms,
                after_ms,
            } => {
                if form == Form::Shared {
                    // The same future goes on: it ends `delay` after it started.
                    self.flight(key, waiters + 1, tag, ends, delay_ms * MS, 1, true)
                } else {
                    // A waiter takes over when the leader is cancelled and runs its own.
                    let took = (after_ms + delay_ms) * MS;
                    self.flight(key, waiters + 1, tag, ends, took, 2, true)
                }
            }
            Op::Prime { key } => {
                self.sweep_if_due();
                self.store_value(key, (key, tag));
                self.figures.primes += 1;
                (vec![Answer::Done], 0)
            }
            Op::Invalidate { key } => (vec![Answer::Removed(self.invalidate(key))], 0),
            Op::Clear => {
                self.clear();
                (vec![Answer::Done], 0)
            }
            Op::Advance { ms } => {
                self.now += ms * MS;
                (vec![Answer::Done], 0)
            }
        }
    }

    /// `callers` callers of `key` at this instant; if they miss, one flight that ends
    /// `took` later after `computations` computations started, its leader cancelled
    /// before the end if `leader_cancelled`.
    #[allow(clippy::too_many_arguments)]
    fn flight(
        &mut self,
        key: Key,
        callers: usize,
        tag: u32,
        ends: Ends,
        took: u64,
        computations: usize,
        leader_cancelled: bool,
    ) -> (Vec<Answer>, usize) {
        match self.begin(key) {
            Begin::Answer(answer, found) => {
                // Every caller finds the same at the same instant, and is counted the same.
                for _ in 1..callers {
                    self.count(found);
                }
                (vec![answer; callers], 0)
            }
            Begin::Compute { failures } => {
                let joined = callers as u64 - 1;
                self.figures.misses += joined;
                self.figures.coalesced += joined;
                let started = self.now;
                self.now += took;
                let (answer, stale) = self.finish(key, tag, ends, started, failures);
                let mut answers = vec![answer; callers];
                if leader_cancelled {
                    answers[0] = Answer::TimedOut;
                }
                if stale {
                    // Every caller answered gets the stale value.
                    self.figures.stale_hits += (callers - usize::from(leader_cancelled)) as u64;
                }
                (answers, computations)
            }
        }
    }
}

/// Queues `item` as `expiry::ExpiryQueue::push` does at time `now`: past twice `live` plus
/// 64 items, up to four items from the head are tidied (stale ones dropped, live ones moved
/// to the back), stopping at a head that is due (`period` after its time).
fn push_tidy(
    queue: &mut VecDeque<(Key, u64)>,
    item: (Key, u64),
    now: u64,
    period: u64,
    live: u64,
    is_live: impl Fn(Key, u64) -> bool,
) {
    queue.push_back(item);
    if queue.len() as u64 > live * 2 + 64 {
        for _ in 0..4 {
            // A due head stays for the expiry step.
            if queue
                .front()
                .is_some_and(|&(_, head)| head.saturating_add(period) <= now)
            {
                break;
            }
            let Some((key, stamp)) = queue.pop_front() else {
                break;
            };
            if is_live(key, stamp) {
                queue.push_back((key, stamp));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real cache, driven on a paused current-thread runtime
// ---------------------------------------------------------------------------------------

async fn computation(
    key: Key,
    tag: u32,
    ends: Ends,
    delay_ms: u64,
    started: Arc<AtomicUsize>,
) -> Result<Val, String> {
    started.fetch_add(1, SeqCst);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    match ends {
        Ends::Value => Ok((key, tag)),
        Ends::Error => Err(error_text(tag)),
        Ends::Panic => panic!("{}", panic_text(tag)),
    }
}

/// One call of `key` in the given form.
async fn call(
    cache: &Cache,
    key: Key,
    form: Form,
    tag: u32,
    ends: Ends,
    delay_ms: u64,
    started: &Arc<AtomicUsize>,
) -> Reply {
    let started = Arc::clone(started);
    match form {
        Form::Local => {
            (cache.get_or_compute(key, || computation(key, tag, ends, delay_ms, started))).await
        }
        Form::Shared => {
            let compute = || computation(key, tag, ends, delay_ms, started);
            cache.get_or_compute_shared(key, compute).await
        }
        Form::Sync => {
            let compute = || {
                started.fetch_add(1, SeqCst);
                match ends {
                    Ends::Value => Ok((key, tag)),
                    Ends::Error => Err(error_text(tag)),
                    Ends::Panic => panic!("{}", panic_text(tag)),
                }
            };
            cache.get_or_compute_sync(key, compute).await
        }
    }
}

/// A spawned call, cancelled by a timeout of `after_ms` if given.
fn spawn_call(
    cache: &Arc<Cache>,
    key: Key,
    (form, tag, ends, delay_ms): (Form, u32, Ends, u64),
    after_ms: Option<u64>,
    started: &Arc<AtomicUsize>,
) -> JoinHandle<Option<Reply>> {
    let (cache, started) = (Arc::clone(cache), Arc::clone(started));
    tokio::spawn(async move {
        let reply = call(&cache, key, form, tag, ends, delay_ms, &started);
        match after_ms {
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), reply)
                .await
                .ok(),
            None => Some(reply.await),
        }
    })
}

/// Yields until `done` holds. Yielding keeps tasks ready, so a paused clock does not move.
async fn settle(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    for _ in 0..10_000 {
        if done() {
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
    Err(format!("never settled: {what}"))
}

/// Starts a leader, then `waiters` callers once the leader is computing (or has answered).
/// The replies, leader first; `None` for a caller cancelled by its timeout.
async fn herd(
    cache: &Arc<Cache>,
    key: Key,
    call: (Form, u32, Ends, u64),
    waiters: usize,
    leader_after_ms: Option<u64>,
    started: &Arc<AtomicUsize>,
) -> Result<Vec<Option<Reply>>, String> {
    let leader = spawn_call(cache, key, call, leader_after_ms, started);
    settle("the leader computes", || {
        leader.is_finished() || cache.stats().in_flight == 1
    })
    .await?;
    let coalesced = cache.stats().coalesced;
    let rest: Vec<_> = (0..waiters)
        .map(|_| spawn_call(cache, key, call, None, started))
        .collect();
    settle("the waiters joined", || {
        rest.iter().all(JoinHandle::is_finished)
            || cache.stats().coalesced == coalesced + waiters as u64
    })
    .await?;
    let mut replies = Vec::new();
    for handle in std::iter::once(leader).chain(rest) {
        replies.push(handle.await.map_err(|e| format!("a caller failed: {e}"))?);
    }
    Ok(replies)
}

/// What one operation did: its answers, the replies of its get calls, the computations
/// it started.
struct Performed {
    answers: Vec<Answer>,
    replies: Vec<Reply>,
    computations: usize,
}

/// Runs one operation on the cache.
async fn perform(cache: &Arc<Cache>, op: &Op, tag: u32) -> Result<Performed, String> {
    let started = Arc::new(AtomicUsize::new(0));
    let replies: Vec<Option<Reply>> = match *op {
        Op::Get {
            key,
            form,
            ends,
            delay_ms,
        } => vec![Some(
            call(cache, key, form, tag, ends, delay_ms, &started).await,
        )],
        Op::Herd {
            key,
            callers,
            form,
            ends,
            delay_ms,
        } => {
            herd(
                cache,
                key,
                (form, tag, ends, delay_ms),
                callers - 1,
                None,
                &started,
            )
            .await?
        }
        Op::Abandon {
            key,
            delay_ms,
            after_ms,
        } => {
            let reply = call(
                cache,
                key,
                Form::Local,
                tag,
                Ends::Value,
                delay_ms,
                &started,
            );
            vec![
                tokio::time::timeout(Duration::from_millis(after_ms), reply)
                    .await
                    .ok(),
            ]
        }
        Op::CancelLeader {
            key,
            waiters,
            form,
            ends,
            delay_ms,
            after_ms,
        } => {
            let call = (form, tag, ends, delay_ms);
            herd(cache, key, call, waiters, Some(after_ms), &started).await?
        }
        Op::Peek { key } => {
            let answer = cache.get(&key).map_or(Answer::Nothing, Answer::Value);
            return Ok(Performed::other(answer));
        }
        Op::Prime { key } => {
            cache.prime(key, (key, tag));
            return Ok(Performed::other(Answer::Done));
        }
        Op::Invalidate { key } => {
            return Ok(Performed::other(Answer::Removed(cache.invalidate(&key))));
        }
        Op::Clear => {
            cache.clear();
            return Ok(Performed::other(Answer::Done));
        }
        Op::Advance { ms } => {
            tokio::time::advance(Duration::from_millis(ms)).await;
            return Ok(Performed::other(Answer::Done));
        }
    };
    let answers = (replies.iter())
        .map(|reply| reply.clone().map_or(Answer::TimedOut, Answer::of))
        .collect();
    Ok(Performed {
        answers,
        replies: replies.into_iter().flatten().collect(),
        computations: started.load(SeqCst),
    })
}

impl Performed {
    fn other(answer: Answer) -> Self {
        Self {
            answers: vec![answer],
            replies: Vec::new(),
            computations: 0,
        }
    }
}

/// A failure's error is one `Arc`, handed to every caller of its flight and then to every
/// caller answered from the cache: the original, never a copy. The callers of a failure in
/// `served_stale` got a stale value instead: its first cached answer stands for the original.
fn check_errors_are_shared(
    replies: &[Reply],
    errors: &mut HashMap<String, Arc<String>>,
    served_stale: &BTreeSet<String>,
) -> Result<(), String> {
    for reply in replies {
        match reply {
            Err(CacheError::Failed(error)) => {
                let first = errors
                    .entry((**error).clone())
                    .or_insert_with(|| Arc::clone(error));
                if !Arc::ptr_eq(first, error) {
                    return Err(format!("callers of one flight got copies of {error}"));
                }
            }
            Err(CacheError::Cached { error, .. }) => {
                if served_stale.contains(&**error) {
                    errors
                        .entry((**error).clone())
                        .or_insert_with(|| Arc::clone(error));
                }
                match errors.get(&**error) {
                    Some(original) if Arc::ptr_eq(original, error) => {}
                    _ => return Err(format!("cached error {error} is not the original")),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn build(config: Config) -> Cache {
    let mut builder = Cache::builder().retry_interval(Duration::from_millis(config.retry_ms));
    if let Some(ttl) = config.ttl_ms {
        builder = builder.time_to_live(Duration::from_millis(ttl));
    }
    if let Some(capacity) = config.capacity {
        builder = builder.max_capacity(capacity);
    }
    if let Some(stale) = config.stale_ms {
        builder = builder.stale_if_error(Duration::from_millis(stale));
    }
    if let Some(max) = config.max_retry_ms {
        builder = builder.max_retry_interval(Duration::from_millis(max));
    }
    builder.build()
}

/// Runs `ops` on a fresh cache and on the model; the first disagreement, with the history.
fn run(config: Config, ops: &[Op]) -> Result<(), String> {
    reliability_support::quiet_expected_panics();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let cache = Arc::new(build(config));
        let mut model = Model::new(config);
        let mut errors = HashMap::new();
        for (index, op) in ops.iter().enumerate() {
            let tag = u32::try_from(index).expect("few operations");
            let context = || format!("at operation {index}: {op:?}\n{config:?}\n{ops:?}");
            let performed = perform(&cache, op, tag).await?;
            let (answers, computations) = model.apply(op, tag);
            model
                .learn_evictions(&cache)
                .and_then(|()| model.learn_queued(&cache))
                .map_err(|e| format!("{e}\n{}", context()))?;
            if let Some(capacity) = config.capacity {
                let entries = cache.stats().total_entries;
                if entries > capacity {
                    return Err(format!("{entries} entries over {capacity}\n{}", context()));
                }
            }
            if performed.answers != answers {
                let got = &performed.answers;
                return Err(format!("answers {got:?}, model {answers:?}\n{}", context()));
            }
            if performed.computations != computations {
                let got = performed.computations;
                return Err(format!(
                    "{got} computations, model {computations}\n{}",
                    context()
                ));
            }
            let figures = Figures::of(&cache.stats());
            if figures != model.figures {
                let expected = &model.figures;
                return Err(format!(
                    "stats {figures:?}\nmodel {expected:?}\n{}",
                    context()
                ));
            }
            check_errors_are_shared(&performed.replies, &mut errors, &model.served_stale)
                .map_err(|e| format!("{e}\n{}", context()))?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Random cases
// ---------------------------------------------------------------------------------------

fn config_strategy() -> impl Strategy<Value = Config> {
    let ttl = prop_oneof![Just(None), Just(Some(20)), Just(Some(100))];
    let retry = prop_oneof![Just(0), Just(30), Just(300_000)];
    let capacity =
        prop_oneof![3 => Just(None), 1 => Just(Some(0)), 2 => Just(Some(1)), 4 => Just(Some(3))];
    // Stale-if-error past a ttl of 20 or 100 ms (0: no window); without a ttl, no effect.
    let stale =
        prop_oneof![3 => Just(None), 1 => Just(Some(0)), 2 => Just(Some(40)), 2 => Just(Some(200))];
    // Backoff: 10 and 30 are no growth over a retry of 30 ms (below it counts as it), 100
    // and 500 grow; over a retry of 300 s none grows.
    let max_retry = prop_oneof![
        3 => Just(None),
        1 => Just(Some(10)),
        1 => Just(Some(30)),
        2 => Just(Some(100)),
        2 => Just(Some(500)),
    ];
    (ttl, retry, capacity, stale, max_retry).prop_map(
        |(ttl_ms, retry_ms, capacity, stale_ms, max_retry_ms)| Config {
            ttl_ms,
            retry_ms,
            capacity,
            stale_ms,
            max_retry_ms,
        },
    )
}

/// The mix of operations of a case.
#[derive(Debug, Clone, Copy)]
struct Mix {
    /// Keys are drawn from `0..keys`.
    keys: Key,
    /// Computations fail this many times in 9 (and panic once in 9).
    errors: u32,
    /// Weights of the operations that store or remove a key's entries (a prime, an
    /// invalidate, a clear: each ends a run of failures) and of the clock's advances.
    resets: (u32, u32, u32),
    advances: u32,
}

impl Mix {
    /// The usual mix.
    const USUAL: Self = Self {
        keys: KEYS,
        errors: 2,
        resets: (3, 2, 1),
        advances: 3,
    };
    /// Two keys failing more often than not, rarely primed or removed, with time passing
    /// often: keys fail several times in a row (backoff), and values are asked for after
    /// their time to live and a failure (stale-if-error).
    const FLAKY: Self = Self {
        keys: 2,
        errors: 5,
        resets: (2, 1, 0),
        advances: 6,
    };
}

fn op_strategy(mix: Mix) -> impl Strategy<Value = Op> {
    let key = move || 0..mix.keys;
    let ends = move || {
        prop_oneof![
            8 - mix.errors => Just(Ends::Value),
            mix.errors => Just(Ends::Error),
            1 => Just(Ends::Panic),
        ]
    };
    let (primes, invalidates, clears) = mix.resets;
    let async_form = || prop_oneof![Just(Form::Local), Just(Form::Shared)];
    let form = prop_oneof![2 => Just(Form::Local), 2 => Just(Form::Shared), 1 => Just(Form::Sync)];
    // A delay of 2..40 ms, and a cancellation strictly inside it.
    let cancelled =
        || (2..40u64, 0..1_000u64).prop_map(|(delay, cut)| (delay, 1 + cut % (delay - 1)));
    prop_oneof![
        8 => (key(), form, ends(), 0..40u64).prop_map(|(key, form, ends, delay_ms)| Op::Get {
            key,
            form,
            ends,
            delay_ms: if form == Form::Sync { 0 } else { delay_ms },
        }),
        2 => key().prop_map(|key| Op::Peek { key }),
        2 => (key(), 2..5usize, async_form(), ends(), 1..40u64).prop_map(
            |(key, callers, form, ends, delay_ms)| Op::Herd { key, callers, form, ends, delay_ms }
        ),
        1 => (key(), cancelled()).prop_map(|(key, (delay_ms, after_ms))| Op::Abandon {
            key,
            delay_ms,
            after_ms,
        }),
        2 => (key(), 1..4usize, async_form(), ends(), cancelled()).prop_map(
            |(key, waiters, form, ends, (delay_ms, after_ms))| Op::CancelLeader {
                key,
                waiters,
                form,
                ends,
                delay_ms,
                after_ms,
            }
        ),
        primes => key().prop_map(|key| Op::Prime { key }),
        invalidates => key().prop_map(|key| Op::Invalidate { key }),
        clears => Just(Op::Clear),
        mix.advances => prop_oneof![1..30u64, 30..150u64].prop_map(|ms| Op::Advance { ms }),
    ]
}

/// Configs for the flaky mix: errors cached for 30 ms, mostly growing (up to 100 or 500
/// ms), values mostly with a ttl and a stale-if-error window.
fn flaky_config_strategy() -> impl Strategy<Value = Config> {
    let ttl = prop_oneof![1 => Just(None), 2 => Just(Some(20)), 2 => Just(Some(100))];
    let capacity = prop_oneof![3 => Just(None), 2 => Just(Some(1)), 4 => Just(Some(3))];
    let stale = prop_oneof![1 => Just(None), 2 => Just(Some(40)), 2 => Just(Some(200))];
    let max_retry = prop_oneof![1 => Just(Some(30)), 2 => Just(Some(100)), 2 => Just(Some(500))];
    (ttl, capacity, stale, max_retry).prop_map(|(ttl_ms, capacity, stale_ms, max_retry_ms)| {
        Config {
            ttl_ms,
            retry_ms: 30,
            capacity,
            stale_ms,
            max_retry_ms,
        }
    })
}

/// A config and its operations: two in three cases draw from every config (a third of
/// them with neither stale-if-error nor backoff) with the usual mix; one in three is
/// flaky ([`flaky_config_strategy`], [`Mix::FLAKY`]).
fn case_strategy() -> impl Strategy<Value = (Config, Vec<Op>)> {
    let ops = |mix| proptest::collection::vec(op_strategy(mix), 1..80);
    prop_oneof![
        2 => (config_strategy(), ops(Mix::USUAL)),
        1 => (flaky_config_strategy(), ops(Mix::FLAKY)),
    ]
}

fn cases() -> u32 {
    std::env::var("SMARTCACHE_MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every answer, every computation count and every statistic agrees with the model.
    #[test]
    fn cache_agrees_with_the_model((config, ops) in case_strategy()) {
        run(config, &ops).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------------------
// Named cases: shrunk failures and hand-picked sequences
// ---------------------------------------------------------------------------------------

fn get(key: Key, ends: Ends, delay_ms: u64) -> Op {
    Op::Get {
        key,
        form: Form::Local,
        ends,
        delay_ms,
    }
}

/// The model itself is sane on a plain sequence: miss, hit, failure, cached error, retry.
#[test]
fn model_smoke_sequence() {
    let config = Config {
        ttl_ms: Some(100),
        retry_ms: 30,
        capacity: None,
        stale_ms: None,
        max_retry_ms: None,
    };
    let ops = [
        get(1, Ends::Value, 5),
        get(1, Ends::Value, 5),
        get(2, Ends::Error, 10),
        get(2, Ends::Value, 0),
        Op::Advance { ms: 30 },
        get(2, Ends::Value, 0),
        Op::Advance { ms: 100 },
        get(1, Ends::Panic, 1),
        get(1, Ends::Value, 1),
    ];
    run(config, &ops).unwrap();
}

/// Backoff on one key, whatever the jitter draws: each failure inside the previous one's
/// linger counts one more (windows of about 30, 60, then the cap of 100 ms), a failure past
/// it starts over, and a success resets the count.
#[test]
fn model_backoff_sequence() {
    let config = Config {
        ttl_ms: Some(100),
        retry_ms: 30,
        capacity: None,
        stale_ms: None,
        max_retry_ms: Some(100),
    };
    let ops = [
        get(1, Ends::Error, 0), // t 0: failure 1, until 24..36, gone at 124..136
        Op::Advance { ms: 40 },
        get(1, Ends::Error, 0), // t 40: failure 2, until 88..112
        get(1, Ends::Value, 0), // cached, with its window left
        Op::Advance { ms: 80 },
        get(1, Ends::Error, 0), // t 120: failure 3, until 200..220
        Op::Advance { ms: 130 },
        get(1, Ends::Error, 0), // t 250: failure 4, capped, until 330..350, gone at 430..450
        Op::Advance { ms: 210 },
        get(1, Ends::Error, 0), // t 460: past its linger, failure 1 again, until 484..496
        Op::Advance { ms: 40 },
        get(1, Ends::Value, 0), // t 500: a value; the failure goes
        Op::Advance { ms: 100 },
        get(1, Ends::Error, 0), // t 600: expired; failure 1
    ];
    run(config, &ops).unwrap();
}

/// Stale-if-error: a failed recompute of an expired value answers the value to every
/// caller, and so do calls inside the failure's window, until the value is past its
/// stale-if-error window; a failure that ends after that window answers the error and
/// removes the dead value.
#[test]
fn model_stale_if_error_sequence() {
    let config = Config {
        ttl_ms: Some(20),
        retry_ms: 300_000,
        capacity: None,
        stale_ms: Some(40),
        max_retry_ms: None,
    };
    let ops = [
        get(0, Ends::Value, 0), // t 0
        Op::Advance { ms: 25 },
        Op::Peek { key: 0 },    // stale is no hit
        get(0, Ends::Error, 5), // t 30: the stale value, the failure cached beside it
        get(0, Ends::Value, 0), // cached: the stale value again, nothing runs
        Op::Herd {
            key: 0,
            callers: 3,
            form: Form::Shared,
            ends: Ends::Value,
            delay_ms: 1,
        },
        Op::Advance { ms: 35 },
        get(0, Ends::Value, 0), // t 65: the value is dead (expired), the error answered
        Op::Prime { key: 0 },   // replaces the failure
        Op::Advance { ms: 50 },
        get(0, Ends::Error, 20), // t 115..135: dead by its end, so the error; value removed
    ];
    run(config, &ops).unwrap();
}

/// Found by the model (shrunk) under the CLOCK policy this cache once had: with every entry
/// read since it was stored, eviction took the entry just read rather than the oldest. The
/// sequence stays as a regression case for the bound and the counters with a full cache
/// of read entries.
#[test]
fn regression_clock_evicts_the_oldest_when_every_entry_was_read() {
    let config = Config {
        ttl_ms: None,
        retry_ms: 0,
        capacity: Some(3),
        stale_ms: None,
        max_retry_ms: None,
    };
    let ops = [
        get(2, Ends::Value, 0),
        get(3, Ends::Value, 0),
        get(1, Ends::Value, 0),
        get(2, Ends::Value, 0),
        get(3, Ends::Value, 0),
        Op::Peek { key: 1 },
        Op::CancelLeader {
            key: 0,
            waiters: 1,
            form: Form::Local,
            ends: Ends::Value,
            delay_ms: 2,
            after_ms: 1,
        },
        get(1, Ends::Value, 0),
    ];
    run(config, &ops).unwrap();
}

/// A full cache whose entries were all read makes room by evicting exactly one of them, and
/// keeps the entry it is storing.
#[test]
fn full_cache_of_read_entries_evicts_one_and_keeps_the_new_entry() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache: Cache = Cache::builder().max_capacity(3).build();
        for key in [1, 2, 3] {
            cache.prime(key, (key, 0));
        }
        for key in [1, 2, 3] {
            assert_eq!(cache.get(&key), Some((key, 0)));
        }
        cache.prime(4, (4, 0));
        let kept: Vec<Key> = (1..=4).filter(|key| cache.__stored(key).0).collect();
        assert_eq!(kept.len(), 3, "kept {kept:?}");
        assert!(kept.contains(&4), "kept {kept:?}");
        assert_eq!(cache.stats().evictions, 1);
    });
}
