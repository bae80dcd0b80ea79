//! [`AsyncSmartCacheBuilder`]: the settings of a cache.

use std::any::Any;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::AsyncSmartCache;
use crate::KeyHasher;
use crate::listener::{Listener, RemovalCause};
use crate::registry;
use crate::resilience::{Hint, RetryAfter};
use crate::stats::StatsCore;
use crate::store::{DEFAULT_MAX_CACHED_ERRORS, Limits, Store};
use crate::trace::Tracer;

/// The cache's types, without owning any value of them (always `Send + Sync`).
type Types<K, V, E> = PhantomData<fn() -> (K, V, E)>;

/// The default retry interval of a cached error: 5 minutes.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The default of [`AsyncSmartCacheBuilder::abandon_after`]: 30 seconds.
pub const DEFAULT_ABANDON_AFTER: Duration = Duration::from_secs(30);

/// Settings for an [`AsyncSmartCache`], from [`AsyncSmartCache::builder`].
///
/// ```
/// use smartcache::AsyncSmartCache;
/// use std::time::Duration;
///
/// let cache: AsyncSmartCache<String, Vec<u8>, std::io::Error> = AsyncSmartCache::builder()
///     .retry_interval(Duration::from_secs(30))
///     .time_to_live(Duration::from_secs(600))
///     .max_capacity(10_000)
///     .name("blobs")
///     .build();
/// assert_eq!(cache.name(), Some("blobs"));
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct AsyncSmartCacheBuilder<K, V, E> {
    limits: Limits,
    name: Option<String>,
    wait_timeout: Option<Duration>,
    abandon_after: Option<Duration>,
    /// The shared tier to put the cache on (`shared`).
    #[cfg(feature = "redis")]
    shared: Option<crate::redis::shared::HookMaker<K, V, E>>,
    /// A `Listener<K>`, type-erased.
    // NOTE: held as `dyn Any` so that the builder's fields do not mention `K` beyond the
    // phantom: a field of a type over `K` changes which bound failures the compiler reports
    // for a bad key type in `#[smart_cached]` code (the ui tests pin those diagnostics).
    listener: Option<Box<dyn Any + Send + Sync>>,
    /// How an error says when to retry (`retry_hint`, `honor_retry_after`).
    hint: Option<Hint<E>>,
    /// Formats keys for `tracing` events, once `trace_keys` asked for it.
    #[cfg(feature = "tracing")]
    trace_key: Option<fn(&K) -> String>,
    types: Types<K, V, E>,
}

