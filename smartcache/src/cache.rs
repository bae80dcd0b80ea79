//! [`AsyncSmartCache`]: the public face, and the miss path that ties store and flights.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::builder::AsyncSmartCacheBuilder;
use crate::flight::{CatchPanic, Flight, Leaving, Outcome, SharedComputation, Turn, panic_message};
use crate::key::BorrowedKey;
use crate::stats::Request;
use crate::store::{Hasher, Lookup, Store};
use crate::trace::{Ended, Tracer};
use crate::{CacheError, CacheStats};

/// An async memoizing cache: per-key single-flight, cached errors with a retry window,
/// optional time to live and capacity, and request statistics.
///
/// `K` is the key, `V` the value (cloned out to every caller), `E` the error of a
/// computation (shared as `Arc<E>`, never cloned). Build one with [`new`](Self::new) for the
/// defaults (errors cached for 5 minutes, values kept forever, no bound) or with
/// [`builder`](Self::builder).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), smartcache::CacheError<std::io::Error>> {
/// use smartcache::AsyncSmartCache;
///
/// let cache: AsyncSmartCache<u64, String, std::io::Error> = AsyncSmartCache::new();
/// let name = cache.get_or_compute(7, || async { Ok("seven".to_owned()) }).await?;
/// assert_eq!(name, "seven");
/// # Ok(()) }
/// ```
///
/// # Concurrent calls on the same key
///
/// Calls for a key that has no stored value share one computation (a *flight*): the first
/// starts it, the others wait for it and all receive its result. Calls for other keys are
/// not affected: distinct keys compute in parallel, and a hit never waits for any
/// computation. No lock is held while a computation runs, so a computation may call the same
/// cache for other keys.
///
/// # Errors
///
/// A failed computation answers [`CacheError::Failed`] to every caller that shared it, and is
/// stored: until the retry interval has passed *since it failed*, calls for its key answer
/// [`CacheError::Cached`] and nothing runs. A panic answers [`CacheError::Panicked`] and
/// stores nothing.
///
/// # Cancellation
///
/// Dropping a caller never stalls or fails the others. How a flight continues when the
/// caller that was polling it is dropped depends on the method that started it:
///
/// - [`get_or_compute_shared`](Self::get_or_compute_shared) moves the computation (a `Send +
///   'static` future) into the flight: another caller goes on polling the same future, so
///   the work is never restarted while anyone waits.
/// - [`get_or_compute`](Self::get_or_compute) accepts futures that borrow from the caller,
///   which cannot outlive it: another waiting caller takes over by running its own
///   computation.
///
/// When every caller of a flight has gone, the computation is dropped, nothing is stored
/// and the next call starts afresh.
///
/// # Invalidation
///
/// After [`invalidate`](Self::invalidate), [`clear`](Self::clear) or [`prime`](Self::prime)
/// returns, no flight that started before it stores its result (its callers still receive
/// it): a stale value is never resurrected.
pub struct AsyncSmartCache<K, V, E = Infallible> {
    pub(crate) store: Store<K, V, E>,
    /// Flights in progress. A flight leaves this map, under its shard lock, when it
    /// finishes, is abandoned, or is detached by invalidate, clear or prime.
    // INVARIANT (lock order): flight shard -> store (queue -> value/failure shards). Nothing
    // that holds a store lock takes a flight shard lock.
    flights: DashMap<K, Arc<Flight<V, E>>, Hasher>,
    name: Option<Arc<str>>,
    tracer: Tracer<K>,
}

/// What the miss path found for a key.
enum Step<V, E> {
    Answer(Result<V, CacheError<E>>),
    Lead(Arc<Flight<V, E>>),
    Join(Arc<Flight<V, E>>),
}

