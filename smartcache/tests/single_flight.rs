//! Semantics 1, 2, 8 and 9: one computation per key, distinct keys in parallel, hits never
//! wait, reentrancy, and stats that add up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Counter, Gate, poll_once, spawn_gated, until};
use smartcache::AsyncSmartCache;
use tokio::sync::Barrier;

type Cache = AsyncSmartCache<u64, String, String>;

#[tokio::test]
async fn a_herd_of_1000_on_a_cold_key_runs_one_computation() {
    let cache = Arc::new(Cache::new());
    let (gate, calls) = (Gate::new(), Counter::new());
    let herd: Vec<_> = (0..1_000)
        .map(|_| spawn_gated(&cache, 7, &gate, &calls, Ok("seven".to_owned())))
        .collect();
    // Every caller has arrived (and all but one joined the flight) before it may finish.
    until("the herd has arrived", || cache.stats().misses == 1_000).await;
    gate.open();
    for caller in herd {
        assert_eq!(caller.await.unwrap().unwrap(), "seven");
    }
    assert_eq!(calls.get(), 1);
    let stats = cache.stats();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.coalesced,
            stats.load_successes,
            stats.load_failures
        ),
        (0, 1_000, 999, 1, 0)
    );
    assert_eq!((stats.total_entries, stats.in_flight), (1, 0));
    assert_eq!(
        stats.requests(),
        stats.hits + stats.misses + stats.cached_error_hits
    );

    assert_eq!(
        cache
            .get_or_compute(7, || async { Ok("other".to_owned()) })
            .await
            .unwrap(),
        "seven"
    );
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_distinct_keys_compute_at_the_same_time() {
    let cache = Arc::new(Cache::new());
    // Each computation waits until all 50 are running: if the cache ran them one after
    // another, the barrier would never fill and the timeout would fail the test.
    let all_running = Arc::new(Barrier::new(50));
    let callers: Vec<_> = (0..50)
        .map(|key| {
            let (cache, barrier) = (Arc::clone(&cache), Arc::clone(&all_running));
            tokio::spawn(async move {
                cache
                    .get_or_compute(key, || async move {
                        barrier.wait().await;
                        Ok(format!("value {key}"))
                    })
                    .await
            })
        })
        .collect();
    for (key, caller) in callers.into_iter().enumerate() {
        let answer = tokio::time::timeout(Duration::from_secs(30), caller)
            .await
            .expect("distinct keys must not wait for each other");
        assert_eq!(answer.unwrap().unwrap(), format!("value {key}"));
    }
    assert_eq!(cache.stats().load_successes, 50);
}

#[tokio::test]
async fn a_hit_on_one_key_never_waits_for_another_keys_computation() {
    let cache = Arc::new(Cache::new());
    cache.prime(2, "two".to_owned());
    let gate = Gate::new();
    let slow = {
        let (cache, gate) = (Arc::clone(&cache), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute(1, || async move {
                    gate.pass().await;
                    Ok("one".to_owned())
                })
                .await
        })
    };
    until("key 1 is computing", || cache.stats().in_flight == 1).await;

    // Polled once, with nothing able to wake it: the hit must be ready at once.
    let hit = poll_once(cache.get_or_compute(2, || async { Ok("never".to_owned()) }));
    assert_eq!(hit.expect("the hit did not wait").unwrap(), "two");
    // A miss on another key computes and finishes while key 1 is still held.
    let miss = poll_once(cache.get_or_compute(3, || async { Ok("three".to_owned()) }));
    assert_eq!(miss.expect("the miss did not wait").unwrap(), "three");
    assert_eq!(cache.stats().in_flight, 1);

    gate.open();
    assert_eq!(slow.await.unwrap().unwrap(), "one");
}

#[tokio::test]
async fn a_computation_may_use_the_cache_for_other_keys() {
    let cache = Arc::new(Cache::new());
    let inner = Arc::clone(&cache);
    let outer = cache
        .get_or_compute(1, || async move {
            let two = inner
                .get_or_compute(2, || async { Ok("two".to_owned()) })
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("one needs {two}"))
        })
        .await;
    assert_eq!(outer.unwrap(), "one needs two");
    assert_eq!(cache.get(&2u64).as_deref(), Some("two"));
    assert_eq!(cache.stats().load_successes, 2);
}

#[tokio::test]
async fn get_counts_a_hit_or_a_miss_and_never_computes() {
    let cache = Cache::new();
    assert_eq!(cache.get(&1), None);
    cache.prime(1, "one".to_owned());
    assert_eq!(cache.get(&1).as_deref(), Some("one"));
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.primes, stats.loads()),
        (1, 1, 1, 0)
    );
}
