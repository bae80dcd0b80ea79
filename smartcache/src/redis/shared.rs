//! A cache on the shared tier: the fleet's part of a miss (a shared hit, or the key's lease
//! and a commit), and local copies kept coherent by the events of other processes.
//!
//! Every form of call reaches it on a local miss: the flight's computation is wrapped by
//! [`through_fleet`], which asks the fleet first ([`SharedHook::begin`]) and runs the
//! computation only under the key's lease, then commits it ([`SharedHook::finish`]). The local flight engine still
//! gives single-flight inside the process, so one process sends one request per key,
//! however many callers it has.

use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::envelope::{Body, Decoded, Envelope, fingerprint};
use super::protocol::Event;
use super::tier::{Degraded, Found, Listener, Namespace, RedisTier, random_u64};
use crate::engine::Inner;
use crate::flight::Flight;
use crate::resilience::Backoff;
use crate::stats::SharedCounters;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A boxed, `Send` future of the tier's own work (never the user's computation, so that a
/// call's future stays `Send` exactly when the user's is).
pub(crate) type TierFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a cache reaches the fleet, whatever its types: made where the serde bounds hold.
pub(crate) trait SharedHook<K, V, E>: Send + Sync {
    /// The fleet's part of a miss, before computing: its entry if it has a usable one
    /// (waiting for another process's lease first), or the key's lease, or local-only.
    fn begin<'a>(&'a self, key: &'a K) -> TierFuture<'a, Begin<V, E>>;
    /// Commits the result computed under `lease` for the fleet; for a failure, the retry
    /// window it was given there (the fleet's backoff), which the local copy keeps too.
    fn finish<'a>(
        &'a self,
        lease: Lease,
        result: &'a Result<V, E>,
    ) -> TierFuture<'a, Option<Duration>>;
    /// Removes `key`'s entry (and lease) fleet-wide; every process drops its local copy.
    fn invalidate(&self, key: &K);
    /// Clears the cache fleet-wide.
    fn clear(&self);
}

/// What the fleet said before a computation.
pub(crate) enum Begin<V, E> {
    /// Its value.
    Value(V),
    /// Its cached failure, for this much longer.
    Failure(E, Duration),
    /// No usable entry: compute under this lease, then [`SharedHook::finish`].
    Lead(Lease),
    /// Redis cannot be asked (or the key cannot be encoded): compute here only.
    Local,
}

/// What the fleet decided about a flight's failure.
pub(crate) enum FleetWindow {
    /// It came from the fleet, cached there for this much longer.
    Cached(Duration),
    /// It was computed here and committed with this retry window (the fleet's backoff).
    Committed(Duration),
}

/// Notes on `flight` (held weakly: a task must not keep its flight alive) what the fleet
/// decided about its failure.
pub(crate) fn fleet_note<V, E>(
    flight: &Arc<Flight<V, E>>,
) -> impl FnOnce(FleetWindow) + Send + use<V, E>
where
    V: Send + Sync,
    E: Send + Sync,
{
    let flight = Arc::downgrade(flight);
    move |window| {
        if let Some(flight) = flight.upgrade() {
            // The flight's only computation sets them, once.
            let _ = match window {
                FleetWindow::Cached(left) => flight.fleet.set(left),
                FleetWindow::Committed(window) => flight.window.set(window),
            };
        }
    }
}

/// A miss through the fleet: the entry of another process, or `compute` run under the key's
/// lease and committed for every process. Generic over the computation, so that the
/// future is `Send` exactly when `compute` is.
pub(crate) async fn through_fleet<K, V, E>(
    hook: &dyn SharedHook<K, V, E>,
    key: K,
    compute: impl Future<Output = Result<V, E>>,
    note: impl FnOnce(FleetWindow),
) -> Result<V, E> {
    match hook.begin(&key).await {
        Begin::Value(value) => Ok(value),
        Begin::Failure(error, left) => {
            note(FleetWindow::Cached(left));
            Err(error)
        }
        Begin::Lead(lease) => {
            let result = compute.await;
            if let Some(window) = hook.finish(lease, &result).await {
                note(FleetWindow::Committed(window));
            }
            result
        }
        Begin::Local => compute.await,
    }
}