impl<K, V, E> AsyncSmartCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A cache with the defaults: errors cached for 5 minutes, no time to live, no bound.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, to set the retry interval, time to live, capacity and registry name.
    pub fn builder() -> AsyncSmartCacheBuilder<K, V, E> {
        AsyncSmartCacheBuilder::new()
    }

    pub(crate) fn from_parts(
        store: Store<K, V, E>,
        name: Option<Arc<str>>,
        tracer: Tracer<K>,
    ) -> Self {
        Self {
            flights: DashMap::with_hasher(store.hasher()),
            store,
            name,
            tracer,
        }
    }

    /// The stored value for `key`, or the result of `compute` (stored for the next calls).
    ///
    /// `compute` runs only when no fresh value or cached error is stored and no computation
    /// for the key is in flight; otherwise the call joins the flight. The future may borrow
    /// from the caller; see [`get_or_compute_shared`](Self::get_or_compute_shared) for one
    /// that survives its caller.
    ///
    /// # Concurrent calls on the same key
    ///
    /// One computation at a time per key; every caller of a flight receives its result.
    ///
    /// # Errors
    ///
    /// [`CacheError::Failed`] when the computation (this call's or the one it joined)
    /// returned an error; [`CacheError::Cached`] when an earlier failure is still inside its
    /// retry window; [`CacheError::Panicked`] when the computation panicked.
    ///
    /// # Cancellation
    ///
    /// If the caller polling the computation is dropped, a waiting caller takes over and
    /// runs its own `compute`: the flight goes on, the others get a result.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::{AsyncSmartCache, CacheError};
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32, String>::builder()
    ///     .retry_interval(Duration::from_secs(60))
    ///     .build();
    /// let failed = cache.get_or_compute("port", || async { Err("no config".to_owned()) }).await;
    /// assert!(matches!(failed, Err(CacheError::Failed(_))));
    ///
    /// // The failure is cached: this computation does not run.
    /// let cached = cache.get_or_compute("port", || async { Ok(8080) }).await;
    /// assert!(cached.unwrap_err().is_cached());
    /// # }
    /// ```
    pub async fn get_or_compute<F, Fut>(&self, key: K, compute: F) -> Result<V, CacheError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.store.fresh_value(&key) {
            self.store.stats.record(Request::Hit);
            return Ok(value);
        }
        let computation = Computation::<_, fn() -> SharedComputation<V, E>>::Local(compute);
        // Boxed: the hit path's future stays small, and the slow path's code stays out of it.
        Box::pin(self.get_or_compute_slow(key, computation)).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute), but the computation belongs to the
    /// flight rather than to the caller that started it.
    ///
    /// # Cancellation
    ///
    /// If the caller polling the computation is dropped, a waiting caller goes on polling
    /// the same future: the computation is never restarted while anyone waits. When every
    /// caller has gone, it is dropped and nothing is stored.
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<u64, u64, std::io::Error> = AsyncSmartCache::new();
    /// let answer = cache.get_or_compute_shared(6, || async { Ok(6 * 7) }).await.unwrap();
    /// assert_eq!(answer, 42);
    /// # }
    /// ```
    pub async fn get_or_compute_shared<F, Fut>(
        &self,
        key: K,
        compute: F,
    ) -> Result<V, CacheError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        if let Some(value) = self.store.fresh_value(&key) {
            self.store.stats.record(Request::Hit);
            return Ok(value);
        }
        let boxed = || -> SharedComputation<V, E> { Box::pin(compute()) };
        let computation = Computation::<fn() -> Fut, _>::Shared(boxed);
        // Boxed, as in `get_or_compute`.
        Box::pin(self.get_or_compute_slow(key, computation)).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute), looking the key up by a borrowed form
    /// of it (`&str` for a `String` key, or any [`BorrowedKey`]): a hit allocates nothing,
    /// and the owned key is built (with [`BorrowedKey::to_key`]) only on a miss.
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<String, usize> = AsyncSmartCache::new();
    /// let name: &str = "ada";
    /// let len = cache.get_or_compute_ref(name, || async { Ok(name.len()) }).await.unwrap();
    /// assert_eq!(len, 3);
    /// assert!(cache.get_or_compute_ref(name, || async { unreachable!() }).await.is_ok());
    /// # }
    /// ```
    pub async fn get_or_compute_ref<Q, F, Fut>(
        &self,
        key: &Q,
        compute: F,
    ) -> Result<V, CacheError<E>>
    where
        Q: BorrowedKey<K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.store.fresh_value_equivalent(key) {
            self.store.stats.record(Request::Hit);
            return Ok(value);
        }
        let computation = Computation::<_, fn() -> SharedComputation<V, E>>::Local(compute);
        Box::pin(self.get_or_compute_slow(key.to_key(), computation)).await
    }

    /// Like [`get_or_compute_shared`](Self::get_or_compute_shared), looking the key up by a
    /// borrowed form of it, as [`get_or_compute_ref`](Self::get_or_compute_ref) does.
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute).
    pub async fn get_or_compute_shared_ref<Q, F, Fut>(
        &self,
        key: &Q,
        compute: F,
    ) -> Result<V, CacheError<E>>
    where
        Q: BorrowedKey<K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        if let Some(value) = self.store.fresh_value_equivalent(key) {
            self.store.stats.record(Request::Hit);
            return Ok(value);
        }
        let boxed = || -> SharedComputation<V, E> { Box::pin(compute()) };
        let computation = Computation::<fn() -> Fut, _>::Shared(boxed);
        Box::pin(self.get_or_compute_slow(key.to_key(), computation)).await
    }

    /// Like [`get_or_compute`](Self::get_or_compute) for a synchronous computation (a
    /// function or closure returning a `Result`), run by the calling task.
    ///
    /// No lock is held while it runs, so other keys are not held up; but it does occupy the
    /// calling thread, so keep it short, or move heavy work to
    /// [`tokio::task::spawn_blocking`](https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html) inside an async computation.
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<&str, u32, std::num::ParseIntError> = AsyncSmartCache::new();
    /// assert_eq!(cache.get_or_compute_sync("42", || "42".parse()).await.unwrap(), 42);
    /// # }
    /// ```
    pub async fn get_or_compute_sync<F>(&self, key: K, compute: F) -> Result<V, CacheError<E>>
    where
        F: FnOnce() -> Result<V, E>,
    {
        // The closure is called inside the flight's panic guard, like an async computation.
        self.get_or_compute(key, || std::future::ready(compute()))
            .await
    }

    /// The stored value for `key`, if it is fresh; never computes.
    ///
    /// Counts as a hit or a miss in [`stats`](Self::stats).
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.store.fresh_value(key);
        self.store.stats.record(if value.is_some() {
            Request::Hit
        } else {
            Request::Miss
        });
        value
    }

    /// Stores `value` for `key` directly, as if a computation had returned it: for cache
    /// warmers, and for tests that stand in for a slow dependency.
    ///
    /// Replaces a stored value or cached error. A flight in progress for the key is detached:
    /// its callers still receive its result, but it does not overwrite `value`. Counted in
    /// [`CacheStats::primes`], not as a load.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<&str, String> = AsyncSmartCache::new();
    /// cache.prime("hostname", "test-host".to_owned());
    /// let host = cache.get_or_init("hostname", || async { unreachable!() }).await;
    /// assert_eq!(host, "test-host");
    /// assert_eq!(cache.stats().primes, 1);
    /// # }
    /// ```
    pub fn prime(&self, key: K, value: V) {
        let now = self.store.clock.now();
        self.store.sweep_if_due(now);
        // Detach first: once the flight is out of the map it cannot store (see `finish`).
        self.flights.remove(&key);
        self.store.insert_value(key, value, now);
        self.store.stats.record_prime();
    }

    /// Removes the stored value or cached error for `key`, and detaches any flight in
    /// progress for it so that its result is not stored. Returns whether there was any.
    ///
    /// The flight's callers still receive its result; the next call computes afresh.
    pub fn invalidate<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Order matters: detach the flight first, so that it cannot store after the value
        // is removed (a flight stores only while it is in the map, under its shard lock).
        let detached = self.flights.remove(key).is_some();
        let removed = self.store.remove(key);
        detached || removed
    }

    /// Removes every stored value and cached error, and detaches every flight in progress
    /// (their callers still receive their results, which are not stored). Counters stay.
    pub fn clear(&self) {
        // Flights first, as in `invalidate`: a flight that stored before it was detached has
        // its value removed by the store clear that follows.
        self.flights.clear();
        self.store.clear();
    }

    /// A snapshot of the counters and gauges.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.store.stats.snapshot()
    }

    /// Sets every counter of [`stats`](Self::stats) back to zero (gauges stay).
    pub fn reset_stats(&self) {
        self.store.stats.reset();
    }

    /// The name given to the builder, under which the cache is registered.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The number of entries stored now: values plus cached errors.
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.stats().total_entries
    }

    /// Whether a value, and whether a cached error, is stored for `key` now, fresh or not;
    /// counts nothing and marks nothing. For tests that check the store against a model.
    #[doc(hidden)]
    #[must_use]
    pub fn __stored(&self, key: &K) -> (bool, bool) {
        self.store.holds(key)
    }

    /// The miss path: joins or leads a flight, then waits or drives until it has an answer.
    async fn get_or_compute_slow<F, Fut, S>(
        &self,
        key: K,
        computation: Computation<F, S>,
    ) -> Result<V, CacheError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        S: FnOnce() -> SharedComputation<V, E>,
    {
        // One clock reading serves the whole look-up: sweep, expiry, retry window, start.
        let now = self.store.clock.now();
        self.store.sweep_if_due(now);
        let (flight, leading) = match self.join_or_lead(&key, now) {
            Step::Answer(answer) => return answer,
            Step::Lead(flight) => (flight, true),
            Step::Join(flight) => (flight, false),
        };
        let mut participant = Participant {
            cache: self,
            key,
            flight,
            role: Role::Waiting,
        };
        let turn = if leading {
            Turn::TakeOver(None)
        } else {
            participant.flight.wait().await
        };
        match turn {
            Turn::Answer(answer) => {
                participant.role = Role::Done;
                answer
            }
            // A waiter takes over at most once: it leaves with the answer of what it drives.
            Turn::TakeOver(Some(shared)) => participant.drive_shared(shared).await,
            Turn::TakeOver(None) => match computation {
                Computation::Local(compute) => match catch_unwind(AssertUnwindSafe(compute)) {
                    Ok(future) => participant.drive_local(future).await,
                    Err(payload) => participant.end(Err(panic_message(payload.as_ref()))),
                },
                Computation::Shared(compute) => match catch_unwind(AssertUnwindSafe(compute)) {
                    Ok(future) => participant.drive_shared(future).await,
                    Err(payload) => participant.end(Err(panic_message(payload.as_ref()))),
                },
            },
        }
    }

    /// Under the flight shard lock for `key`: joins the flight in progress, answers from
    /// the store, or starts a flight. Counts the request.
    fn join_or_lead(&self, key: &K, now: u64) -> Step<V, E> {
        let stats = &self.store.stats;
        let slot = self.flights.entry(key.clone());
        if let MapEntry::Occupied(flight) = &slot {
            if flight.get().join() {
                stats.record(Request::Coalesced);
                return Step::Join(Arc::clone(flight.get()));
            }
        }
        // No flight running: the slot is vacant, or holds one that is over but could not
        // leave (see `Flight::join`), which is replaced or dropped here. Looking in the store
        // under the flight shard lock: a flight that finished stored its result before
        // leaving the map, so nothing is missed in between.
        match self.store.lookup(key, now) {
            Lookup::Value(value) => {
                stats.record(Request::Hit);
                remove_stale(slot);
                Step::Answer(Ok(value))
            }
            Lookup::Error { error, retry_in } => {
                stats.record(Request::CachedError);
                self.tracer.cached_error(key, retry_in);
                remove_stale(slot);
                Step::Answer(Err(CacheError::Cached { error, retry_in }))
            }
            Lookup::Absent => {
                let flight = Arc::new(Flight::new(now));
                slot.insert(Arc::clone(&flight));
                stats.record(Request::Miss);
                stats.in_flight.fetch_add(1, Relaxed);
                self.tracer.started(key);
                Step::Lead(flight)
            }
        }
    }

    /// Ends a flight with its computation's result: stores it if the flight is still the
    /// key's current one, then wakes the waiters. Returns the driver's answer.
    fn finish(
        &self,
        key: &K,
        flight: &Arc<Flight<V, E>>,
        result: Result<Result<V, E>, String>,
    ) -> Result<V, CacheError<E>> {
        let outcome = match result {
            Ok(Ok(value)) => Outcome::Value(value),
            Ok(Err(error)) => Outcome::Error(Arc::new(error)),
            Err(message) => Outcome::Panicked(message),
        };
        // The copies to store, made outside any lock: user `Clone` code does not run under it.
        let record = catch_unwind(AssertUnwindSafe(|| match &outcome {
            Outcome::Value(value) => Some((key.clone(), Ok(value.clone()))),
            Outcome::Error(error) => Some((key.clone(), Err(Arc::clone(error)))),
            Outcome::Panicked(_) => None,
        }));
        // A panic in the user's `Clone`: the flight still ends, with that panic as its
        // outcome and nothing stored, so no waiter is left hanging.
        let (outcome, record) = match record {
            Ok(record) => (outcome, record),
            Err(payload) => (Outcome::Panicked(panic_message(payload.as_ref())), None),
        };
        // Leaves the map whatever happens, so no later caller joins a finished flight. Only a
        // panicking `Hash` or `Eq` can unwind out of here, and with such a key every call
        // panics in the map lookup anyway.
        let now = self.store.clock.now();
        let stored = catch_unwind(AssertUnwindSafe(|| {
            self.store_outcome(key, flight, record, now);
        }));
        let outcome = match stored {
            Ok(()) => outcome,
            Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
        };
        let (stats, took) = (
            &self.store.stats,
            Duration::from_nanos(now.saturating_sub(flight.started)),
        );
        stats.record_load(matches!(outcome, Outcome::Value(_)), took);
        stats.in_flight.fetch_sub(1, Relaxed);
        let ended = match &outcome {
            Outcome::Value(_) => Ended::Value,
            Outcome::Error(_) => Ended::Error,
            Outcome::Panicked(message) => Ended::Panic(message),
        };
        self.tracer.ended(key, &ended, took);
        // Waiters are woken before this caller's copy is made: if the user's `Clone` panics
        // now, it unwinds into this caller alone, and nobody is left waiting.
        flight.finish(outcome);
        flight.answer()
    }

    /// Removes the flight from the map and, if it was still the key's flight, stores
    /// `record` (a value or an error; `None` stores nothing) as of `now`.
    fn store_outcome(
        &self,
        key: &K,
        flight: &Arc<Flight<V, E>>,
        mut record: Option<(K, Result<V, Arc<E>>)>,
        now: u64,
    ) {
        // INVARIANT (no stale resurrection): store only while this flight is still the key's
        // flight, under the shard lock that invalidate, clear and prime take to detach it.
        self.flights.remove_if(key, |_, current| {
            if !Arc::ptr_eq(current, flight) {
                return false;
            }
            match record.take() {
                Some((key, Ok(value))) => self.store.insert_value(key, value, now),
                Some((key, Err(error))) => self.store.insert_failure(key, error, now),
                None => {}
            }
            true
        });
    }

    /// A participant leaves its flight unfinished (it was dropped).
    fn leave(&self, key: &K, flight: &Arc<Flight<V, E>>, leaving: Leaving<V, E>) {
        let driver = matches!(leaving, Leaving::Driver(_));
        let mut leaving = Some(leaving);
        let mut left = (false, None);
        // Under the shard lock while the flight is still in the map, so that no caller can
        // join a flight that its last participant is abandoning at the same moment.
        self.flights.remove_if(key, |_, current| {
            if !Arc::ptr_eq(current, flight) {
                return false;
            }
            // `leaving` is always there: the closure runs at most once.
            left = flight.leave(leaving.take().unwrap_or(Leaving::Waiter));
            left.0
        });
        if let Some(leaving) = leaving {
            // Detached or already gone from the map: nobody can join it any more.
            left = flight.leave(leaving);
        }
        let (abandoned, computation) = left;
        if abandoned {
            self.store.stats.in_flight.fetch_sub(1, Relaxed);
        }
        if abandoned || driver {
            self.tracer.left(key, abandoned);
        }
        // Dropped here, outside every lock: dropping a future runs user code.
        drop(computation);
    }
}

