//! Semantic 7: after invalidate, clear or prime returns, no earlier flight stores its value.

mod common;

use std::sync::Arc;

use common::{Counter, Gate, until};
use smartcache::AsyncSmartCache;
use tokio::task::JoinHandle;

type Cache = AsyncSmartCache<u64, String, String>;

/// Starts a computation of key 1 that returns `value` once `gate` opens.
async fn slow_flight(cache: &Arc<Cache>, gate: &Gate, value: &str) -> JoinHandle<String> {
    let (cache2, gate, value) = (Arc::clone(cache), gate.clone(), value.to_owned());
    let flight = tokio::spawn(async move {
        cache2
            .get_or_compute(1, || async move {
                gate.pass().await;
                Ok(value)
            })
            .await
            .unwrap()
    });
    until("the flight started", || cache.stats().in_flight == 1).await;
    flight
}

#[tokio::test]
async fn invalidate_during_a_flight_keeps_its_value_out_of_the_cache() {
    let (cache, gate) = (Arc::new(Cache::new()), Gate::new());
    let stale = slow_flight(&cache, &gate, "stale").await;
    assert!(cache.invalidate(&1), "a flight in progress counts");

    // A call after the invalidation does not join the stale flight: it computes afresh.
    let fresh = cache
        .get_or_compute(1, || async { Ok("fresh".to_owned()) })
        .await;
    assert_eq!(fresh.unwrap(), "fresh");

    gate.open();
    assert_eq!(
        stale.await.unwrap(),
        "stale",
        "its own caller still gets its result"
    );
    assert_eq!(
        cache.get(&1).as_deref(),
        Some("fresh"),
        "the stale value was not stored"
    );
    assert_eq!(cache.stats().in_flight, 0);
}

#[tokio::test]
async fn clear_during_a_flight_keeps_its_value_out_of_the_cache() {
    let (cache, gate) = (Arc::new(Cache::new()), Gate::new());
    cache.prime(2, "two".to_owned());
    let stale = slow_flight(&cache, &gate, "stale").await;
    cache.clear();
    assert_eq!(cache.entry_count(), 0);
    gate.open();
    assert_eq!(stale.await.unwrap(), "stale");
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), None);
    let calls = Counter::new();
    let again = cache
        .get_or_compute(1, || async {
            calls.bump();
            Ok("recomputed".to_owned())
        })
        .await;
    assert_eq!((again.unwrap().as_str(), calls.get()), ("recomputed", 1));
}

#[tokio::test]
async fn prime_during_a_flight_wins_over_the_flight() {
    let (cache, gate) = (Arc::new(Cache::new()), Gate::new());
    let stale = slow_flight(&cache, &gate, "computed").await;
    cache.prime(1, "primed".to_owned());
    gate.open();
    assert_eq!(stale.await.unwrap(), "computed");
    assert_eq!(cache.get(&1).as_deref(), Some("primed"));
    assert_eq!(cache.stats().primes, 1);
}

#[tokio::test]
async fn invalidate_removes_values_and_cached_errors_and_says_so() {
    let cache = Cache::new();
    assert!(!cache.invalidate(&1));
    cache.prime(1, "one".to_owned());
    assert!(cache.invalidate(&1));
    assert_eq!(cache.get(&1), None);
    let _ = cache
        .get_or_compute(2, || async { Err("no".to_owned()) })
        .await;
    assert_eq!(cache.stats().error_entries, 1);
    assert!(cache.invalidate(&2));
    let stats = cache.stats();
    assert_eq!((stats.total_entries, stats.error_entries), (0, 0));
    let retried = cache
        .get_or_compute(2, || async { Ok("yes".to_owned()) })
        .await;
    assert_eq!(
        retried.unwrap(),
        "yes",
        "an invalidated error is not answered any more"
    );
}

#[tokio::test]
async fn invalidate_accepts_a_borrowed_key() {
    let cache: AsyncSmartCache<String, u32> = AsyncSmartCache::new();
    cache.prime("answer".to_owned(), 42);
    assert_eq!(cache.get("answer"), Some(42));
    assert!(cache.invalidate("answer"));
}
