//! Helpers shared by the runtime's behaviour tests: gates that hold a computation until the
//! test lets it go, counters of computations, and bounded waiting (a test fails, never hangs).
#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};

use smartcache::{AsyncSmartCache, CacheError};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Holds computations until opened; opening is remembered, so no wake-up can be missed.
#[derive(Clone)]
pub(crate) struct Gate(Arc<Semaphore>);

impl Gate {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Semaphore::new(0)))
    }

    /// Waits until the gate is open.
    pub(crate) async fn pass(&self) {
        // A closed semaphore means "open": every waiter, present and future, passes.
        let _ = self.0.acquire().await;
    }

    pub(crate) fn open(&self) {
        self.0.close();
    }
}

/// Counts computations.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn bump(&self) -> usize {
        self.0.fetch_add(1, SeqCst) + 1
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Spawns a caller of `key` whose computation counts itself in `calls`, waits for `gate`,
/// then returns `result`.
pub(crate) fn spawn_gated<K, V, E>(
    cache: &Arc<AsyncSmartCache<K, V, E>>,
    key: K,
    gate: &Gate,
    calls: &Counter,
    result: Result<V, E>,
) -> JoinHandle<Result<V, CacheError<E>>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    let (cache, gate, calls) = (Arc::clone(cache), gate.clone(), calls.clone());
    tokio::spawn(async move {
        cache
            .get_or_compute(key, || async move {
                calls.bump();
                gate.pass().await;
                result
            })
            .await
    })
}

/// Yields to the scheduler until `done` holds; fails the test after many rounds instead of
/// hanging. On a current-thread runtime each round lets every ready task run once.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("timed out waiting until {what}");
}

/// Polls a future once: `Some(output)` if it finished without waiting on anything.
pub(crate) fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