impl<K, V, E> Default for AsyncSmartCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, E> fmt::Debug for AsyncSmartCache<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSmartCache")
            .field("name", &self.name)
            .field("stats", &self.store.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// Drops a flight left in the map after it was over (only a flight that is over reaches here).
fn remove_stale<K: Hash + Eq, T>(slot: MapEntry<'_, K, T>) {
    if let MapEntry::Occupied(stale) = slot {
        stale.remove();
    }
}

/// How a caller's computation starts, when it has to: a future that lives in the caller
/// (`Local`), or one boxed into the flight (`Shared`) that another caller can continue.
enum Computation<F, S> {
    Local(F),
    Shared(S),
}

/// The role of a caller in its flight.
enum Role<V, E> {
    Waiting,
    /// Polling its own future, which cannot be handed over.
    DrivingLocal,
    /// Polling the flight's shared future; `None` only while the future is being polled.
    DrivingShared(Option<SharedComputation<V, E>>),
    /// The flight answered this caller.
    Done,
}

/// A caller taking part in a flight. If dropped before the flight answered it (the caller
/// was cancelled), it leaves the flight, handing over what it was driving.
struct Participant<'a, K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    cache: &'a AsyncSmartCache<K, V, E>,
    key: K,
    flight: Arc<Flight<V, E>>,
    role: Role<V, E>,
}

