//! The sync-compute, blocking and infallible forms, and the registry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Counter, Gate, spawn_gated, until};
use smartcache::{AsyncSmartCache, CacheError, registry};

#[tokio::test]
async fn sync_computations_are_cached_like_async_ones() {
    let cache: AsyncSmartCache<&str, String, String> = AsyncSmartCache::new();
    let calls = Counter::new();
    for _ in 0..3 {
        let value = cache
            .get_or_compute_sync("host", || {
                calls.bump();
                Ok("box-1".to_owned())
            })
            .await;
        assert_eq!(value.unwrap(), "box-1");
    }
    assert_eq!(calls.get(), 1);
    let panicked = cache.get_or_compute_sync("other", || -> Result<String, String> {
        panic!("sync boom")
    });
    assert!(panicked.await.unwrap_err().is_panic());
}

#[test]
fn the_blocking_form_works_without_any_runtime() {
    let cache: AsyncSmartCache<u32, u32, String> = AsyncSmartCache::new();
    assert_eq!(cache.get_or_compute_blocking(1, || Ok(10)), Ok(10));
    assert_eq!(cache.get_or_compute_blocking(1, || Ok(99)), Ok(10));
    let failed = cache.get_or_compute_blocking(2, || Err("nope".to_owned()));
    assert!(matches!(failed, Err(CacheError::Failed(_))));
    assert!(
        cache
            .get_or_compute_blocking(2, || Ok(0))
            .unwrap_err()
            .is_cached()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_caller_joins_a_flight_driven_by_an_async_task() {
    let cache: Arc<AsyncSmartCache<u32, u32, String>> = Arc::new(AsyncSmartCache::new());
    let (gate, calls) = (Gate::new(), Counter::new());
    let driver = spawn_gated(&cache, 1, &gate, &calls, Ok(7));
    until("the async flight started", || cache.stats().in_flight == 1).await;
    let blocking = {
        let (cache, calls) = (Arc::clone(&cache), calls.clone());
        std::thread::spawn(move || {
            cache.get_or_compute_blocking(1, || {
                calls.bump();
                Ok(0)
            })
        })
    };
    until("the blocking caller joined", || {
        cache.stats().coalesced == 1
    })
    .await;
    gate.open();
    assert_eq!(blocking.join().unwrap(), Ok(7));
    assert_eq!(driver.await.unwrap(), Ok(7));
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn the_infallible_form_returns_the_value_and_reraises_panics() {
    let cache: Arc<AsyncSmartCache<u64, u64>> = Arc::new(AsyncSmartCache::new());
    assert_eq!(cache.get_or_init(3, || async { 9 }).await, 9);
    assert_eq!(cache.get_or_init(3, || async { 0 }).await, 9);

    let panicking = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .get_or_init(4, || async { panic!("init failed") })
                .await
        })
    };
    let payload = panicking.await.unwrap_err().into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("init failed")
    );
    assert_eq!(
        cache.get_or_init(4, || async { 16 }).await,
        16,
        "the cache recovered"
    );
}

#[tokio::test(start_paused = true)]
async fn named_caches_are_listed_in_the_registry_while_they_live() {
    let cache: AsyncSmartCache<u8, u8, String> = AsyncSmartCache::builder()
        .name("forms::registry_test")
        .retry_interval(Duration::from_secs(1))
        .build();
    cache.get_or_compute(1, || async { Ok(1) }).await.unwrap();
    cache.get_or_compute(1, || async { Ok(1) }).await.unwrap();

    let listed = registry::snapshot();
    let entry = listed
        .iter()
        .find(|c| c.name == "forms::registry_test")
        .expect("listed");
    assert_eq!((entry.stats.hits, entry.stats.misses), (1, 1));
    assert_eq!(registry::find("forms::registry_test"), Some(cache.stats()));

    drop(cache);
    assert!(registry::find("forms::registry_test").is_none());
    assert!(
        registry::snapshot()
            .iter()
            .all(|c| c.name != "forms::registry_test")
    );
}
