//! [`AsyncSmartCache`]: the public face, and the miss path that ties store and flights.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::builder::AsyncSmartCacheBuilder;
use crate::engine::{Computation, Inner, Mode};
use crate::flight::{Building, SharedComputation};
use crate::key::BorrowedKey;
use crate::resilience::{Absent, Answer, Served};
use crate::stats::Request;
use crate::store::{Hit, Store};
use crate::trace::Tracer;
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
/// Dropping a caller never stalls or fails the others. Who drives a computation depends on
/// the method that started it:
///
/// - [`get_or_compute_shared`](Self::get_or_compute_shared) takes a `Send + 'static` future:
///   on a tokio runtime, once its first poll finds it pending, it runs in a task of its own,
///   so it makes progress whether or not any caller polls it, and it is never restarted
///   while anyone waits. When every caller has gone, it runs on and stores its result,
///   unless no caller came back within [`abandon_after`](AsyncSmartCacheBuilder::abandon_after).
///   Outside any runtime its caller polls it, and a waiter continues the same future if that
///   caller is dropped.
/// - [`get_or_compute`](Self::get_or_compute) accepts futures that borrow from the caller,
///   which cannot outlive it: another waiting caller takes over by running its own
///   computation; when every caller has gone, the computation is dropped and nothing is
///   stored. A waiter behind a driver that is never polled again can give up on it after
///   [`wait_timeout`](AsyncSmartCacheBuilder::wait_timeout).
///
/// A computation that would wait for its own key, directly or through other keys, is
/// answered [`CacheError::Cycle`] instead of waiting for ever.
///
/// # Invalidation
///
/// After [`invalidate`](Self::invalidate), [`clear`](Self::clear) or [`prime`](Self::prime)
/// returns, no flight that started before it stores its result (its callers still receive
/// it): a stale value is never resurrected.
///
/// # Sharing a cache
///
/// A cache is not `Clone`: every method takes `&self`, and it is `Send + Sync`, so share one
/// by reference: in an [`Arc`] for spawned tasks (cloning the `Arc` is the cheap handle that
/// moka's `Cache::clone` is), as a field of a service that is itself shared, or in a
/// `static` ([`std::sync::LazyLock`]). A function under `#[smart_cached]` needs none of this:
/// its cache is a `static` already, and its handle a `&'static AsyncSmartCache`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use smartcache::AsyncSmartCache;
/// use std::sync::Arc;
///
/// let cache: Arc<AsyncSmartCache<u64, String>> = Arc::new(AsyncSmartCache::new());
/// let tasks: Vec<_> = (0..4)
///     .map(|_| {
///         let cache = Arc::clone(&cache); // the same cache, one more reference
///         tokio::spawn(async move { cache.get_or_init(7, || async { "seven".to_owned() }).await })
///     })
///     .collect();
/// for task in tasks {
///     assert_eq!(task.await.unwrap(), "seven");
/// }
/// assert_eq!(cache.stats().load_successes, 1); // one computation for the four tasks
/// # }
/// ```
pub struct AsyncSmartCache<K, V, E = Infallible> {
    /// Shared (weakly) with the tasks that drive shared-form computations; see `engine.rs`.
    inner: Arc<Inner<K, V, E>>,
}