/// Makes a cache's hook once the cache exists (its local copies are what events remove);
/// with the tier, whose degraded time the cache's statistics show.
pub(crate) type HookMaker<K, V, E> = Box<
    dyn FnOnce(Weak<Inner<K, V, E>>, &str, Limits) -> (Arc<dyn SharedHook<K, V, E>>, RedisTier)
        + Send,
>;

/// What a shared entry keeps of the cache's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) ttl: Option<Duration>,
    pub(crate) retry: Duration,
    /// The cap on backoff (`None`: no growth).
    pub(crate) max_retry: Option<Duration>,
}

/// How a shared cache's errors travel: encoded for the fleet, or not shared at all (then a
/// failure releases the lease, and the next process computes for itself).
pub(crate) struct ErrorCodec<E> {
    pub(crate) encode: fn(&E) -> Option<Vec<u8>>,
    pub(crate) decode: fn(&[u8]) -> Option<E>,
}

impl<E> Clone for ErrorCodec<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for ErrorCodec<E> {}

impl<E: Serialize + DeserializeOwned> ErrorCodec<E> {
    /// Errors encoded with `serde`, as values are.
    pub(crate) fn serde() -> Self {
        Self {
            encode: |error| rmp_serde::to_vec(error).ok(),
            decode: |bytes| rmp_serde::from_slice(bytes).ok(),
        }
    }
}

impl<E> ErrorCodec<E> {
    /// Errors stay in their process (types that `serde` cannot carry, or that cannot fail).
    pub(crate) fn local() -> Self {
        Self {
            encode: |_| None,
            decode: |_| None,
        }
    }
}

/// The maker for a cache of these types on `tier`.
pub(crate) fn maker<K, V, E>(tier: RedisTier, codec: ErrorCodec<E>) -> HookMaker<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + 'static,
{
    Box::new(move |cache, name, limits| {
        let handle = tier.clone();
        let hook = Arc::new_cyclic(|me: &Weak<Shared<K, V, E>>| {
            let me = me.clone();
            let listener: Arc<Listener> = Arc::new(move |event: &Event| {
                if let Some(shared) = me.upgrade() {
                    shared.on_event(event);
                }
            });
            Shared {
                tier,
                name: name.to_owned(),
                schema: fingerprint::<K, V, E>(),
                namespace: OnceCell::new(),
                cache,
                limits,
                codec,
                listener,
                _types: std::marker::PhantomData,
            }
        });
        (hook as Arc<dyn SharedHook<K, V, E>>, handle)
    })
}

struct Shared<K, V, E> {
    tier: RedisTier,
    name: String,
    schema: u64,
    namespace: OnceCell<Namespace>,
    cache: Weak<Inner<K, V, E>>,
    limits: Limits,
    codec: ErrorCodec<E>,
    /// Held here: the tier holds it weakly.
    listener: Arc<Listener>,
    _types: std::marker::PhantomData<fn() -> (V, E)>,
}

impl<K, V, E> Shared<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + 'static,
{
    /// Bumps one of the cache's shared-tier counters.
    fn count(&self, counter: impl FnOnce(&SharedCounters) -> &AtomicU64) {
        if let Some(cache) = self.cache.upgrade() {
            counter(&cache.store.stats.shared).fetch_add(1, Relaxed);
        }
    }

    async fn namespace(&self) -> &Namespace {
        self.namespace
            .get_or_init(|| self.tier.namespace(&self.name, self.schema, &self.listener))
            .await
    }

