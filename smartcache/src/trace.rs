//! `tracing` events for the slow path (feature `tracing`): computations starting, ending,
//! failing, panicking, being handed over or abandoned, and cached-error answers. Hits emit
//! nothing. Keys are left out unless the builder's `trace_keys` asked for them.
//!
//! Without the feature, [`Tracer`] is empty and every method compiles to nothing.
//!
//! Levels: everything is `DEBUG` but a panic, which is `WARN`. A failed computation is not a
//! warning: its error goes back to every caller, which knows whether it was expected (a
//! 404 from an upstream) and logs it at the level it wants; a cached-error answer is the
//! cache doing its job. A panic is a bug in the computation, caught and turned into
//! `CacheError::Panicked` (the cache goes on working), so `WARN` and not `ERROR`.

use std::time::Duration;

#[cfg(feature = "tracing")]
use std::sync::Arc;

/// The target of every event, for filtering (`RUST_LOG=smartcache=debug`).
#[cfg(feature = "tracing")]
const TARGET: &str = "smartcache";

/// How an ended computation is reported.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))] // read only by the traced build
pub(crate) enum Ended<'a> {
    Value,
    Error,
    Panic(&'a str),
}

pub(crate) struct Tracer<K> {
    #[cfg(feature = "tracing")]
    name: Option<Arc<str>>,
    #[cfg(feature = "tracing")]
    key: Option<fn(&K) -> String>,
    #[cfg(not(feature = "tracing"))]
    key: std::marker::PhantomData<fn(&K)>,
}

#[cfg(feature = "tracing")]
impl<K> Tracer<K> {
    pub(crate) fn new(name: Option<Arc<str>>, key: Option<fn(&K) -> String>) -> Self {
        Self { name, key }
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }

    /// The key as text, when keys are traced (a `None` field is left out of the event).
    fn key(&self, key: &K) -> Option<String> {
        self.key.map(|format| format(key))
    }

    pub(crate) fn started(&self, key: &K) {
        tracing::debug!(target: TARGET, cache = self.name(), key = self.key(key), "computation started");
    }

    pub(crate) fn ended(&self, key: &K, ended: &Ended<'_>, took: Duration) {
        let (cache, key) = (self.name(), self.key(key));
        match ended {
            Ended::Value => {
                tracing::debug!(target: TARGET, cache, key, ?took, "computation finished");
            }
            Ended::Error => {
                // DEBUG: the caller receives the error and decides how loud it is.
                tracing::debug!(target: TARGET, cache, key, ?took, "computation failed");
            }
            Ended::Panic(message) => {
                tracing::warn!(target: TARGET, cache, key, ?took, panic = message, "computation panicked");
            }
        }
    }

    pub(crate) fn cached_error(&self, key: &K, retry_in: Duration) {
        tracing::debug!(target: TARGET, cache = self.name(), key = self.key(key), ?retry_in, "answered with a cached error");
    }

    pub(crate) fn refresh_started(&self, key: &K) {
        tracing::debug!(target: TARGET, cache = self.name(), key = self.key(key), "refresh-ahead started");
    }

    pub(crate) fn stale(&self, key: &K, expired_for: Duration) {
        // INFO: the backend is failing and callers get old data, which an operator wants to see.
        tracing::info!(target: TARGET, cache = self.name(), key = self.key(key), ?expired_for, "recompute failed; answered with the stale value");
    }

    pub(crate) fn cycle(&self, key: &K) {
        tracing::warn!(target: TARGET, cache = self.name(), key = self.key(key), "a computation waits for its own key; answered with a cycle error");
    }

    pub(crate) fn superseded(&self, key: &K) {
        tracing::warn!(target: TARGET, cache = self.name(), key = self.key(key), "wait timeout: the driving caller made no progress; computing again");
    }

    pub(crate) fn left(&self, key: &K, abandoned: bool) {
        if abandoned {
            tracing::debug!(target: TARGET, cache = self.name(), key = self.key(key), "every caller left; computation dropped");
        } else {
            tracing::debug!(target: TARGET, cache = self.name(), key = self.key(key), "driving caller left; a waiter takes over");
        }
    }
}

#[cfg(not(feature = "tracing"))]
#[allow(clippy::unused_self)] // the same signatures as with the feature, doing nothing
impl<K> Tracer<K> {
    pub(crate) fn new() -> Self {
        Self {
            key: std::marker::PhantomData,
        }
    }

    #[inline]
    pub(crate) fn started(&self, _: &K) {}

    #[inline]
    pub(crate) fn ended(&self, _: &K, _: &Ended<'_>, _: Duration) {}

    #[inline]
    pub(crate) fn cached_error(&self, _: &K, _: Duration) {}

    #[inline]
    pub(crate) fn refresh_started(&self, _: &K) {}

    #[inline]
    pub(crate) fn stale(&self, _: &K, _: Duration) {}

    #[inline]
    pub(crate) fn cycle(&self, _: &K) {}

    #[inline]
    pub(crate) fn superseded(&self, _: &K) {}

    #[inline]
    pub(crate) fn left(&self, _: &K, _: bool) {}
}

/// A cache was put on the shared tier without a name: it runs local-only.
#[cfg(feature = "redis")]
pub(crate) fn unnamed_shared_cache() {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: TARGET, "a shared cache needs a name (its key space on Redis); this one runs local-only");
}

/// `#[smart_cached(shared)]` caches found no tier installed: they run local-only.
#[cfg(feature = "redis")]
pub(crate) fn no_tier_installed() {
    #[cfg(feature = "tracing")]
    tracing::info!(target: TARGET, "no shared tier installed (smartcache::redis::install): #[smart_cached(shared)] caches run local-only");
}

/// The shared tier's breaker opened: its caches run local-only for now.
#[cfg(feature = "redis")]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn tier_degraded(probe_after: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: TARGET, ?probe_after, "redis is unreachable or slow: shared caches run local-only");
}

/// The shared tier answered again after faults: its caches share again.
#[cfg(feature = "redis")]
pub(crate) fn tier_recovered() {
    #[cfg(feature = "tracing")]
    tracing::info!(target: TARGET, "redis answers again: shared caches share again");
}
