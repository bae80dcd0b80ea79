//! Leak checks with a counting global allocator: the bytes held return to their baseline
//! after `clear()`, after dropping a cache whose computations are still waiting, after
//! abandoned flights, and after dropping named (registered) caches.
//!
//! Each scenario runs once to warm up (maps and queues keep their capacity once grown, the
//! runtime allocates some of its structures on first use), then the baseline is taken, then
//! it runs again and must end exactly at the baseline. The allocator counts every thread,
//! so the scenarios run one after the other in a single test on a current-thread runtime.

mod reliability_support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Waker};
use std::time::Duration;

use smartcache::{AsyncSmartCache, CacheError, registry};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::sync::Notify;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

type Cache = AsyncSmartCache<u64, String, String>;

/// Bytes held now, over the whole process. (`stats_alloc` folds reallocations into the
/// allocated and deallocated totals.)
fn live_bytes() -> i128 {
    let stats = INSTRUMENTED_SYSTEM.stats();
    i128::try_from(stats.bytes_allocated).unwrap()
        - i128::try_from(stats.bytes_deallocated).unwrap()
}

/// Runs `scenario` twice, and checks that the second run leaves exactly as many bytes held
/// as there were before it.
fn returns_to_baseline<F: FnMut()>(what: &str, scenario: F) {
    returns_near_baseline(what, 0, scenario);
}

/// Like [`returns_to_baseline`], allowing `slack` bytes: for scenarios that reuse one map,
/// whose table may grow once more (tombstones left by removals can trigger a resize, and a
/// table never shrinks) without anything leaking.
fn returns_near_baseline<F: FnMut()>(what: &str, slack: i128, mut scenario: F) {
    scenario();
    let baseline = live_bytes();
    scenario();
    let left = live_bytes() - baseline;
    assert!(left <= slack, "{what}: {left} bytes left over");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Polls a future once with a waker that does nothing: `true` if it is still pending.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
    future
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending()
}

/// A value or error of about 1 KiB: a leaked one shows far above any table growth.
fn payload(what: &str, key: u64) -> String {
    format!("{what} for {key:>1024}")
}

/// Fills `cache` with values, cached errors and panics on 500 keys (each with 1 KiB on the
/// heap), reads them back, then clears it.
fn fill_and_clear(runtime: &tokio::runtime::Runtime, cache: &Cache) {
    runtime.block_on(async {
        for key in 0..500_u64 {
            let reply = cache
                .get_or_compute(key, || async move {
                    match key % 5 {
                        0 => Err(payload("error", key)),
                        1 => panic!("injected panic for {key}"),
                        _ => Ok(payload("value", key)),
                    }
                })
                .await;
            assert_eq!(reply.is_ok(), key % 5 > 1);
        }
        for key in 0..500_u64 {
            // Panics are not cached: those keys compute again. The others hit.
            let again = || async move { Ok(format!("recomputed {key}")) };
            let reply = cache.get_or_compute(key, again).await;
            match key % 5 {
                0 => assert!(reply.is_err_and(|e| e.is_cached())),
                1 => assert_eq!(reply.unwrap(), format!("recomputed {key}")),
                _ => assert_eq!(reply.unwrap(), payload("value", key)),
            }
        }
        cache.prime(1_000, "primed".to_owned());
    });
    cache.clear();
    let stats = cache.stats();
    assert_eq!((stats.total_entries, stats.in_flight), (0, 0));
}

fn clear_returns_memory() {
    let runtime = runtime();
    let unbounded = Cache::new();
    // 400 KiB of values and 100 KiB of errors go each round; a table may grow by a few KiB.
    let slack = 32 * 1024;
    returns_near_baseline("clear, unbounded", slack, || {
        fill_and_clear(&runtime, &unbounded);
    });
    let bounded = Cache::builder()
        .max_capacity(2_000)
        .time_to_live(Duration::from_secs(60))
        .build();
    returns_near_baseline("clear, bounded", slack, || {
        fill_and_clear(&runtime, &bounded);
    });
}

/// A cache owned by a future that has started flights (leaders and waiters, both forms),
/// all blocked on a `Notify` that never fires; the future is dropped mid-flight.
fn drop_a_cache_owning_its_flights() {
    let gate = Arc::new(Notify::new());
    let started = Arc::new(AtomicUsize::new(0));
    returns_to_baseline("cache dropped with flights in progress", || {
        let (gate, counter) = (Arc::clone(&gate), Arc::clone(&started));
        let owner = async move {
            let cache = Cache::builder().max_capacity(16).build();
            cache.prime(99, "primed".to_owned());
            let compute = |key: u64| {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&counter));
                move || async move {
                    started.fetch_add(1, SeqCst);
                    gate.notified().await;
                    Ok::<_, String>(format!("value for {key}"))
                }
            };
            let calls = (0..4_u64).map(|key| {
                let cache = &cache;
                let compute = compute(key);
                async move {
                    let (a, b) = tokio::join!(
                        cache.get_or_compute(key, compute.clone()),
                        cache.get_or_compute_shared(key, compute)
                    );
                    (a, b)
                }
            });
            let all: Vec<_> = calls.collect();
            let mut answers = Vec::new();
            for call in all {
                answers.push(call.await);
            }
            answers
        };
        let mut owner = pin!(owner);
        assert!(poll_once(owner.as_mut()), "the computations wait");
        assert!(started.load(SeqCst) > 0);
        // `owner` is dropped here, cache and flights with it.
    });
}