impl<K, V, E> AsyncSmartCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A cache with the defaults: errors cached for 5 minutes, no time to live, no bound,
    /// no name (so not in the [registry](crate::registry)).
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    ///
    /// // Keys `u64`, values `String`; the error type defaults to `Infallible`.
    /// let cache: AsyncSmartCache<u64, String> = AsyncSmartCache::new();
    /// assert_eq!(cache.entry_count(), 0);
    /// assert_eq!(cache.name(), None);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, to set the retry interval, time to live, capacity and registry name.
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache: AsyncSmartCache<String, u32, std::io::Error> = AsyncSmartCache::builder()
    ///     .retry_interval(Duration::from_secs(30))
    ///     .time_to_live(Duration::from_secs(600))
    ///     .max_capacity(1_000)
    ///     .name("ports")
    ///     .build();
    /// assert_eq!(cache.name(), Some("ports"));
    /// ```
    pub fn builder() -> AsyncSmartCacheBuilder<K, V, E> {
        AsyncSmartCacheBuilder::new()
    }

    /// Puts a built cache on the shared tier (see the builder's `shared`).
    #[cfg(feature = "redis")]
    pub(crate) fn attach_shared(
        &self,
        maker: crate::redis::shared::HookMaker<K, V, E>,
        name: &str,
        limits: crate::redis::shared::Limits,
    ) {
        let (hook, tier) = maker(Arc::downgrade(&self.inner), name, limits);
        let _ = self.inner.shared.set(hook); // built once: the slot is empty
        let degraded = Box::new(move || tier.stats().degraded);
        let _ = self.inner.store.stats.shared.degraded.set(degraded);
    }

    pub(crate) fn from_parts(
        store: Store<K, V, E>,
        name: Option<Arc<str>>,
        tracer: Tracer<K>,
        wait_timeout: Option<Duration>,
        abandon_after: Option<Duration>,
    ) -> Self {
        let inner = Inner {
            flights: DashMap::with_hasher(store.hasher()),
            store,
            name,
            tracer,
            wait_timeout,
            abandon_after,
            #[cfg(feature = "redis")]
            shared: std::sync::OnceLock::new(),
        };
        Self {
            inner: Arc::new(inner),
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
        if let Some(value) = self.inner.store.fresh_value(&key) {
            self.inner.store.stats.record(Request::Hit);
            return Ok(value);
        }
        // Boxed: the hit path's future stays small, and the slow path's code stays out of it.
        let answer = Box::pin(self.local_miss(key, compute, Mode::Lookup)).await;
        answer.map(Served::into_value)
    }

    /// Like [`get_or_compute`](Self::get_or_compute), but the computation belongs to the
    /// flight rather than to the caller that started it.
    ///
    /// # Progress and cancellation
    ///
    /// On a tokio runtime, the computation is polled once by this call; if it is still
    /// pending, it moves into a task spawned on the current runtime, which drives it to the
    /// end and stores the result. Every caller then only waits, so a caller that is never
    /// polled again holds nobody up, and the computation is never restarted while anyone
    /// waits. When every caller has gone it runs on, and its result is stored for the next
    /// call, unless no caller came back within
    /// [`abandon_after`](AsyncSmartCacheBuilder::abandon_after). Outside any runtime the
    /// caller polls it; if that caller is dropped, a waiting caller goes on polling the same
    /// future.
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
        if let Some(hit) = self.inner.store.fresh_hit(&key) {
            return Ok(self.shared_hit(hit, || key, compute));
        }
        // Boxed, as in `get_or_compute`.
        let answer = Box::pin(self.shared_miss(key, compute, Mode::Lookup)).await;
        answer.map(Served::into_value)
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
        if let Some(value) = self.inner.store.fresh_value_equivalent(key) {
            self.inner.store.stats.record(Request::Hit);
            return Ok(value);
        }
        let answer = Box::pin(self.local_miss(key.to_key(), compute, Mode::Lookup)).await;
        answer.map(Served::into_value)
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
        if let Some(hit) = self.inner.store.fresh_hit_equivalent(key) {
            return Ok(self.shared_hit(hit, || key.to_key(), compute));
        }
        let answer = Box::pin(self.shared_miss(key.to_key(), compute, Mode::Lookup)).await;
        answer.map(Served::into_value)
    }

    /// Like [`get_or_compute`](Self::get_or_compute), answering how fresh the value is: a
    /// [`Served::Stale`] value is the last good one, answered because recomputing it failed
    /// within the builder's [`stale_if_error`](AsyncSmartCacheBuilder::stale_if_error)
    /// window (the other methods answer it as a plain value).
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute); a failure that a stale value
    /// stands in for is no error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::{AsyncSmartCache, Served};
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32, String>::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .stale_if_error(Duration::from_secs(600))
    ///     .build();
    /// let fresh = cache.get_or_compute_served("k", || async { Ok(1) }).await.unwrap();
    /// assert!(matches!(fresh, Served::Fresh(1)));
    ///
    /// tokio::time::advance(Duration::from_secs(90)).await;
    /// let down = || async { Err("down".to_owned()) };
    /// match cache.get_or_compute_served("k", down).await.unwrap() {
    ///     Served::Stale { value, error, expired_for } => {
    ///         assert_eq!((value, error.as_str()), (1, "down"));
    ///         assert_eq!(expired_for, Duration::from_secs(30));
    ///     }
    ///     Served::Fresh(_) => unreachable!("the backend is down"),
    /// }
    /// # }
    /// ```
    pub async fn get_or_compute_served<F, Fut>(
        &self,
        key: K,
        compute: F,
    ) -> Result<Served<V, E>, CacheError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.inner.store.fresh_value(&key) {
            self.inner.store.stats.record(Request::Hit);
            return Ok(Served::Fresh(value));
        }
        Box::pin(self.local_miss(key, compute, Mode::Lookup)).await
    }

    /// Like [`get_or_compute_shared`](Self::get_or_compute_shared) (refresh-ahead included),
    /// answering how fresh the value is, as
    /// [`get_or_compute_served`](Self::get_or_compute_served) does.
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute_served`](Self::get_or_compute_served).
    pub async fn get_or_compute_shared_served<F, Fut>(
        &self,
        key: K,
        compute: F,
    ) -> Result<Served<V, E>, CacheError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        if let Some(hit) = self.inner.store.fresh_hit(&key) {
            return Ok(Served::Fresh(self.shared_hit(hit, || key, compute)));
        }
        Box::pin(self.shared_miss(key, compute, Mode::Lookup)).await
    }

    /// Recomputes `key` now, whatever is stored, and answers the result: joins the key's
    /// flight if one is in progress (a refresh-ahead, or a miss), or starts one that ignores
    /// the stored value and a cached error. The stored value stays, and hits keep getting it,
    /// until the computation succeeds; a failure is cached (with backoff) beside it. As
    /// with [`get_or_compute_shared`](Self::get_or_compute_shared), the computation runs in
    /// a task on a tokio runtime, so dropping this call does not cancel it. Counted in
    /// [`CacheStats::refreshes`] (and as a miss).
    ///
    /// # Errors
    ///
    /// As for [`get_or_compute`](Self::get_or_compute) (a joined flight may answer a stale
    /// value as such a call would).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<&str, u32, String> = AsyncSmartCache::new();
    /// cache.get_or_compute("version", || async { Ok(1) }).await.unwrap();
    /// assert_eq!(cache.refresh("version", || async { Ok(2) }).await.unwrap(), 2);
    /// assert_eq!(cache.get("version"), Some(2));
    ///
    /// // A failed refresh keeps the value.
    /// let failed = cache.refresh("version", || async { Err("down".to_owned()) }).await;
    /// assert!(failed.is_err());
    /// assert_eq!(cache.get("version"), Some(2));
    /// # }
    /// ```
    pub async fn refresh<F, Fut>(&self, key: K, compute: F) -> Result<V, CacheError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let answer = Box::pin(self.shared_miss(key, compute, Mode::Refresh)).await;
        answer.map(Served::into_value)
    }

    /// A hit of a shared form: counted, and if the value is due for a refresh-ahead (see the
    /// builder's `refresh_after`), one is started with `compute` for the key `key` builds.
    #[inline]
    fn shared_hit<F, Fut>(&self, hit: Hit<V>, key: impl FnOnce() -> K, compute: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        self.inner.store.stats.record(Request::Hit);
        if hit.refresh_due {
            let key = key();
            let build = self.shared_computation(&key, compute);
            self.inner.refresh_ahead(key, build);
        }
        hit.value
    }

    /// For `#[smart_cached]`: the hit of [`get_or_compute_shared`](Self::get_or_compute_shared)
    /// with `shared_compute(args)` if `shared`, else of [`get_or_compute`](Self::get_or_compute)
    /// with `local_compute(args)`; on a miss, what that call's miss needs, for the caller to
    /// [`run`](RoutedMiss::run) and await. Not a public API: it may change in any release.
    ///
    /// A plain fn, which the generated fn calls in its first poll: a hit runs no future of
    /// the cache's, and the generated fn's future has one await point, the miss. (Through an
    /// `async fn` per call form, the generated future kept the key, the arguments and the
    /// drop flags of both calls in its state, written on every hit, and had drop glue too
    /// large to inline: `docs/benchmarks.md`, "Hit path through the attribute".)
    ///
    /// # Errors
    ///
    /// The miss, when there is no fresh value.
    #[doc(hidden)]
    #[inline]
    pub fn routed_lookup<A, S, SFut, L, LFut>(
        &self,
        key: K,
        shared: bool,
        args: A,
        shared_compute: S,
        local_compute: L,
    ) -> Result<V, RoutedMiss<'_, K, V, E, A, S, L>>
    where
        S: FnOnce(A) -> SFut,
        SFut: Future<Output = Result<V, E>> + Send + 'static,
        L: FnOnce(A) -> LFut,
        LFut: Future<Output = Result<V, E>>,
    {
        let hit = if shared {
            self.inner.store.fresh_hit(&key)
        } else {
            self.inner.store.fresh_value(&key).map(Hit::plain)
        };
        let routed = Routed {
            shared,
            args,
            shared_compute,
            local_compute,
        };
        self.routed_answer(hit, move || key, routed)
    }

    /// [`routed_lookup`](Self::routed_lookup) by a borrowed form of the key, as
    /// [`get_or_compute_ref`](Self::get_or_compute_ref) does; the owned key is built on a
    /// miss. Not a public API.
    ///
    /// # Errors
    ///
    /// The miss, when there is no fresh value.
    #[doc(hidden)]
    #[inline]
    pub fn routed_lookup_ref<Q, A, S, SFut, L, LFut>(
        &self,
        key: &Q,
        shared: bool,
        args: A,
        shared_compute: S,
        local_compute: L,
    ) -> Result<V, RoutedMiss<'_, K, V, E, A, S, L>>
    where
        Q: BorrowedKey<K> + ?Sized,
        S: FnOnce(A) -> SFut,
        SFut: Future<Output = Result<V, E>> + Send + 'static,
        L: FnOnce(A) -> LFut,
        LFut: Future<Output = Result<V, E>>,
    {
        let hit = if shared {
            self.inner.store.fresh_hit_equivalent(key)
        } else {
            self.inner.store.fresh_value_equivalent(key).map(Hit::plain)
        };
        let routed = Routed {
            shared,
            args,
            shared_compute,
            local_compute,
        };
        self.routed_answer(hit, || key.to_key(), routed)
    }

    /// The answer of the routed forms to what their lookup found: a hit (counted, and a
    /// refresh-ahead started if due, through the shared form's computation), or the miss,
    /// with the owned key built by `key`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // the attribute's hit path: see `routed_lookup`
    fn routed_answer<A, S, SFut, L>(
        &self,
        hit: Option<Hit<V>>,
        key: impl FnOnce() -> K,
        routed: Routed<A, S, L>,
    ) -> Result<V, RoutedMiss<'_, K, V, E, A, S, L>>
    where
        S: FnOnce(A) -> SFut,
        SFut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let Some(hit) = hit else {
            return Err(RoutedMiss {
                cache: self,
                key: key(),
                routed,
            });
        };
        let Routed {
            args,
            shared_compute,
            ..
        } = routed;
        Ok(self.shared_hit(hit, key, move || shared_compute(args)))
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

    /// The stored value for `key`, if it is fresh; never computes, never waits.
    ///
    /// Counts as a hit or a miss in [`stats`](Self::stats). A key whose computation is in
    /// flight, or whose failure is cached, has no value: `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<String, u32> = AsyncSmartCache::new();
    /// assert_eq!(cache.get("answer"), None); // a `&str` looks up a `String` key
    /// cache.get_or_init("answer".to_owned(), || async { 42 }).await;
    /// assert_eq!(cache.get("answer"), Some(42));
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses), (1, 2)); // the computing call was a miss too
    /// # }
    /// ```
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.inner.store.fresh_value(key);
        self.inner.store.stats.record(if value.is_some() {
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
        let inner = &*self.inner;
        let now = inner.store.clock.now();
        inner.store.sweep_if_due(now);
        // INVARIANT (prime is one step for callers): the value is stored, and the key's
        // flight detached, under the key's flight shard lock. Every caller takes that lock to
        // look in the store and to start a flight, and a flight stores its outcome under it:
        // a call either finished before `prime` (its result is replaced) or sees the value.
        let slot = inner.flights.entry(key.clone());
        inner.store.insert_value(key, value, now);
        // Detached: a flight out of the map cannot store (see `engine::store_outcome`).
        let detached = match slot {
            MapEntry::Occupied(flight) => Some(flight.remove()),
            MapEntry::Vacant(_) => None,
        };
        inner.store.stats.record_prime();
        // Dropped outside the lock: the last handle of a flight may drop user code.
        drop(detached);
    }

    /// Removes the stored value or cached error for `key`, and detaches any flight in
    /// progress for it so that its result is not stored. Returns whether there was any.
    ///
    /// The flight's callers still receive its result; the next call computes afresh. On the
    /// shared tier (feature `redis`), the key's entry goes fleet-wide and every process drops
    /// its local copy.
    ///
    /// `key` is the key, or a borrowed form of it that converts back (`&str` for a `String`
    /// key): the shared tier tells the fleet the owned key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<String, u32> = AsyncSmartCache::new();
    /// cache.get_or_init("config".to_owned(), || async { 1 }).await;
    /// assert!(cache.invalidate("config"));
    /// assert!(!cache.invalidate("config")); // nothing left to remove
    ///
    /// // The next call computes again.
    /// assert_eq!(cache.get_or_init("config".to_owned(), || async { 2 }).await, 2);
    /// # }
    /// ```
    pub fn invalidate<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let here = self.inner.invalidate_local(key);
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            shared.invalidate(&key.to_owned());
        }
        here
    }

    /// Removes every stored value and cached error, and detaches every flight in progress
    /// (their callers still receive their results, which are not stored). Counters stay.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<u32, u32> = AsyncSmartCache::new();
    /// for n in 0..3 {
    ///     cache.get_or_init(n, || async move { n * n }).await;
    /// }
    /// cache.clear();
    /// assert_eq!(cache.entry_count(), 0);
    /// assert_eq!(cache.stats().load_successes, 3); // counters are kept
    /// # }
    /// ```
    pub fn clear(&self) {
        self.inner.clear_local();
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            shared.clear();
        }
    }

    /// A snapshot of the counters and gauges; see [`CacheStats`] for what each one counts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<&str, u32, String> = AsyncSmartCache::new();
    /// let _ = cache.get_or_compute("a", || async { Ok(1) }).await; // miss, computed
    /// let _ = cache.get_or_compute("a", || async { Ok(1) }).await; // hit
    /// let _ = cache.get_or_compute("b", || async { Err("down".to_owned()) }).await; // miss, failed
    /// let _ = cache.get_or_compute("b", || async { Ok(2) }).await; // cached error, nothing ran
    ///
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.cached_error_hits), (1, 2, 1));
    /// assert_eq!((stats.load_successes, stats.load_failures), (1, 1));
    /// assert_eq!((stats.total_entries, stats.error_entries), (2, 1));
    /// assert_eq!(stats.requests(), 4);
    /// println!("{stats}"); // one line, for a log
    /// # }
    /// ```
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.inner.store.stats.snapshot()
    }

    /// Sets every counter of [`stats`](Self::stats) back to zero (gauges stay).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache: AsyncSmartCache<u8, u8> = AsyncSmartCache::new();
    /// cache.get_or_init(1, || async { 1 }).await;
    /// cache.reset_stats();
    /// let stats = cache.stats();
    /// assert_eq!((stats.misses, stats.load_successes), (0, 0));
    /// assert_eq!(stats.total_entries, 1); // a gauge: the entry is still there
    /// # }
    /// ```
    pub fn reset_stats(&self) {
        self.inner.store.stats.reset();
    }

    /// The name given to the builder, under which the cache is registered.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The number of entries stored now: values plus cached errors.
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.stats().total_entries
    }

    /// The miss of the local form: through the fleet for a shared cache, then the flight.
    async fn local_miss<F, Fut>(&self, key: K, compute: F, mode: Mode) -> Answer<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            // On the shared tier: the fleet's entry, or the computation under the key's lease.
            let (hook, fleet_key) = (&**shared, key.clone());
            let wrapped = move |flight: &Building<V, E>| {
                let note = crate::redis::shared::fleet_note(flight);
                crate::redis::shared::through_fleet(hook, fleet_key, compute(), note)
            };
            let computation =
                Computation::<_, fn(&Building<V, E>) -> SharedComputation<V, E>>::Local(wrapped);
            // Boxed: the fleet's state is large, and a local-only miss should not carry it.
            let miss = self.inner.get_or_compute_slow(key, computation, mode);
            return Box::pin(miss).await;
        }
        let local = |_: &Building<V, E>| compute();
        let computation =
            Computation::<_, fn(&Building<V, E>) -> SharedComputation<V, E>>::Local(local);
        self.inner.get_or_compute_slow(key, computation, mode).await
    }

    /// The miss of the shared form: the flight, with the computation
    /// [`shared_computation`](Self::shared_computation) makes.
    async fn shared_miss<F, Fut>(&self, key: K, compute: F, mode: Mode) -> Answer<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let build = self.shared_computation(&key, compute);
        let computation = Computation::<fn(&Building<V, E>) -> Fut, _>::Shared(build);
        self.inner.get_or_compute_slow(key, computation, mode).await
    }

    /// The boxed computation of the shared form, for a flight of `key`: through the fleet
    /// for a shared cache (the fleet's entry, or `compute` under the key's lease).
    #[cfg_attr(not(feature = "redis"), allow(clippy::unused_self))]
    fn shared_computation<F, Fut>(
        &self,
        key: &K,
        compute: F,
    ) -> impl FnOnce(&Building<V, E>) -> SharedComputation<V, E> + use<F, Fut, K, V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        #[cfg(feature = "redis")]
        let fleet = self
            .inner
            .shared
            .get()
            .map(|hook| (Arc::clone(hook), key.clone()));
        #[cfg(not(feature = "redis"))]
        let _ = key;
        move |flight: &Building<V, E>| -> SharedComputation<V, E> {
            #[cfg(feature = "redis")]
            if let Some((hook, fleet_key)) = fleet {
                let (note, computation) = (crate::redis::shared::fleet_note(flight), compute());
                return Box::pin(async move {
                    crate::redis::shared::through_fleet(&*hook, fleet_key, computation, note).await
                });
            }
            let _ = flight;
            Box::pin(compute())
        }
    }

    /// The retry window of `key`'s cached failure (from the moment it failed) and the key's
    /// count of consecutive failures with it, if one is stored (inside its window or
    /// remembered past it for backoff); counts nothing. For tests that check backoff against
    /// a model.
    #[doc(hidden)]
    #[must_use]
    pub fn __failure(&self, key: &K) -> Option<(Duration, u32)> {
        let (window, failures) = self.inner.store.failure_record(key)?;
        Some((Duration::from_nanos(window), failures))
    }

    /// Whether a value, and whether a cached error, is stored for `key` now, fresh or not;
    /// counts nothing and marks nothing. For tests that check the store against a model.
    #[doc(hidden)]
    #[must_use]
    pub fn __stored(&self, key: &K) -> (bool, bool) {
        self.inner.store.holds(key)
    }
}