impl<K, V, E> Participant<'_, K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    async fn drive_local<Fut>(&mut self, future: Fut) -> Result<V, CacheError<E>>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        self.role = Role::DrivingLocal;
        let result = CatchPanic(std::pin::pin!(future)).await;
        self.end(result)
    }

    async fn drive_shared(&mut self, future: SharedComputation<V, E>) -> Result<V, CacheError<E>> {
        self.role = Role::DrivingShared(Some(future));
        // NOTE: the future stays in `self.role` while it is polled, so that if this caller
        // is dropped at the `.await`, `Drop` finds it there and hands it to a waiter.
        let result = std::future::poll_fn(|cx| match &mut self.role {
            Role::DrivingShared(Some(future)) => {
                Pin::new(&mut CatchPanic(future.as_mut())).poll(cx)
            }
            _ => Poll::Ready(Err("shared computation missing".to_owned())),
        })
        .await;
        self.end(result)
    }

    /// The computation ended: finish the flight and take this caller's answer.
    fn end(&mut self, result: Result<Result<V, E>, String>) -> Result<V, CacheError<E>> {
        // Drop the future first (outside any lock): it is done, and may hold resources.
        self.role = Role::Done;
        self.cache.finish(&self.key, &self.flight, result)
    }
}

impl<K, V, E> Drop for Participant<'_, K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn drop(&mut self) {
        let leaving = match std::mem::replace(&mut self.role, Role::Done) {
            Role::Done => return,
            Role::Waiting => Leaving::Waiter,
            Role::DrivingLocal => Leaving::Driver(None),
            Role::DrivingShared(future) => Leaving::Driver(future),
        };
        self.cache.leave(&self.key, &self.flight, leaving);
    }
}