/// Spawned callers share the cache through `Arc`s, and their shared computations hold a
/// clone too; every caller is aborted, then the last outside handle is dropped.
fn drop_a_shared_cache_while_computations_run() {
    let runtime = runtime();
    let gate = Arc::new(Notify::new());
    returns_to_baseline("shared cache dropped with computations running", || {
        runtime.block_on(async {
            // Dropped as soon as their last caller leaves: a computation left running would
            // hold the cache (it captured it) until it ends.
            let cache = Arc::new(Cache::builder().abandon_after(Duration::ZERO).build());
            let callers: Vec<_> = (0..12_u64)
                .map(|n| {
                    let (cache, gate) = (Arc::clone(&cache), Arc::clone(&gate));
                    tokio::spawn(async move {
                        let inner = Arc::clone(&cache);
                        cache
                            .get_or_compute_shared(n % 3, move || async move {
                                gate.notified().await;
                                // The computation keeps the cache alive while it runs.
                                Ok::<_, String>(format!("{}", inner.stats().in_flight))
                            })
                            .await
                    })
                })
                .collect();
            while cache.stats().coalesced < 9 {
                tokio::task::yield_now().await;
            }
            assert_eq!(cache.stats().in_flight, 3);
            for caller in &callers {
                caller.abort();
            }
            for caller in callers {
                let error = caller.await.expect_err("aborted");
                assert!(error.is_cancelled(), "no panic: {error}");
            }
            // The tasks notice, and drop their computations.
            for _ in 0..10_000 {
                if cache.stats().in_flight == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert_eq!(cache.stats().in_flight, 0, "every flight was abandoned");
            assert_eq!(
                Arc::strong_count(&cache),
                1,
                "no computation kept the cache"
            );
        });
    });
}

/// Callers cancelled while computing, and detached flights: nothing accumulates.
fn abandoned_and_detached_flights_leave_nothing() {
    let runtime = runtime();
    let cache = Cache::new();
    returns_to_baseline("abandoned and detached flights", || {
        runtime.block_on(async {
            for key in 0..200_u64 {
                let call = cache.get_or_compute(key, || async move {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(format!("value for {key}"))
                });
                let cancelled = tokio::time::timeout(Duration::from_secs(1), call).await;
                assert!(cancelled.is_err());
                // A detached flight finishing afterwards stores nothing.
                let mut call = pin!(cache.get_or_compute(key, || async move {
                    tokio::task::yield_now().await;
                    Ok(format!("value for {key}"))
                }));
                assert!(poll_once(call.as_mut()));
                assert!(cache.invalidate(&key));
                assert_eq!(call.await.unwrap(), format!("value for {key}"));
            }
        });
        let stats = cache.stats();
        assert_eq!((stats.total_entries, stats.in_flight), (0, 0));
    });
}

/// A dropped named cache leaves the registry: building and dropping many of them holds no
/// more memory than one.
fn dropped_named_caches_leave_the_registry() {
    returns_to_baseline("named caches built and dropped", || {
        for n in 0..100 {
            let cache: Cache = Cache::builder().name(format!("leaks::cache{n}")).build();
            drop(cache);
        }
        // Listing prunes the registrations of dropped caches.
        let listed = registry::snapshot();
        assert!(!listed.iter().any(|c| c.name.starts_with("leaks::")));
    });
}

/// Errors are shared, never copied: a cached error handed to many callers is one allocation.
fn cached_errors_are_shared_not_copied() {
    let runtime = runtime();
    let cache = Cache::new();
    runtime.block_on(async {
        let failed = cache
            .get_or_compute(1, || async { Err("x".repeat(10_000)) })
            .await;
        let original = failed.unwrap_err().error().cloned().unwrap();
        let before = live_bytes();
        let mut held = Vec::with_capacity(100);
        let grown = live_bytes();
        for _ in 0..100 {
            match cache.get_or_compute(1, || async { unreachable!() }).await {
                Err(CacheError::Cached { error, .. }) => {
                    assert!(Arc::ptr_eq(&error, &original));
                    held.push(error);
                }
                other => panic!("expected a cached error, got {other:?}"),
            }
        }
        assert_eq!(live_bytes(), grown, "100 answers, no new allocation");
        drop(held);
        assert!(live_bytes() <= before);
    });
}

/// The checker itself catches a leak: a scenario that keeps what it allocates fails.
fn the_check_catches_a_leak() {
    let mut kept = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        returns_to_baseline("a deliberate leak", || kept.push(vec![0_u8; 1_024]));
    }));
    let payload = caught.expect_err("the leak is caught");
    let message = payload.downcast_ref::<String>().expect("a message");
    assert!(message.contains("1024 bytes left over"), "{message}");
}

/// One test, so that no other test allocates while a scenario is measured.
#[test]
fn memory_returns_to_its_baseline() {
    reliability_support::quiet_expected_panics();
    the_check_catches_a_leak();
    clear_returns_memory();
    drop_a_cache_owning_its_flights();
    drop_a_shared_cache_while_computations_run();
    abandoned_and_detached_flights_leave_nothing();
    dropped_named_caches_leave_the_registry();
    cached_errors_are_shared_not_copied();
}