    /// Another process changed a key: drop the local copy (and, for an invalidation, the
    /// local flight, whose result would be stale).
    fn on_event(&self, event: &Event) {
        let Some(namespace) = self.namespace.get() else {
            return;
        };
        if namespace.is_own(event) {
            return;
        }
        let Some(cache) = self.cache.upgrade() else {
            return;
        };
        match event {
            Event::Set { key, .. } => {
                if let Ok(key) = rmp_serde::from_slice::<K>(key) {
                    cache.store.remove(&key);
                }
            }
            Event::Deleted { key, .. } => {
                if let Ok(key) = rmp_serde::from_slice::<K>(key) {
                    cache.invalidate_local(&key);
                }
            }
            Event::Cleared(generation) => {
                namespace.cleared(*generation);
                cache.clear_local();
            }
            // Events may have been missed: what came from the fleet may be stale. (Entries
            // computed here meanwhile go too: the cache cannot tell them apart.)
            Event::Reconnected => {
                cache.clear_local();
                let namespace = namespace.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { namespace.refresh_generation().await });
                }
            }
            Event::Released { .. } => {}
        }
    }

    /// [`SharedHook::begin`].
    async fn begin_here(&self, key: &K) -> Begin<V, E> {
        // Outside a tokio runtime the tier's connection cannot run: local-only.
        if tokio::runtime::Handle::try_current().is_err() {
            return Begin::Local;
        }
        let Ok(key) = rmp_serde::to_vec(key) else {
            return Begin::Local;
        };
        let namespace = self.namespace().await;
        let token = format!("{:016x}", random_u64());
        // Whether the last wait ended without an event: the holder's lease ran out.
        let mut waited_out = false;
        loop {
            match namespace.lookup_or_lease(&key, &token).await {
                Err(degraded) => {
                    self.count(|c| &c.local_only);
                    if degraded == Degraded::Fault {
                        self.count(|c| &c.redis_errors);
                    }
                    return Begin::Local;
                }
                Ok(Found::Entry { envelope, age }) => {
                    match Envelope::decode_with::<V, E>(&envelope, self.schema, self.codec.decode) {
                        Some(Decoded::Value { value, .. }) => {
                            self.count(|c| &c.hits);
                            return Begin::Value(value);
                        }
                        Some(Decoded::Error {
                            error, retry_ms, ..
                        }) => {
                            self.count(|c| &c.hits);
                            let left = Duration::from_millis(retry_ms).saturating_sub(age);
                            return Begin::Failure(error, left);
                        }
                        // Another schema or an undecodable entry: a miss. It goes, and the
                        // next look takes the lease to overwrite it.
                        None => {
                            if namespace.invalidate(&key).await.is_err() {
                                return Begin::Local;
                            }
                        }
                    }
                }
                Ok(Found::Held { for_at_most }) => {
                    self.count(|c| &c.lease_waits);
                    // Woken by an event, or not before the lease's own time: run out.
                    waited_out = !namespace.wait_for(&key, for_at_most).await
                        && for_at_most <= self.tier.poll_cap();
                }
                Ok(Found::Leased { old }) => {
                    if waited_out {
                        self.count(|c| &c.lease_timeouts);
                    }
                    self.count(|c| &c.misses);
                    let failures = old
                        .and_then(|(old, _)| rmp_serde::from_slice::<Envelope>(&old).ok())
                        .map_or(0, |old| match old.body {
                            Body::Error { failures, .. } => failures,
                            Body::Value { .. } => 0,
                        });
                    let lease = Lease::hold(namespace.clone(), key, token, self.tier.lease_time());
                    return Begin::Lead(lease.with_failures(failures));
                }
            }
        }
    }

    /// [`SharedHook::finish`]: commits the result, unless it is an error that is not
    /// cached (a zero retry interval) or cannot travel; the lease is then released.
    async fn finish_here(&self, mut lease: Lease, result: &Result<V, E>) -> Option<Duration> {
        let Limits {
            ttl,
            retry,
            max_retry,
        } = self.limits;
        let envelope = match result {
            Ok(value) => {
                Envelope::value(self.schema, value, ttl.map(millis)).map(|envelope| (envelope, ttl))
            }
            // A zero retry interval caches no error, here as locally.
            Err(_) if retry.is_zero() => None,
            Err(error) => (self.codec.encode)(error).map(|error| {
                // The fleet's count of consecutive failures sets the backoff, fleet-wide.
                let failures = lease.failures.saturating_add(1);
                let backoff = Backoff::new(retry, max_retry);
                let window = Duration::from_nanos(backoff.interval(failures, None, random_u64()));
                let envelope =
                    Envelope::encoded_error(self.schema, error, millis(window), failures);
                (envelope, Some(window))
            }),
        };
        let Some((bytes, usable)) = envelope.and_then(|(e, usable)| Some((e.encode()?, usable)))
        else {
            return None; // dropping the lease releases it
        };
        // Kept a little past its usable time, so that the next lease holder learns the
        // failure count (and, later, the last good value) from it.
        let keep = usable.map(|usable| usable.saturating_mul(2));
        let namespace = lease.namespace.clone();
        if namespace
            .commit(&lease.key, &lease.token, &bytes, usable, keep)
            .await
            .is_ok()
        {
            lease.committed();
            // A failure's usable time is its window.
            return usable.filter(|_| result.is_err());
        }
        None
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl<K, V, E> SharedHook<K, V, E> for Shared<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + 'static,
{
    fn begin<'a>(&'a self, key: &'a K) -> TierFuture<'a, Begin<V, E>> {
        Box::pin(self.begin_here(key))
    }

    fn finish<'a>(
        &'a self,
        lease: Lease,
        result: &'a Result<V, E>,
    ) -> TierFuture<'a, Option<Duration>> {
        Box::pin(self.finish_here(lease, result))
    }

    fn invalidate(&self, key: &K) {
        let Ok(key) = rmp_serde::to_vec(key) else {
            return;
        };
        self.in_background(move |namespace| async move {
            let _ = namespace.invalidate(&key).await;
        });
    }

    fn clear(&self) {
        self.in_background(|namespace| async move {
            let _ = namespace.clear().await;
        });
    }
}

