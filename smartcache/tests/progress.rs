//! Semantics 3: flights make progress on their own. A caller that is alive but never polled
//! again (moka #240) stalls nobody; a blocking caller never polls an async future outside a
//! runtime; an abandoned flight holds neither the cache nor its key; a computation that
//! waits for its own key fails fast instead of hanging.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{Counter, Gate, until};
use smartcache::{AsyncSmartCache, CacheError};

type Cache = AsyncSmartCache<u64, String, String>;
type Answer = Result<String, CacheError<String>>;

/// Polls a pinned future once with a waker that does nothing, and keeps it (unlike
/// `common::poll_once`, which consumes it): the caller stays alive but is never woken.
fn poll_parked<F: Future + ?Sized>(future: &mut Pin<Box<F>>) -> Poll<F::Output> {
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// A computation of key 1 that counts itself, waits for `gate`, and answers `computation N`.
fn gated(
    gate: &Gate,
    calls: &Counter,
) -> impl FnOnce() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + use<> {
    let (gate, calls) = (gate.clone(), calls.clone());
    move || {
        Box::pin(async move {
            let n = calls.bump();
            gate.pass().await;
            Ok(format!("computation {n}"))
        })
    }
}

fn spawn_caller(
    cache: &Arc<Cache>,
    compute: impl FnOnce() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>>
    + Send
    + 'static,
    shared: bool,
) -> tokio::task::JoinHandle<Answer> {
    let cache = Arc::clone(cache);
    tokio::spawn(async move {
        if shared {
            cache.get_or_compute_shared(1, compute).await
        } else {
            cache.get_or_compute(1, compute).await
        }
    })
}

#[tokio::test]
async fn moka_240_shared_form_a_first_caller_never_polled_again_stalls_nobody() {
    let cache = Arc::new(Cache::new());
    let (gate, calls) = (Gate::new(), Counter::new());
    // The first caller is polled once, then parked for good (its task is stuck elsewhere).
    let mut first = Box::pin(cache.get_or_compute_shared(1, gated(&gate, &calls)));
    assert!(poll_parked(&mut first).is_pending());
    assert_eq!(calls.get(), 1);

    let others: Vec<_> = (0..3)
        .map(|_| spawn_caller(&cache, gated(&gate, &calls), true))
        .collect();
    until("the others joined", || cache.stats().coalesced == 3).await;
    gate.open();
    for other in others {
        // A guard against a hang (the failure this test exists for), not a timing check.
        let answer = tokio::time::timeout(Duration::from_secs(30), other).await;
        assert_eq!(answer.expect("stalled").unwrap().unwrap(), "computation 1");
    }
    assert_eq!(calls.get(), 1, "one computation, never restarted");
    assert_eq!(cache.stats().in_flight, 0);
    // The parked caller gets the same answer whenever it is polled again.
    assert_eq!(first.await.unwrap(), "computation 1");
}

#[tokio::test(start_paused = true)]
async fn moka_240_borrowing_form_a_waiter_computes_after_the_wait_timeout() {
    let cache = Arc::new(
        Cache::builder()
            .wait_timeout(Duration::from_secs(5))
            .build(),
    );
    let (gate, calls) = (Gate::new(), Counter::new());
    let mut first = Box::pin(cache.get_or_compute(1, gated(&gate, &calls)));
    assert!(poll_parked(&mut first).is_pending());

    let started = tokio::time::Instant::now();
    let waiter = spawn_caller(
        &cache,
        || Box::pin(async { Ok("the waiter's own".to_owned()) }),
        false,
    );
    // The paused clock jumps to the waiter's deadline once everything else is idle.
    assert_eq!(waiter.await.unwrap().unwrap(), "the waiter's own");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(cache.get(&1).as_deref(), Some("the waiter's own"));

    // The stuck caller, polled again, finishes its own computation, which is not stored:
    // its flight was superseded.
    gate.open();
    assert_eq!(first.await.unwrap(), "computation 1");
    assert_eq!(cache.get(&1).as_deref(), Some("the waiter's own"));
    let stats = cache.stats();
    assert_eq!((stats.load_successes, stats.in_flight), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn without_a_wait_timeout_a_borrowing_waiter_waits_for_the_stuck_driver() {
    let cache = Arc::new(Cache::new());
    let (gate, calls) = (Gate::new(), Counter::new());
    let mut first = Box::pin(cache.get_or_compute(1, gated(&gate, &calls)));
    assert!(poll_parked(&mut first).is_pending());
    let waiter = spawn_caller(&cache, gated(&gate, &calls), false);
    until("the waiter joined", || cache.stats().coalesced == 1).await;
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    assert!(!waiter.is_finished(), "no timeout: the waiter still waits");
    // Dropping the stuck driver hands the flight over: the waiter computes.
    drop(first);
    gate.open();
    assert_eq!(waiter.await.unwrap().unwrap(), "computation 2");
}

#[tokio::test(start_paused = true)]
async fn the_wait_timeout_never_restarts_a_computation_that_a_task_drives() {
    let cache = Arc::new(
        Cache::builder()
            .wait_timeout(Duration::from_secs(1))
            .build(),
    );
    let (gate, calls) = (Gate::new(), Counter::new());
    let first = spawn_caller(&cache, gated(&gate, &calls), true);
    until("the computation started", || calls.get() == 1).await;
    let waiter = spawn_caller(&cache, gated(&gate, &calls), true);
    until("the waiter joined", || cache.stats().coalesced == 1).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    gate.open();
    assert_eq!(first.await.unwrap().unwrap(), "computation 1");
    assert_eq!(waiter.await.unwrap().unwrap(), "computation 1");
    assert_eq!(calls.get(), 1);
}

#[test]
fn a_blocking_waiter_on_a_shared_flight_whose_async_leader_is_cancelled_gets_its_result() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cache = Arc::new(Cache::new());
    let (gate, calls) = (Gate::new(), Counter::new());
    let leader = {
        let (cache, gate, calls) = (Arc::clone(&cache), gate.clone(), calls.clone());
        runtime.spawn(async move {
            cache
                .get_or_compute_shared(1, || async move {
                    calls.bump();
                    gate.pass().await;
                    // Needs the runtime's timer: polled anywhere else, it would panic.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Ok("from the runtime".to_owned())
                })
                .await
        })
    };
    runtime.block_on(until("the leader computes", || calls.get() == 1));
    let blocking = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            cache.get_or_compute_blocking(1, || Ok("the blocking caller's own".to_owned()))
        })
    };
    runtime.block_on(until("the blocking caller joined", || {
        cache.stats().coalesced == 1
    }));
    leader.abort();
    assert!(runtime.block_on(leader).unwrap_err().is_cancelled());
    gate.open();
    assert_eq!(blocking.join().unwrap().unwrap(), "from the runtime");
    assert_eq!(calls.get(), 1);
}

