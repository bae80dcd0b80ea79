//! Semantic 6: time to live, capacity bound and automatic cleanup.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Counter, Gate, until};
use smartcache::AsyncSmartCache;

type Cache = AsyncSmartCache<u64, u64, String>;

#[tokio::test(start_paused = true)]
async fn an_expired_value_is_recomputed_once_by_a_herd() {
    let cache = Arc::new(
        Cache::builder()
            .time_to_live(Duration::from_secs(10))
            .build(),
    );
    let (gate, calls) = (Gate::new(), Counter::new());
    gate.open();
    let compute = |cache: Arc<Cache>, gate: Gate, calls: Counter| async move {
        cache
            .get_or_compute(1, || async move {
                let n = calls.bump() as u64;
                gate.pass().await;
                Ok(n)
            })
            .await
    };
    assert_eq!(
        compute(Arc::clone(&cache), gate.clone(), calls.clone())
            .await
            .unwrap(),
        1
    );
    tokio::time::advance(Duration::from_millis(9_999)).await;
    assert_eq!(cache.get(&1), Some(1), "still fresh just before the TTL");

    tokio::time::advance(Duration::from_millis(1)).await;
    let gate = Gate::new();
    let herd: Vec<_> = (0..10)
        .map(|_| tokio::spawn(compute(Arc::clone(&cache), gate.clone(), calls.clone())))
        .collect();
    until("the herd arrived", || cache.stats().misses == 11).await;
    gate.open();
    for caller in herd {
        assert_eq!(caller.await.unwrap().unwrap(), 2);
    }
    let stats = cache.stats();
    assert_eq!(
        (calls.get(), stats.expirations, stats.total_entries),
        (2, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn expired_entries_are_swept_in_bounded_steps_without_being_asked_for() {
    let cache = Cache::builder()
        .time_to_live(Duration::from_secs(10))
        .retry_interval(Duration::from_secs(10))
        .build();
    for key in 0..100 {
        cache.prime(key, key);
    }
    let _ = cache
        .get_or_compute(1_000, || async { Err("down".to_owned()) })
        .await;
    assert_eq!(cache.entry_count(), 101);
    tokio::time::advance(Duration::from_secs(10)).await;
    // A write, for another key, removes the oldest expired entries: 64 at most per call.
    cache.prime(5_000, 0);
    let stats = cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries, stats.expirations),
        (101 - 64 + 1, 1, 64)
    );
    // The next write takes the rest: 36 values, then the cached error.
    cache.prime(5_001, 0);
    let stats = cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries, stats.expirations),
        (2, 0, 100)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_cache_keeps_at_most_max_cached_errors_oldest_first() {
    let cache = Cache::builder().max_cached_errors(3).build();
    for key in 0..5 {
        let failed = cache
            .get_or_compute(key, || async move { Err(format!("e{key}")) })
            .await;
        assert!(failed.is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries, stats.evictions),
        (3, 3, 2)
    );
    let kept: Vec<u64> = (0..5).filter(|key| cache.__stored(key).1).collect();
    assert_eq!(kept, [2, 3, 4], "the oldest errors went first");
    // A value is not bounded by the error limit.
    for key in 10..20 {
        cache.prime(key, key);
    }
    assert_eq!(cache.entry_count(), 13);
}

#[tokio::test]
async fn zero_max_cached_errors_caches_no_error() {
    let cache = Cache::builder().max_cached_errors(0).build();
    let calls = Counter::new();
    for _ in 0..2 {
        let calls = calls.clone();
        let _ = cache
            .get_or_compute(1, || async move {
                calls.bump();
                Err("down".to_owned())
            })
            .await;
    }
    assert_eq!((calls.get(), cache.entry_count()), (2, 0));
}

#[tokio::test]
async fn clear_empties_a_bounded_cache_that_then_refills_to_its_bound() {
    let cache = Cache::builder().max_capacity(50).build();
    for key in 0..200 {
        cache.prime(key, key);
    }
    cache.clear();
    assert_eq!(cache.entry_count(), 0);
    assert!((0..200).all(|key| cache.__stored(&key) == (false, false)));
    for key in 1_000..1_200 {
        let value = cache.get_or_compute(key, || async move { Ok(key) }).await;
        assert_eq!(value.unwrap(), key);
        assert!(cache.entry_count() <= 50);
    }
    assert_eq!(cache.entry_count(), 50);
}

#[tokio::test]
async fn a_hot_set_survives_a_scan_of_one_hit_keys() {
    // The admission filter at work: keys read many times are not pushed out by a scan of
    // keys read once, which is what a plain LRU or CLOCK would do.
    let cache = Cache::builder().max_capacity(100).build();
    for _ in 0..20 {
        for key in 0..50 {
            let _ = cache.get_or_compute(key, || async move { Ok(key) }).await;
        }
    }
    for key in 10_000..12_000 {
        let _ = cache.get_or_compute(key, || async move { Ok(key) }).await;
    }
    let kept = (0..50).filter(|key| cache.__stored(key).0).count();
    assert!(kept >= 45, "only {kept} of the 50 hot keys kept");
    assert_eq!(cache.entry_count(), 100);
}

#[tokio::test]
async fn capacity_100_holds_under_10000_keys() {
    let cache = Cache::builder().max_capacity(100).build();
    for key in 0..10_000 {
        let value = cache
            .get_or_compute(key, || async move { Ok(key * 2) })
            .await
            .unwrap();
        assert_eq!(value, key * 2);
        assert!(
            cache.entry_count() <= 100,
            "{} entries after key {key}",
            cache.entry_count()
        );
    }
    let stats = cache.stats();
    assert_eq!((stats.total_entries, stats.evictions), (100, 9_900));
    // What is left is right: 100 of the keys (which ones is the policy's choice: a scan of
    // keys read once each keeps early ones, as they are asked for as often), with their values.
    let left: Vec<_> = (0..10_000).filter(|key| cache.__stored(key).0).collect();
    assert_eq!(left.len(), 100);
    for key in left {
        assert_eq!(cache.get(&key), Some(key * 2));
    }
}

#[tokio::test]
async fn cached_errors_count_against_the_capacity() {
    let cache = Cache::builder().max_capacity(10).build();
    for key in 0..50 {
        let _ = cache
            .get_or_compute(key, || async move { Err(format!("e{key}")) })
            .await;
        assert!(cache.entry_count() <= 10);
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries, stats.evictions),
        (10, 10, 40)
    );
}

