//! A cache on the shared tier: the fleet's part of a miss (a shared hit, or the key's lease
//! and a commit), and local copies kept coherent by the events of other processes.
//!
//! Every form of call reaches it on a local miss: the flight's computation is wrapped by
//! [`SharedHook::run`] (the shared form's `Send + 'static` future) or
//! [`SharedHook::run_local`] (a future that borrows from its caller), which ask the fleet
//! first and run the computation only under the key's lease. The local flight engine still
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
use crate::flight::{FleetNote, SharedComputation};
use crate::stats::SharedCounters;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How a cache reaches the fleet, whatever its types: made where the serde bounds hold.
pub(crate) trait SharedHook<K, V, E>: Send + Sync {
    /// Wraps a miss's computation: the fleet's entry if it has a usable one, else the
    /// computation, run under the key's lease and committed for the fleet.
    /// A failure that comes from the fleet is noted in `note` (its time left there), so that
    /// the flight answers it as a cached error.
    fn run(
        self: Arc<Self>,
        key: K,
        compute: SharedComputation<V, E>,
        note: FleetNote,
    ) -> SharedComputation<V, E>;
    /// [`run`](Self::run) for a computation that borrows from its caller (the local form).
    fn run_local<'a>(
        &'a self,
        key: K,
        compute: LocalComputation<'a, V, E>,
        note: FleetNote,
    ) -> LocalComputation<'a, V, E>;
    /// Removes `key`'s entry (and lease) fleet-wide; every process drops its local copy.
    fn invalidate(&self, key: &K);
    /// Clears the cache fleet-wide.
    fn clear(&self);
}

/// A computation of the local form, which may borrow from its caller.
pub(crate) type LocalComputation<'a, V, E> =
    std::pin::Pin<Box<dyn Future<Output = Result<V, E>> + 'a>>;

/// Makes a cache's hook once the cache exists (its local copies are what events remove).
pub(crate) type HookMaker<K, V, E> =
    Box<dyn FnOnce(Weak<Inner<K, V, E>>, &str, Limits) -> Arc<dyn SharedHook<K, V, E>> + Send>;

/// What a shared entry keeps of the cache's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) ttl: Option<Duration>,
    pub(crate) retry: Duration,
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
        Arc::new_cyclic(|me: &Weak<Shared<K, V, E>>| {
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
        }) as Arc<dyn SharedHook<K, V, E>>
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

    /// The fleet's part of a miss: its entry if it has a usable one, else `compute` under
    /// the key's lease (waiting for another process's lease first); local-only if Redis
    /// cannot be asked.
    async fn fleet(
        &self,
        key: K,
        compute: impl Future<Output = Result<V, E>>,
        note: FleetNote,
    ) -> Result<V, E> {
        // Outside a tokio runtime the tier's connection cannot run: local-only.
        if tokio::runtime::Handle::try_current().is_err() {
            return compute.await;
        }
        let Ok(key) = rmp_serde::to_vec(&key) else {
            return compute.await;
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
                    return compute.await;
                }
                Ok(Found::Entry { envelope, age }) => {
                    match Envelope::decode_with::<V, E>(&envelope, self.schema, self.codec.decode) {
                        Some(Decoded::Value { value, .. }) => {
                            self.count(|c| &c.hits);
                            return Ok(value);
                        }
                        Some(Decoded::Error {
                            error, retry_ms, ..
                        }) => {
                            let left = Duration::from_millis(retry_ms).saturating_sub(age);
                            let _ = note.set(left); // the flight's only computation sets it
                            self.count(|c| &c.hits);
                            return Err(error);
                        }
                        // Another schema or an undecodable entry: a miss. It goes, and the
                        // next look takes the lease to overwrite it.
                        None => {
                            if namespace.invalidate(&key).await.is_err() {
                                return compute.await;
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
                    let old = old.map(|(envelope, _)| envelope);
                    return self
                        .compute_under_lease(namespace, key, token, old, compute)
                        .await;
                }
            }
        }
    }

    /// The computation under the key's lease: renewed in the background while it runs,
    /// committed for the fleet when it ends, released if it is dropped.
    async fn compute_under_lease(
        &self,
        namespace: &Namespace,
        key: Vec<u8>,
        token: String,
        old: Option<Vec<u8>>,
        compute: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        let mut lease = Lease::hold(namespace.clone(), key, token, self.tier.lease_time());
        let result = compute.await;
        let Limits { ttl, retry } = self.limits;
        let failures = old
            .and_then(|old| rmp_serde::from_slice::<Envelope>(&old).ok())
            .map_or(0, |old| match old.body {
                Body::Error { failures, .. } => failures,
                Body::Value { .. } => 0,
            });
        let envelope = match &result {
            Ok(value) => {
                Envelope::value(self.schema, value, ttl.map(millis)).map(|envelope| (envelope, ttl))
            }
            // A zero retry interval caches no error, here as locally.
            Err(_) if retry.is_zero() => None,
            Err(error) => (self.codec.encode)(error).map(|error| {
                let envelope =
                    Envelope::encoded_error(self.schema, error, millis(retry), failures + 1);
                (envelope, Some(retry))
            }),
        };
        if let Some((bytes, usable)) = envelope.and_then(|(e, usable)| Some((e.encode()?, usable)))
        {
            // Kept a little past its usable time, so that the next lease holder learns the
            // failure count (and, later, the last good value) from it.
            let keep = usable.map(|usable| usable.saturating_mul(2));
            if namespace
                .commit(&lease.key, &lease.token, &bytes, usable, keep)
                .await
                .is_ok()
            {
                lease.committed();
            }
        }
        result
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
    fn run(
        self: Arc<Self>,
        key: K,
        compute: SharedComputation<V, E>,
        note: FleetNote,
    ) -> SharedComputation<V, E> {
        Box::pin(async move { self.fleet(key, compute, note).await })
    }

    fn run_local<'a>(
        &'a self,
        key: K,
        compute: LocalComputation<'a, V, E>,
        note: FleetNote,
    ) -> LocalComputation<'a, V, E> {
        Box::pin(self.fleet(key, compute, note))
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
/// own, released if dropped before the commit.
struct Lease {
    namespace: Namespace,
    key: Vec<u8>,
    token: String,
    renewal: tokio::task::AbortHandle,
    committed: bool,
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
        }
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