impl<K, V, E> AsyncSmartCacheBuilder<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        Self {
            limits: Limits {
                retry: DEFAULT_RETRY_INTERVAL,
                ttl: None,
                capacity: None,
                max_errors: DEFAULT_MAX_CACHED_ERRORS,
                hasher: KeyHasher::Foldhash,
                max_retry: None,
                refresh: None,
                stale: None,
            },
            name: None,
            wait_timeout: None,
            abandon_after: Some(DEFAULT_ABANDON_AFTER),
            #[cfg(feature = "redis")]
            shared: None,
            listener: None,
            hint: None,
            #[cfg(feature = "tracing")]
            trace_key: None,
            types: PhantomData,
        }
    }

    /// How long a failure stays cached, counted from the moment it failed. Default 5
    /// minutes; [`Duration::ZERO`] turns error caching off (every call after a failure
    /// computes again, still one flight at a time).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32, String>::builder()
    ///     .retry_interval(Duration::from_secs(10))
    ///     .build();
    /// let _ = cache.get_or_compute("k", || async { Err("down".to_owned()) }).await;
    /// let cached = cache.get_or_compute("k", || async { Ok(1) }).await.unwrap_err();
    /// assert_eq!(cached.retry_in(), Some(Duration::from_secs(10)));
    ///
    /// tokio::time::advance(Duration::from_secs(10)).await; // the window passes
    /// assert_eq!(cache.get_or_compute("k", || async { Ok(1) }).await.unwrap(), 1);
    /// # }
    /// ```
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.limits.retry = interval;
        self
    }

    /// The cap on a key's retry interval under backoff: each consecutive failure of a key
    /// doubles its interval (from [`retry_interval`](Self::retry_interval)) up to `max`,
    /// each interval jittered by up to ±20% (so processes that failed together do not
    /// retry together; at the cap, only downwards: never above `max`); a success resets it. Default: the retry interval, so intervals
    /// neither grow nor vary. A value below the retry interval counts as the retry interval.
    ///
    /// A cached error's [`retry_in`](crate::CacheError::retry_in) shows the grown interval.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32, String>::builder()
    ///     .retry_interval(Duration::from_secs(10))
    ///     .max_retry_interval(Duration::from_secs(60))
    ///     .build();
    /// let down = || async { Err("down".to_owned()) };
    /// let _ = cache.get_or_compute("k", down).await; // failure 1: about 10 s
    /// let first = cache.get_or_compute("k", down).await.unwrap_err().retry_in().unwrap();
    /// assert!(first >= Duration::from_secs(8) && first <= Duration::from_secs(12));
    ///
    /// tokio::time::advance(first).await;
    /// let _ = cache.get_or_compute("k", down).await; // failure 2: about 20 s
    /// let second = cache.get_or_compute("k", down).await.unwrap_err().retry_in().unwrap();
    /// assert!(second >= Duration::from_secs(16) && second <= Duration::from_secs(24));
    /// # }
    /// ```
    pub fn max_retry_interval(mut self, max: Duration) -> Self {
        self.limits.max_retry = Some(max);
        self
    }

    /// How long an error says to wait, read by `hint` from each failure: when it returns a
    /// duration, that is the failure's retry interval (capped by
    /// [`max_retry_interval`](Self::max_retry_interval), not jittered) instead of the
    /// computed one. For error types of other crates; an error type of your own can
    /// implement [`RetryAfter`] and use [`honor_retry_after`](Self::honor_retry_after).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// // An error that carries a `Retry-After` in seconds.
    /// let cache = AsyncSmartCache::<&str, u32, (u16, u64)>::builder()
    ///     .retry_interval(Duration::from_secs(5))
    ///     .max_retry_interval(Duration::from_secs(120))
    ///     .retry_hint(|&(status, secs)| (status == 429).then(|| Duration::from_secs(secs)))
    ///     .build();
    /// let _ = cache.get_or_compute("k", || async { Err((429, 90)) }).await;
    /// let cached = cache.get_or_compute("k", || async { Ok(1) }).await.unwrap_err();
    /// assert_eq!(cached.retry_in(), Some(Duration::from_secs(90)));
    /// # }
    /// ```
    pub fn retry_hint(mut self, hint: fn(&E) -> Option<Duration>) -> Self {
        self.hint = Some(hint);
        self
    }

    /// Reads each failure's own retry hint through [`RetryAfter`]; see
    /// [`retry_hint`](Self::retry_hint).
    pub fn honor_retry_after(self) -> Self
    where
        E: RetryAfter,
    {
        self.retry_hint(E::retry_after)
    }

    /// Refresh-ahead: a value older than `after` (and still within its
    /// [time to live](Self::time_to_live)) is answered at once, and one background refresh
    /// of its key starts (single-flight: further reads meanwhile start nothing). The old value
    /// stays until the refresh succeeds; a refresh that fails keeps it, and is cached like
    /// any failure, so no refresh starts again before its retry interval has passed. A
    /// value's refresh point is pulled forward by up to a fifth of `after`, differently for
    /// every key and store time, so that keys stored together do not refresh together.
    ///
    /// A refresh needs a computation that can run on its own: it is started by
    /// [`get_or_compute_shared`](AsyncSmartCache::get_or_compute_shared) (and its `_ref`
    /// and `_served` forms) and `#[smart_cached]` functions, on a tokio runtime, and runs in
    /// a task. [`get_or_compute`](AsyncSmartCache::get_or_compute), whose computation
    /// borrows from its caller, answers the old value and starts none. An invalidate, clear or
    /// prime of the key while it runs keeps its result out. `after` not shorter than the time
    /// to live never refreshes (the value expires first); `#[smart_cached]` rejects it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32>::builder()
    ///     .time_to_live(Duration::from_secs(600))
    ///     .refresh_after(Duration::from_secs(60))
    ///     .build();
    /// cache.get_or_compute_shared("rate", || async { Ok(1) }).await.unwrap();
    /// tokio::time::advance(Duration::from_secs(60)).await;
    /// // Answered at once with the old value; the refresh runs in the background.
    /// assert_eq!(cache.get_or_compute_shared("rate", || async { Ok(2) }).await.unwrap(), 1);
    /// tokio::task::yield_now().await;
    /// assert_eq!(cache.get("rate"), Some(2));
    /// assert_eq!(cache.stats().refreshes, 1);
    /// # }
    /// ```
    pub fn refresh_after(mut self, after: Duration) -> Self {
        self.limits.refresh = Some(after);
        self
    }

    /// Stale-if-error: when recomputing a value past its [time to live](Self::time_to_live)
    /// fails, its callers get the last good value instead of the error, for up to `window`
    /// past its expiry. The failure is still cached (with its retry interval), so the backend
    /// is not asked again meanwhile, and calls in that time get the stale value too. After
    /// the window, the error is answered. Expired values are kept for the window (removed
    /// after it), so this holds entries longer.
    ///
    /// [`get_or_compute_served`](AsyncSmartCache::get_or_compute_served) tells a stale
    /// answer from a fresh one; the other methods answer the value either way. Without a time
    /// to live values never expire, and this does nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32, String>::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .stale_if_error(Duration::from_secs(3600))
    ///     .build();
    /// cache.get_or_compute("rate", || async { Ok(1) }).await.unwrap();
    /// tokio::time::advance(Duration::from_secs(61)).await;
    /// let down = || async { Err("backend down".to_owned()) };
    /// let served = cache.get_or_compute_served("rate", down).await.unwrap();
    /// assert!(served.is_stale());
    /// assert_eq!(served.into_value(), 1);
    /// assert_eq!(cache.stats().stale_hits, 1);
    /// # }
    /// ```
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.limits.stale = Some(window);
        self
    }

    /// How long a value stays fresh, counted from the moment it was stored. Default: for
    /// ever. A stale value is recomputed by the next call (one flight) and removed by the
    /// upkeep of a later write (a bounded step per call, oldest first).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache = AsyncSmartCache::<&str, u32>::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .build();
    /// cache.get_or_init("rate", || async { 1 }).await;
    /// tokio::time::advance(Duration::from_secs(61)).await;
    /// assert_eq!(cache.get("rate"), None); // expired
    /// assert_eq!(cache.get_or_init("rate", || async { 2 }).await, 2); // computed again
    /// # }
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.limits.ttl = Some(ttl);
        self
    }

    /// The most entries (values plus cached errors) kept at once. Default: no bound.
    ///
    /// The bound holds at every moment. Which entry goes to make room is decided by an
    /// adaptive W-TinyLFU policy: new entries go through a small window of recent arrivals,
    /// and one leaving it is admitted to the main space only if it has been asked for more
    /// often than the entry it would evict; the window's size follows the observed hit rate
    /// (small for frequency-heavy workloads, large for recency-heavy ones). Making room costs
    /// a bounded number of steps whatever the cache holds. A capacity of 0 stores nothing:
    /// concurrent calls still share one computation.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache = AsyncSmartCache::<u32, u32>::builder().max_capacity(2).build();
    /// for n in 0..5 {
    ///     cache.get_or_init(n, || async move { n }).await;
    /// }
    /// assert_eq!(cache.entry_count(), 2); // never more than the bound
    /// # }
    /// ```
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.limits.capacity = Some(capacity);
        self
    }

    /// How long a caller waits for a computation that another *caller* drives before it
    /// gives up on it and runs its own. Default: no limit.
    ///
    /// This is the way out when the caller driving a computation stops making progress: a
    /// [`get_or_compute`](AsyncSmartCache::get_or_compute) caller (whose future may borrow,
    /// so it cannot move into a task) that is alive but never polled again, or a shared-form
    /// driver outside any tokio runtime. When the timeout passes, the waiter detaches the
    /// stuck flight (whatever it computes is no longer stored) and starts a new one with its
    /// own computation, which the other waiters join. It does not apply to shared-form
    /// computations on a runtime: a task drives those and makes progress on its own, so a
    /// timeout would only restart work (put a timeout inside such a computation instead).
    ///
    /// Waiting with a timeout needs tokio's timer (a runtime with the time driver, as
    /// `#[tokio::main]` builds); a blocking caller outside any runtime waits without one.
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache: AsyncSmartCache<u64, String> = AsyncSmartCache::builder()
    ///     .wait_timeout(Duration::from_secs(10))
    ///     .build();
    /// # drop(cache);
    /// ```
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }

    /// How long a shared-form computation that every caller has left keeps running, in case
    /// a caller comes back for it. Default [`DEFAULT_ABANDON_AFTER`] (30 seconds).
    ///
    /// A [`get_or_compute_shared`](AsyncSmartCache::get_or_compute_shared) computation on a
    /// tokio runtime runs in a task of its own, so its callers may all be dropped while it
    /// runs. It then goes on, and if it ends within this time its result is stored as usual:
    /// the work is paid for, and the next call hits. A caller that arrives meanwhile joins
    /// it. If no caller has waited for it for this long, it is dropped, nothing is stored,
    /// and the next call starts afresh: a computation that never ends cannot hold its key,
    /// or keep alive the cache (or anything else) it captured, for ever. [`Duration::ZERO`]
    /// drops it as soon as its last caller leaves; [`Duration::MAX`] never does.
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    /// use std::time::Duration;
    ///
    /// let cache: AsyncSmartCache<u64, String> = AsyncSmartCache::builder()
    ///     .abandon_after(Duration::from_secs(5))
    ///     .build();
    /// # drop(cache);
    /// ```
    pub fn abandon_after(mut self, grace: Duration) -> Self {
        self.abandon_after = (grace != Duration::MAX).then_some(grace);
        self
    }

    /// The most cached errors kept at once (they count towards
    /// [`max_capacity`](Self::max_capacity) too). Default: [`DEFAULT_MAX_CACHED_ERRORS`]
    /// (100,000), so that a flood of distinct failing keys cannot grow even an unbounded
    /// cache without limit. Past it, the error stored longest ago is evicted (counted in
    /// [`CacheStats::evictions`](crate::CacheStats::evictions)); 0 caches no error at all.
    pub fn max_cached_errors(mut self, max: u64) -> Self {
        self.limits.max_errors = max;
        self
    }

    /// The hash function of the cache's maps. Default: [`KeyHasher::Foldhash`], fast but
    /// not resistant to hash flooding; choose [`KeyHasher::SipHash`] when untrusted input
    /// picks the keys.
    pub fn key_hasher(mut self, hasher: KeyHasher) -> Self {
        self.limits.hasher = hasher;
        self
    }

    /// Calls `listener` with the key of every entry removed by the capacity bound (or the
    /// bound on cached errors) or by expiry, and why. Not for `invalidate`, `clear`,
    /// replacements, or entries that a later value or error overwrote.
    ///
    /// The calls are made at the start of a later write (a miss or a `prime`), by the
    /// caller making it, holding no lock of the cache: the listener may use the cache. Keep
    /// it short, since that caller waits for it; a panic in it is caught and ignored.
    ///
    /// ```
    /// use smartcache::{AsyncSmartCache, RemovalCause};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let evicted = Arc::new(Mutex::new(Vec::new()));
    /// let heard = Arc::clone(&evicted);
    /// let cache: AsyncSmartCache<u32, u32> = AsyncSmartCache::builder()
    ///     .max_capacity(1)
    ///     .eviction_listener(move |key, cause| heard.lock().unwrap().push((key, cause)))
    ///     .build();
    /// cache.prime(1, 10);
    /// cache.prime(2, 20); // evicts key 1
    /// cache.prime(3, 30); // tells the listener, evicts key 2
    /// assert_eq!(*evicted.lock().unwrap(), [(1, RemovalCause::Evicted)]);
    /// ```
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(K, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        let listener: Listener<K> = Arc::new(listener);
        self.listener = Some(Box::new(listener));
        self
    }

    /// The name under which the cache is listed in the [registry]. An
    /// unnamed cache is not registered.
    ///
    /// ```
    /// use smartcache::{AsyncSmartCache, registry};
    ///
    /// let cache = AsyncSmartCache::<u32, u32>::builder().name("docs::squares").build();
    /// assert!(registry::find("docs::squares").is_some()); // listed while it lives
    /// drop(cache);
    /// assert!(registry::find("docs::squares").is_none());
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Includes each key, formatted with `Debug`, in the cache's `tracing` events (feature
    /// `tracing`). Off by default: keys may be personal data.
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    ///
    /// // Events of this cache carry `key=42`, formatted with `Debug`.
    /// let cache = AsyncSmartCache::<u64, String>::builder()
    ///     .name("docs::traced")
    ///     .trace_keys()
    ///     .build();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "tracing")]
    pub fn trace_keys(mut self) -> Self
    where
        K: fmt::Debug,
    {
        self.trace_key = Some(|key| format!("{key:?}"));
        self
    }

    /// Builds the cache, registering it if it has a name.
    ///
    /// ```
    /// use smartcache::AsyncSmartCache;
    ///
    /// let cache = AsyncSmartCache::<u32, u32>::builder().build(); // the same as `new()`
    /// assert_eq!(cache.entry_count(), 0);
    /// ```
    #[must_use]
    pub fn build(self) -> AsyncSmartCache<K, V, E> {
        let stats = Arc::new(StatsCore::new());
        let name: Option<Arc<str>> = self.name.map(Into::into);
        if let Some(name) = &name {
            registry::register(Arc::clone(name), &stats);
        }
        #[cfg(feature = "tracing")]
        let tracer = Tracer::new(name.clone(), self.trace_key);
        #[cfg(not(feature = "tracing"))]
        let tracer = Tracer::new();
        let listener = (self.listener)
            .and_then(|any| any.downcast::<Listener<K>>().ok())
            .map(|listener| *listener);
        let store = Store::new(self.limits, stats, self.hint).with_listener(listener);
        let cache = AsyncSmartCache::from_parts(
            store,
            name.clone(),
            tracer,
            self.wait_timeout,
            self.abandon_after,
        );
        #[cfg(feature = "redis")]
        if let Some(maker) = self.shared {
            let limits = crate::redis::shared::Limits {
                ttl: self.limits.ttl,
                retry: self.limits.retry,
                max_retry: self.limits.max_retry,
            };
            match &name {
                Some(name) => cache.attach_shared(maker, name, limits),
                // The name is the cache's key space on Redis: without one, local-only.
                None => crate::trace::unnamed_shared_cache(),
            }
        }
        cache
    }
}