impl<K, V, E> Shared<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    E: Send + Sync + 'static,
{
    /// Runs `work` on the namespace in a task of the current runtime (the caller's call is
    /// synchronous); outside a runtime, the fleet is not told (traced).
    fn in_background<F, Fut>(&self, work: F)
    where
        F: FnOnce(Namespace) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (tier, name, schema, listener) = (
            self.tier.clone(),
            self.name.clone(),
            self.schema,
            Arc::clone(&self.listener),
        );
        let known = self.namespace.get().cloned();
        runtime.spawn(async move {
            let namespace = match known {
                Some(namespace) => namespace,
                None => tier.namespace(&name, schema, &listener).await,
            };
            work(namespace).await;
        });
    }
}

/// A lease held while computing: renewed every third of the lease time by a task of its
/// own, released if dropped before the commit (the computation was dropped, or its result
/// is not for the fleet).
pub(crate) struct Lease {
    namespace: Namespace,
    key: Vec<u8>,
    token: String,
    renewal: tokio::task::AbortHandle,
    committed: bool,
    /// Consecutive failures of the key before this computation (from the old entry).
    failures: u32,
}

impl Lease {
    fn hold(namespace: Namespace, key: Vec<u8>, token: String, lease: Duration) -> Self {
        let renewal = {
            let (namespace, key, token) = (namespace.clone(), key.clone(), token.clone());
            tokio::spawn(async move {
                let every = (lease / 3).max(Duration::from_millis(10));
                loop {
                    tokio::time::sleep(every).await;
                    // Lost (or Redis is down): nothing more to renew.
                    if namespace.renew(&key, &token).await != Ok(true) {
                        return;
                    }
                }
            })
            .abort_handle()
        };
        Self {
            namespace,
            key,
            token,
            renewal,
            committed: false,
            failures: 0,
        }
    }

    fn with_failures(mut self, failures: u32) -> Self {
        self.failures = failures;
        self
    }

    fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.committed {
            return;
        }
        // Dropped unfinished, or the commit failed: free the key for the next process now,
        // rather than after the lease time.
        let (namespace, key, token) = (
            self.namespace.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = namespace.release(&key, &token).await;
            });
        }
    }
}

/// Whether a cache has a hook (set once, after the cache is built).
pub(crate) type HookSlot<K, V, E> = OnceLock<Arc<dyn SharedHook<K, V, E>>>;