#[test]
fn outside_any_runtime_the_shared_form_is_driven_by_its_caller() {
    let cache = Cache::new();
    let answer = futures_lite_block_on(cache.get_or_compute_shared(1, || async {
        // No runtime here: the caller polls the computation itself.
        assert!(tokio::runtime::Handle::try_current().is_err());
        Ok("driven by the caller".to_owned())
    }));
    assert_eq!(answer.unwrap(), "driven by the caller");
    assert_eq!(cache.stats().load_successes, 1);
}

/// A minimal executor outside tokio, for the test above.
fn futures_lite_block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::noop();
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(waker)) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// Records being dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Starts a shared-form computation of key 1 that never ends (it records being dropped),
/// and cancels its only caller. Returns the drop record.
async fn cancel_the_only_caller_of_a_never_ending_computation(
    cache: &Arc<Cache>,
) -> Arc<AtomicBool> {
    let dropped = Arc::new(AtomicBool::new(false));
    let caller = {
        let (cache, dropped) = (Arc::clone(cache), Arc::clone(&dropped));
        tokio::spawn(async move {
            cache
                .get_or_compute_shared(1, || async move {
                    let _guard = SetOnDrop(dropped);
                    std::future::pending::<()>().await;
                    Ok(String::new())
                })
                .await
        })
    };
    until("the computation runs", || cache.stats().in_flight == 1).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    dropped
}

#[tokio::test]
async fn an_abandoned_flight_does_not_keep_a_dropped_cache_alive() {
    let cache = Arc::new(Cache::builder().name("progress::abandoned").build());
    let dropped = cancel_the_only_caller_of_a_never_ending_computation(&cache).await;
    assert!(!dropped.load(SeqCst), "still running in its task");
    drop(cache);
    assert!(smartcache::registry::find("progress::abandoned").is_none());
    until("the task was stopped", || dropped.load(SeqCst)).await;
}