#[cfg(feature = "redis")]
impl<K, V, E> AsyncSmartCacheBuilder<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    E: Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    /// Puts the cache on a shared tier (feature `redis`): every process of the fleet with a
    /// cache of the same [name](Self::name) and types on the same Redis shares one
    /// computation and one cached failure per key, and `invalidate` and `clear` reach them
    /// all. A shared cache needs a name (its key space on Redis); without one it stays
    /// local-only, and says so in a `tracing` event.
    ///
    /// Every form goes through the tier on a local miss (inside a tokio runtime; a blocking
    /// caller outside one stays local). Redis down, slow or restarting never fails a call:
    /// the cache runs local-only meanwhile (see [`crate::redis`]).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), smartcache::redis::RedisTierError> {
    /// use smartcache::AsyncSmartCache;
    /// use smartcache::redis::RedisTier;
    ///
    /// let tier = RedisTier::connect("redis://127.0.0.1:6379").await?;
    /// let users: AsyncSmartCache<u64, String, String> =
    ///     AsyncSmartCache::builder().name("users").shared(tier).build();
    /// # drop(users); Ok(()) }
    /// ```
    pub fn shared(self, tier: crate::redis::RedisTier) -> Self {
        self.shared_with(tier, crate::redis::shared::ErrorCodec::serde())
    }
}

#[cfg(feature = "redis")]
impl<K, V, E> AsyncSmartCacheBuilder<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    E: Send + Sync + 'static,
{
    /// [`shared`](Self::shared), with the cache's errors carried by `codec`.
    pub(crate) fn shared_with(
        mut self,
        tier: crate::redis::RedisTier,
        codec: crate::redis::shared::ErrorCodec<E>,
    ) -> Self {
        self.shared = Some(crate::redis::shared::maker(tier, codec));
        self
    }
}

impl<K, V, E> fmt::Debug for AsyncSmartCacheBuilder<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSmartCacheBuilder")
            .field("retry_interval", &self.limits.retry)
            .field("time_to_live", &self.limits.ttl)
            .field("max_capacity", &self.limits.capacity)
            .field("wait_timeout", &self.wait_timeout)
            .field("abandon_after", &self.abandon_after)
            .field("max_cached_errors", &self.limits.max_errors)
            .field("key_hasher", &self.limits.hasher)
            .field("eviction_listener", &self.listener.is_some())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