impl<K, V> AsyncSmartCache<K, V, Absent>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The stored value for `key`, or the result of `compute`, an `Option`: `Some` is
    /// stored as a value, `None` as the failure [`Absent`] (negative caching), so that until
    /// the retry interval has passed (growing under backoff) calls for the key answer `None`
    /// and nothing runs. As [`get_or_compute`](Self::get_or_compute) otherwise.
    ///
    /// # Panics
    ///
    /// If the computation panicked (the panic is raised again here), or would wait for its
    /// own key ([`CacheError::Cycle`]): neither can be told apart from a `None` otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::{Absent, AsyncSmartCache};
    /// use std::time::Duration;
    ///
    /// let users = AsyncSmartCache::<u64, String, Absent>::builder()
    ///     .retry_interval(Duration::from_secs(30))
    ///     .build();
    /// assert_eq!(users.get_or_compute_option(7, || async { None }).await, None);
    /// // The `None` is cached: this computation does not run.
    /// let again = users.get_or_compute_option(7, || async { Some("ada".to_owned()) }).await;
    /// assert_eq!(again, None);
    ///
    /// tokio::time::advance(Duration::from_secs(30)).await;
    /// let found = users.get_or_compute_option(7, || async { Some("ada".to_owned()) }).await;
    /// assert_eq!(found.as_deref(), Some("ada"));
    /// # }
    /// ```
    pub async fn get_or_compute_option<F, Fut>(&self, key: K, compute: F) -> Option<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<V>>,
    {
        let answer = self
            .get_or_compute(key, || async { compute().await.ok_or(Absent) })
            .await;
        crate::__private::optional(answer)
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
            .field("name", &self.inner.name)
            .field("stats", &self.inner.store.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// What the routed forms take besides the key: the call form, the body's arguments, and how
/// to call it either way.
struct Routed<A, S, L> {
    shared: bool,
    args: A,
    shared_compute: S,
    local_compute: L,
}

/// A miss of [`AsyncSmartCache::routed_lookup`]: the cache, the owned key and the call's
/// parts. Not a public API.
///
/// No borrowed key in it: the generated fn drops its borrowed key before it awaits the miss,
/// so that the key is no field of its future.
#[doc(hidden)]
pub struct RoutedMiss<'a, K, V, E, A, S, L> {
    cache: &'a AsyncSmartCache<K, V, E>,
    key: K,
    routed: Routed<A, S, L>,
}

impl<K, V, E, A, S, L> RoutedMiss<'_, K, V, E, A, S, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// The miss of the shared form or of the local one, boxed (the generated fn's future
    /// stays small).
    pub fn run<SFut, LFut>(self) -> Pin<Box<impl Future<Output = Result<V, CacheError<E>>>>>
    where
        S: FnOnce(A) -> SFut,
        SFut: Future<Output = Result<V, E>> + Send + 'static,
        L: FnOnce(A) -> LFut,
        LFut: Future<Output = Result<V, E>>,
    {
        let Self { cache, key, routed } = self;
        let Routed {
            shared,
            args,
            shared_compute,
            local_compute,
        } = routed;
        Box::pin(async move {
            let answer = if shared {
                let compute = move || shared_compute(args);
                cache.shared_miss(key, compute, Mode::Lookup).await
            } else {
                let compute = move || local_compute(args);
                cache.local_miss(key, compute, Mode::Lookup).await
            };
            answer.map(Served::into_value)
        })
    }
}

impl<K, V, E, A, S, L> fmt::Debug for RoutedMiss<'_, K, V, E, A, S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedMiss").finish_non_exhaustive()
    }
}
