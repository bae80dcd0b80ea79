//! Semantics 3 and 4: dropped callers never stall or fail the others; panics are contained.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use common::{Counter, Gate, until};
use smartcache::{AsyncSmartCache, CacheError};
use tokio::task::JoinHandle;

type Cache = AsyncSmartCache<u64, String, String>;
type Answer = Result<String, CacheError<String>>;

/// Spawns a caller of key 1 whose computation counts itself and waits for `gate`.
fn caller(cache: &Arc<Cache>, gate: &Gate, calls: &Counter, shared: bool) -> JoinHandle<Answer> {
    let (cache, gate, calls) = (Arc::clone(cache), gate.clone(), calls.clone());
    tokio::spawn(async move {
        let compute = || async move {
            let n = calls.bump();
            gate.pass().await;
            Ok(format!("computation {n}"))
        };
        if shared {
            cache.get_or_compute_shared(1, compute).await
        } else {
            cache.get_or_compute(1, compute).await
        }
    })
}

/// Starts a leader and `followers` callers that join its flight, then cancels the leader.
async fn cancel_the_leader(
    cache: &Arc<Cache>,
    gate: &Gate,
    calls: &Counter,
    shared: bool,
    followers: usize,
) -> Vec<JoinHandle<Answer>> {
    let leader = caller(cache, gate, calls, shared);
    until("the leader computes", || calls.get() == 1).await;
    let rest: Vec<_> = (0..followers)
        .map(|_| caller(cache, gate, calls, shared))
        .collect();
    until("the followers joined", || {
        cache.stats().coalesced == followers as u64
    })
    .await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    rest
}

#[tokio::test]
async fn shared_form_continues_the_same_computation_when_its_first_caller_is_cancelled() {
    let (cache, gate, calls) = (Arc::new(Cache::new()), Gate::new(), Counter::new());
    let followers = cancel_the_leader(&cache, &gate, &calls, true, 5).await;
    until("a follower took over", || cache.stats().in_flight == 1).await;
    gate.open();
    for follower in followers {
        assert_eq!(follower.await.unwrap().unwrap(), "computation 1");
    }
    assert_eq!(calls.get(), 1, "the computation was not restarted");
    let stats = cache.stats();
    assert_eq!(
        (stats.load_successes, stats.in_flight, stats.total_entries),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn borrowing_form_hands_over_to_a_waiter_that_computes_again() {
    let (cache, gate, calls) = (Arc::new(Cache::new()), Gate::new(), Counter::new());
    let followers = cancel_the_leader(&cache, &gate, &calls, false, 5).await;
    until("a follower took over", || calls.get() == 2).await;
    gate.open();
    for follower in followers {
        assert_eq!(follower.await.unwrap().unwrap(), "computation 2");
    }
    assert_eq!(calls.get(), 2, "exactly one waiter took over");
    assert_eq!(cache.stats().load_successes, 1);
}

#[tokio::test]
async fn a_cancelled_waiter_does_not_disturb_the_flight() {
    let (cache, gate, calls) = (Arc::new(Cache::new()), Gate::new(), Counter::new());
    let leader = caller(&cache, &gate, &calls, false);
    until("the leader computes", || calls.get() == 1).await;
    let waiter = caller(&cache, &gate, &calls, false);
    until("the waiter joined", || cache.stats().coalesced == 1).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    gate.open();
    assert_eq!(leader.await.unwrap().unwrap(), "computation 1");
    assert_eq!(calls.get(), 1);
}

/// Records being dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Starts three callers of key 1 whose computation waits for `gate`, holding a guard that
/// records being dropped, and cancels all three once they have joined.
async fn cancel_every_caller(
    cache: &Arc<Cache>,
    gate: &Gate,
    dropped: &Arc<AtomicBool>,
    shared: bool,
) {
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (cache, gate, dropped) = (Arc::clone(cache), gate.clone(), Arc::clone(dropped));
            tokio::spawn(async move {
                let compute = || async move {
                    let _guard = SetOnDrop(dropped);
                    gate.pass().await;
                    Ok("computed".to_owned())
                };
                if shared {
                    cache.get_or_compute_shared(1, compute).await
                } else {
                    cache.get_or_compute(1, compute).await
                }
            })
        })
        .collect();
    until("all three joined", || cache.stats().misses == 3).await;
    for caller in callers {
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
    }
}

#[tokio::test]
async fn borrowing_form_when_every_caller_has_gone_the_computation_is_dropped_and_nothing_is_stored()
 {
    let cache = Arc::new(Cache::new());
    let (gate, dropped) = (Gate::new(), Arc::new(AtomicBool::new(false)));
    cancel_every_caller(&cache, &gate, &dropped, false).await;
    assert!(
        dropped.load(SeqCst),
        "the abandoned computation was dropped"
    );
    let stats = cache.stats();
    assert_eq!(
        (stats.in_flight, stats.total_entries, stats.loads()),
        (0, 0, 0)
    );

    // The next call starts afresh.
    let again = cache
        .get_or_compute(1, || async { Ok("fresh".to_owned()) })
        .await;
    assert_eq!(again.unwrap(), "fresh");
}

