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
use crate::stats::StatsCore;
use crate::store::{DEFAULT_MAX_CACHED_ERRORS, Limits, Store};
use crate::trace::Tracer;

/// The cache's types, without owning any value of them (always `Send + Sync`).
type Types<K, V, E> = PhantomData<fn() -> (K, V, E)>;

/// The default retry interval of a cached error: 5 minutes.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(5 * 60);

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
    /// A `Listener<K>`, type-erased.
    // NOTE: held as `dyn Any` so that the builder's fields do not mention `K` beyond the
    // phantom: a field of a type over `K` changes which bound failures the compiler reports
    // for a bad key type in `#[smart_cached]` code (the ui tests pin those diagnostics).
    listener: Option<Box<dyn Any + Send + Sync>>,
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
            },
            name: None,
            listener: None,
            #[cfg(feature = "tracing")]
            trace_key: None,
            types: PhantomData,
        }
    }

    /// How long a failure stays cached, counted from the moment it failed. Default 5
    /// minutes; [`Duration::ZERO`] turns error caching off (every call after a failure
    /// computes again, still one flight at a time).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.limits.retry = interval;
        self
    }

    /// How long a value stays fresh, counted from the moment it was stored. Default: for
    /// ever. A stale value is recomputed by the next call (one flight) and removed by the
    /// upkeep of a later write (a bounded step per call, oldest first).
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
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.limits.capacity = Some(capacity);
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

    /// The name under which the cache is listed in the [registry](crate::registry). An
    /// unnamed cache is not registered.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Includes each key, formatted with `Debug`, in the cache's `tracing` events (feature
    /// `tracing`). Off by default: keys may be personal data.
    #[cfg(feature = "tracing")]
    pub fn trace_keys(mut self) -> Self
    where
        K: fmt::Debug,
    {
        self.trace_key = Some(|key| format!("{key:?}"));
        self
    }

    /// Builds the cache, registering it if it has a name.
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
        let store = Store::new(self.limits, stats).with_listener(listener);
        AsyncSmartCache::from_parts(store, name, tracer)
    }
}

impl<K, V, E> fmt::Debug for AsyncSmartCacheBuilder<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSmartCacheBuilder")
            .field("retry_interval", &self.limits.retry)
            .field("time_to_live", &self.limits.ttl)
            .field("max_capacity", &self.limits.capacity)
            .field("max_cached_errors", &self.limits.max_errors)
            .field("key_hasher", &self.limits.hasher)
            .field("eviction_listener", &self.listener.is_some())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