#[tokio::test]
async fn an_invalidated_flight_that_nobody_waits_for_is_stopped() {
    let cache = Arc::new(Cache::new());
    let dropped = cancel_the_only_caller_of_a_never_ending_computation(&cache).await;
    // Detached with nobody waiting: nothing would receive or store its result.
    assert!(cache.invalidate(&1));
    until("the task was stopped", || dropped.load(SeqCst)).await;
    until("the gauge came back", || cache.stats().in_flight == 0).await;
    let again = cache
        .get_or_compute_shared(1, || async { Ok("fresh".to_owned()) })
        .await;
    assert_eq!(again.unwrap(), "fresh");
}

#[test]
fn a_task_dropped_with_its_runtime_hands_the_flight_to_a_waiter() {
    let doomed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let survivor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Arc::new(Cache::new());
    let (gate, calls) = (Gate::new(), Counter::new());
    // The leader's computation moves into a task of the doomed runtime.
    let mut leader = Box::pin(cache.get_or_compute_shared(1, gated(&gate, &calls)));
    doomed.block_on(async { assert!(poll_parked(&mut leader).is_pending()) });
    drop(leader);
    let waiter = survivor.spawn({
        let cache = Arc::clone(&cache);
        let compute = gated(&gate, &calls);
        async move { cache.get_or_compute_shared(1, compute).await }
    });
    survivor.block_on(until("the waiter joined", || cache.stats().coalesced == 1));
    // Shutting down drops the task, unfinished: the waiter runs its own computation.
    drop(doomed);
    gate.open();
    assert_eq!(survivor.block_on(waiter).unwrap().unwrap(), "computation 2");
    assert_eq!(cache.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_computation_that_waits_for_its_own_key_fails_fast_in_either_form() {
    let cache = Arc::new(Cache::new());
    for shared in [true, false] {
        let inner = {
            let cache = Arc::clone(&cache);
            move || -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
                Box::pin(async move {
                    let again = cache
                        .get_or_compute_shared(1, || async { Ok("inner".to_owned()) })
                        .await;
                    assert_eq!(again, Err(CacheError::Cycle));
                    Err("cycle".to_owned())
                })
            }
        };
        // Paused clock: a hang would make the runtime idle, and the timeout would fire.
        let answer =
            tokio::time::timeout(Duration::from_secs(60), spawn_caller(&cache, inner, shared))
                .await
                .expect("no hang")
                .unwrap();
        assert_eq!(
            answer,
            Err(CacheError::Failed(Arc::new("cycle".to_owned())))
        );
        assert_eq!(cache.stats().in_flight, 0);
        cache.clear();
    }
}

#[tokio::test(start_paused = true)]
async fn a_cycle_through_two_caches_fails_fast() {
    type Pair = (
        AsyncSmartCache<u8, u8, String>,
        AsyncSmartCache<u8, u8, String>,
    );
    let caches: Arc<Pair> = Arc::new((AsyncSmartCache::new(), AsyncSmartCache::new()));
    let left = {
        let caches = Arc::clone(&caches);
        async move {
            let inner = Arc::clone(&caches);
            caches
                .0
                .get_or_compute_shared(1, move || async move {
                    let right = inner
                        .1
                        .get_or_compute_shared(2, || {
                            let caches = Arc::clone(&inner);
                            async move {
                                // Key 2 of the second cache asks for key 1 of the first:
                                // the flight that waits for this one.
                                match caches.0.get_or_compute_shared(1, || async { Ok(0) }).await {
                                    Err(CacheError::Cycle) => Err("cycle".to_owned()),
                                    other => Ok(other.map_or(99, |v| v)),
                                }
                            }
                        })
                        .await;
                    right.map_err(|e| e.to_string())
                })
                .await
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), left)
        .await
        .expect("no hang");
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(
        (caches.0.stats().in_flight, caches.1.stats().in_flight),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_computations_that_start_waiting_for_each_other_at_once_do_not_hang() {
    type Shared = AsyncSmartCache<u8, u8, String>;
    for _ in 0..50 {
        let cache = Arc::new(Shared::new());
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let side = |mine: u8, theirs: u8| {
            let (cache, barrier) = (Arc::clone(&cache), Arc::clone(&barrier));
            tokio::spawn(async move {
                let inner = Arc::clone(&cache);
                cache
                    .get_or_compute_shared(mine, move || async move {
                        // Both computations run before either asks for the other's key.
                        barrier.wait().await;
                        match inner
                            .get_or_compute_shared(theirs, || async { Ok(0) })
                            .await
                        {
                            Ok(v) => Ok(v + 1),
                            Err(e) => Err(e.to_string()),
                        }
                    })
                    .await
            })
        };
        let (a, b) = (side(1, 2), side(2, 1));
        let both = tokio::time::timeout(Duration::from_secs(30), async {
            (a.await.unwrap(), b.await.unwrap())
        })
        .await
        .expect("a cycle that is not detected hangs");
        assert!(
            both.0.is_err() || both.1.is_err(),
            "at least one side saw the cycle: {both:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_snapshots_agree_with_themselves_under_load() {
    let cache: Arc<AsyncSmartCache<u64, u64, String>> = Arc::new(
        AsyncSmartCache::builder()
            .max_capacity(64)
            .retry_interval(Duration::from_millis(1))
            .build(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16u64)
        .map(|worker| {
            let (cache, stop) = (Arc::clone(&cache), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut i = worker;
                while !stop.load(SeqCst) {
                    i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let key = i % 256;
                    let _ = cache
                        .get_or_compute(key, || async move {
                            if key % 3 == 0 {
                                Err("odd".to_owned())
                            } else {
                                Ok(key)
                            }
                        })
                        .await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for _ in 0..20_000 {
        let stats = cache.stats();
        assert!(stats.error_entries <= stats.total_entries, "{stats:?}");
        assert!(stats.coalesced <= stats.misses, "{stats:?}");
        assert!((0.0..=1.0).contains(&stats.success_ratio()), "{stats:?}");
        assert!((0.0..=1.0).contains(&stats.hit_rate()), "{stats:?}");
        tokio::task::yield_now().await;
    }
    stop.store(true, SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_unwatched_computation_is_dropped_after_abandon_after_unless_a_caller_returns() {
    let cache = Arc::new(
        Cache::builder()
            .abandon_after(Duration::from_secs(10))
            .build(),
    );
    let (gate, calls) = (Gate::new(), Counter::new());
    let dropped = Arc::new(AtomicBool::new(false));
    let watched = |dropped: &Arc<AtomicBool>| {
        let (gate, calls, dropped) = (gate.clone(), calls.clone(), Arc::clone(dropped));
        move || -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
            Box::pin(async move {
                let _guard = SetOnDrop(dropped);
                let n = calls.bump();
                gate.pass().await;
                Ok(format!("computation {n}"))
            })
        }
    };
    // Left alone for 9 s, then a caller comes back: it joins the same computation.
    let first = spawn_caller(&cache, watched(&dropped), true);
    until("it computes", || calls.get() == 1).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_secs(9)).await;
    let back = spawn_caller(&cache, watched(&dropped), true);
    until("the caller came back", || cache.stats().coalesced == 1).await;
    back.abort();
    assert!(back.await.unwrap_err().is_cancelled());
    // The count starts again when the last caller leaves: 9 s more is not enough...
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(!dropped.load(SeqCst));
    assert_eq!(cache.stats().in_flight, 1);
    // ...10 s is: the computation is dropped, nothing is stored, the key starts afresh.
    tokio::time::sleep(Duration::from_secs(1)).await;
    until("the computation was dropped", || dropped.load(SeqCst)).await;
    let stats = cache.stats();
    assert_eq!(
        (stats.in_flight, stats.total_entries, stats.loads()),
        (0, 0, 0)
    );
    gate.open();
    let again = spawn_caller(&cache, watched(&Arc::new(AtomicBool::new(false))), true);
    assert_eq!(again.await.unwrap().unwrap(), "computation 2");
}

#[tokio::test(start_paused = true)]
async fn a_computation_that_holds_its_cache_and_never_ends_frees_it_after_abandon_after() {
    let cache = Arc::new(
        Cache::builder()
            .name("progress::holds_its_cache")
            .abandon_after(Duration::from_secs(30))
            .build(),
    );
    let caller = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            let held = Arc::clone(&cache);
            cache
                .get_or_compute_shared(1, move || async move {
                    // Keeps the cache alive for as long as it runs, and never ends.
                    let _cache = held;
                    std::future::pending::<()>().await;
                    Ok(String::new())
                })
                .await
        })
    };
    until("the computation runs", || cache.stats().in_flight == 1).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    drop(cache);
    // Only the computation holds the cache now.
    assert!(smartcache::registry::find("progress::holds_its_cache").is_some());
    tokio::time::sleep(Duration::from_secs(30)).await;
    until("the cache was freed", || {
        smartcache::registry::find("progress::holds_its_cache").is_none()
    })
    .await;
}