#[tokio::test]
async fn shared_form_when_every_caller_has_gone_runs_to_completion_and_stores() {
    let cache = Arc::new(Cache::new());
    let (gate, dropped) = (Gate::new(), Arc::new(AtomicBool::new(false)));
    cancel_every_caller(&cache, &gate, &dropped, true).await;
    assert!(!dropped.load(SeqCst), "the computation runs on in its task");
    assert_eq!(cache.stats().in_flight, 1);

    // A caller arriving now joins the computation that is still running.
    let joiner = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .get_or_compute_shared(1, || async { Ok("restarted".to_owned()) })
                .await
        })
    };
    until("the newcomer joined", || cache.stats().coalesced == 3).await;
    gate.open();
    assert_eq!(joiner.await.unwrap().unwrap(), "computed");
    until("the task stored its value", || cache.stats().in_flight == 0).await;
    let stats = cache.stats();
    assert_eq!((stats.load_successes, stats.total_entries), (1, 1));
    assert!(dropped.load(SeqCst));
    assert_eq!(cache.get(&1).as_deref(), Some("computed"));
}

#[tokio::test]
async fn a_panic_reaches_every_caller_and_the_cache_recovers() {
    let cache = Arc::new(Cache::new());
    let gate = Gate::new();
    let herd: Vec<_> = (0..10)
        .map(|_| {
            let (cache, gate) = (Arc::clone(&cache), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute(1, || async move {
                        gate.pass().await;
                        panic!("backend exploded");
                    })
                    .await
            })
        })
        .collect();
    release_and_expect_panics(&cache, &gate, herd, "backend exploded").await;
    let stats = cache.stats();
    assert_eq!(
        (stats.load_failures, stats.total_entries, stats.in_flight),
        (1, 0, 0)
    );

    // Nothing was cached: the key computes again, and other keys never noticed.
    let after = cache
        .get_or_compute(1, || async { Ok("recovered".to_owned()) })
        .await;
    assert_eq!(after.unwrap(), "recovered");
    let other = cache
        .get_or_compute(2, || async { Ok("fine".to_owned()) })
        .await;
    assert_eq!(other.unwrap(), "fine");
}

#[tokio::test]
async fn a_panic_while_building_the_computation_is_caught_too() {
    let cache = Cache::new();
    let answer = cache
        .get_or_compute(1, || -> std::future::Ready<Result<String, String>> {
            panic!("no future for you")
        })
        .await;
    assert!(answer.unwrap_err().is_panic());
    let shared = cache
        .get_or_compute_shared(1, || -> std::future::Ready<Result<String, String>> {
            panic!("none here either")
        })
        .await;
    assert_eq!(
        shared.unwrap_err(),
        CacheError::Panicked {
            message: "none here either".into()
        }
    );
    assert_eq!(cache.stats().in_flight, 0);
}

/// A value whose `Clone` panics once armed: the first copy the cache makes blows up.
#[derive(Debug)]
struct Fragile(Arc<AtomicBool>);

impl Clone for Fragile {
    fn clone(&self) -> Self {
        assert!(!self.0.swap(false, SeqCst), "clone of a fragile value");
        Self(Arc::clone(&self.0))
    }
}

#[tokio::test]
async fn a_panicking_clone_of_the_value_fails_the_flight_without_wedging_the_key() {
    let cache: Arc<AsyncSmartCache<u8, Fragile, String>> = Arc::new(AsyncSmartCache::new());
    let (gate, armed) = (Gate::new(), Arc::new(AtomicBool::new(true)));
    let herd: Vec<_> = (0..3)
        .map(|_| {
            let (cache, gate, armed) = (Arc::clone(&cache), gate.clone(), Arc::clone(&armed));
            tokio::spawn(async move {
                cache
                    .get_or_compute(1, || async move {
                        gate.pass().await;
                        Ok(Fragile(armed))
                    })
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    release_and_expect_panics(&cache, &gate, herd, "clone of a fragile value").await;
    let stats = cache.stats();
    assert_eq!(
        (stats.in_flight, stats.total_entries, stats.load_failures),
        (0, 0, 1)
    );
    // The key is not stuck on the old flight: the next call computes and stores.
    let disarmed = Arc::new(AtomicBool::new(false));
    let value = cache
        .get_or_compute(1, || async move { Ok(Fragile(disarmed)) })
        .await;
    assert!(value.is_ok());
    assert_eq!(cache.entry_count(), 1);
}

/// Opens `gate` once the whole `herd` has arrived, and checks that every caller was answered
/// with the same panic `message`.
async fn release_and_expect_panics<K, V, T: std::fmt::Debug>(
    cache: &AsyncSmartCache<K, V, String>,
    gate: &Gate,
    herd: Vec<JoinHandle<Result<T, CacheError<String>>>>,
    message: &str,
) where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let size = herd.len() as u64;
    until("the herd arrived", || cache.stats().misses == size).await;
    gate.open();
    for caller in herd {
        let error = caller.await.unwrap().unwrap_err();
        assert_eq!(
            error,
            CacheError::Panicked {
                message: message.into()
            }
        );
    }
}
