//! The eviction listener: entries removed by the capacity bound or by expiry, reported to
//! user code outside every lock of the cache.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::clock::lock;

/// Why an entry left the cache, as told to an
/// [`eviction_listener`](crate::AsyncSmartCacheBuilder::eviction_listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Removed to keep within [`max_capacity`](crate::AsyncSmartCacheBuilder::max_capacity)
    /// or [`max_cached_errors`](crate::AsyncSmartCacheBuilder::max_cached_errors).
    Evicted,
    /// A value past its time to live, or a cached error past its retry window.
    Expired,
}

/// The listener the builder was given.
pub(crate) type Listener<K> = Arc<dyn Fn(K, RemovalCause) + Send + Sync>;

/// Removals waiting to be told to the listener.
pub(crate) struct Notices<K> {
    listener: Option<Listener<K>>,
    // NOTE: a leaf lock: taken under the upkeep lock to push, and alone to take the list;
    // nothing else is locked while it is held, and the listener runs without it.
    pending: Mutex<Vec<(K, RemovalCause)>>,
    any: AtomicBool,
}

impl<K> std::fmt::Debug for Notices<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl<K> Notices<K> {
    pub(crate) fn new(listener: Option<Listener<K>>) -> Self {
        Self {
            listener,
            pending: Mutex::new(Vec::new()),
            any: AtomicBool::new(false),
        }
    }

    /// Queues a removal for the listener, if there is one (`key` is called only then).
    #[inline]
    pub(crate) fn push(&self, key: impl FnOnce() -> K, cause: RemovalCause) {
        if self.listener.is_some() {
            lock(&self.pending).push((key(), cause));
            self.any.store(true, Relaxed);
        }
    }

    /// Tells the listener every queued removal. The caller holds no lock of the cache, so
    /// the listener may call the cache; a panic in it is caught and ignored.
    pub(crate) fn deliver(&self) {
        let Some(listener) = &self.listener else {
            return;
        };
        if !self.any.swap(false, Relaxed) {
            return;
        }
        let pending = std::mem::take(&mut *lock(&self.pending));
        for (key, cause) in pending {
            _ = catch_unwind(AssertUnwindSafe(|| listener(key, cause)));
        }
    }
}