#[tokio::test]
async fn a_key_read_between_evictions_gets_a_second_chance() {
    let cache = Cache::builder().max_capacity(10).build();
    cache.prime(0, 0);
    for key in 1..1_000 {
        assert_eq!(
            cache.get(&0),
            Some(0),
            "the hot key survived up to key {key}"
        );
        cache.prime(key, key);
    }
    assert_eq!(cache.entry_count(), 10);
}

#[tokio::test]
async fn a_zero_capacity_stores_nothing_but_still_shares_flights() {
    let cache = Cache::builder().max_capacity(0).build();
    assert_eq!(
        cache.get_or_compute(1, || async { Ok(1) }).await.unwrap(),
        1
    );
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.get(&1), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_holds_under_concurrent_churn() {
    let cache = Arc::new(Cache::builder().max_capacity(64).build());
    let writers: Vec<_> = (0..4u64)
        .map(|task| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                for i in 0..5_000u64 {
                    let key = (i * 7 + task * 1_000) % 3_000;
                    let value = cache.get_or_compute(key, || async move { Ok(key) }).await;
                    assert_eq!(value.unwrap(), key);
                    assert!(cache.entry_count() <= 64);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let stats = cache.stats();
    assert!(stats.total_entries <= 64);
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test]
async fn replacing_a_stored_key_in_a_full_cache_evicts_nothing() {
    let cache = Cache::builder().max_capacity(2).build();
    cache.prime(1, 1);
    cache.prime(2, 2);
    cache.prime(2, 20);
    let _ = cache.get_or_compute(1, || async { Ok(0) }).await;
    assert_eq!((cache.get(&1), cache.get(&2)), (Some(1), Some(20)));
    let stats = cache.stats();
    assert_eq!((stats.total_entries, stats.evictions), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn the_eviction_listener_hears_evictions_and_expiries_on_a_later_write() {
    use smartcache::RemovalCause::{Evicted, Expired};
    use std::sync::{Mutex, OnceLock, Weak};

    type Heard = Arc<Mutex<Vec<(u64, smartcache::RemovalCause)>>>;
    let heard: Heard = Arc::default();
    // The listener reads the cache: it runs outside every lock, so this cannot deadlock.
    let this: Arc<OnceLock<Weak<Cache>>> = Arc::default();
    let (listener_heard, listener_this) = (Arc::clone(&heard), Arc::clone(&this));
    let cache = Arc::new(
        Cache::builder()
            .max_capacity(2)
            .time_to_live(Duration::from_secs(10))
            .eviction_listener(move |key, cause| {
                if let Some(cache) = listener_this.get().and_then(Weak::upgrade) {
                    assert_eq!(cache.get(&key), None, "{key} is gone when told");
                }
                listener_heard.lock().unwrap().push((key, cause));
            })
            .build(),
    );
    this.set(Arc::downgrade(&cache)).unwrap();
    let heard_now = || heard.lock().unwrap().clone();
    cache.prime(1, 1);
    cache.prime(2, 2);
    cache.prime(3, 3); // evicts one of 1 and 2: told on the next write
    assert_eq!(heard_now(), []);
    assert!(cache.invalidate(&3), "an invalidation is not an eviction");
    cache.prime(4, 4);
    let evicted = heard_now();
    assert_eq!(evicted.len(), 1);
    assert!(matches!(evicted[0], (1 | 2, Evicted)), "{evicted:?}");
    tokio::time::advance(Duration::from_secs(10)).await;
    cache.prime(5, 5); // the two left expire (removed by this write's upkeep)
    cache.prime(6, 6); // told now
    let mut expired: Vec<u64> = heard_now()[1..]
        .iter()
        .map(|&(key, cause)| {
            assert_eq!(cause, Expired);
            key
        })
        .collect();
    expired.sort_unstable();
    let kept = if evicted[0].0 == 1 { 2 } else { 1 };
    let mut expected = vec![kept, 4];
    expected.sort_unstable();
    assert_eq!(expired, expected);
    assert_eq!(cache.stats().evictions, 1);
}
