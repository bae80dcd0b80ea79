//! Semantic 5: failures are remembered from the moment they complete, on tokio's clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Counter, Gate, spawn_gated, until};
use smartcache::{AsyncSmartCache, CacheError};

type Cache = AsyncSmartCache<u64, String, String>;

fn cache(retry: Duration) -> Cache {
    Cache::builder().retry_interval(retry).build()
}

async fn failing(cache: &Cache, calls: &Counter) -> Result<String, CacheError<String>> {
    cache
        .get_or_compute(1, || async {
            let n = calls.bump();
            Err(format!("failure {n}"))
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_cached_until_the_retry_interval_has_passed() {
    let (cache, calls) = (cache(Duration::from_secs(60)), Counter::new());
    let first = failing(&cache, &calls).await.unwrap_err();
    assert_eq!(first, CacheError::Failed(Arc::new("failure 1".to_owned())));

    let cached = failing(&cache, &calls).await.unwrap_err();
    assert!(cached.is_cached());
    assert_eq!(cached.retry_in(), Some(Duration::from_secs(60)));
    assert_eq!(cached.to_string(), "cached error (retry in 1m)");
    assert_eq!(cached.error().unwrap().as_str(), "failure 1");

    tokio::time::advance(Duration::from_secs(45)).await;
    let later = failing(&cache, &calls).await.unwrap_err();
    assert_eq!(later.retry_in(), Some(Duration::from_secs(15)));
    assert_eq!(calls.get(), 1, "nothing ran inside the window");

    tokio::time::advance(Duration::from_secs(15)).await;
    let retried = failing(&cache, &calls).await.unwrap_err();
    assert_eq!(
        retried,
        CacheError::Failed(Arc::new("failure 2".to_owned()))
    );

    let stats = cache.stats();
    assert_eq!(
        (stats.load_failures, stats.cached_error_hits, stats.misses),
        (2, 2, 2)
    );
    assert_eq!((stats.total_entries, stats.error_entries), (1, 1));
    assert!(stats.success_ratio().abs() < f64::EPSILON);
}

#[tokio::test(start_paused = true)]
async fn the_window_starts_when_a_slow_failure_completes() {
    let (cache, calls) = (cache(Duration::from_secs(60)), Counter::new());
    let slow = cache
        .get_or_compute(1, || async {
            calls.bump();
            tokio::time::sleep(Duration::from_secs(100)).await; // longer than the window
            Err("slow failure".to_owned())
        })
        .await;
    assert!(matches!(slow, Err(CacheError::Failed(_))));
    let cached = failing(&cache, &calls).await.unwrap_err();
    assert_eq!(cached.retry_in(), Some(Duration::from_secs(60)));
    assert_eq!(calls.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_success_after_the_window_replaces_the_cached_error() {
    let (cache, calls) = (cache(Duration::from_secs(1)), Counter::new());
    failing(&cache, &calls).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(1)).await;
    let value = cache
        .get_or_compute(1, || async { Ok("back".to_owned()) })
        .await;
    assert_eq!(value.unwrap(), "back");
    let stats = cache.stats();
    assert_eq!((stats.total_entries, stats.error_entries), (1, 0));
}

#[tokio::test]
async fn a_herd_on_a_failing_key_shares_one_error() {
    let cache = Arc::new(cache(Duration::from_secs(60)));
    let (gate, calls) = (Gate::new(), Counter::new());
    let herd: Vec<_> = (0..20)
        .map(|_| spawn_gated(&cache, 1, &gate, &calls, Err("down".to_owned())))
        .collect();
    until("the herd arrived", || cache.stats().misses == 20).await;
    gate.open();
    let mut errors = Vec::new();
    for caller in herd {
        match caller.await.unwrap() {
            Err(CacheError::Failed(error)) => errors.push(error),
            other => panic!("expected a shared failure, got {other:?}"),
        }
    }
    assert_eq!(calls.get(), 1);
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one Arc<E> for all"
    );
    let cached = cache
        .get_or_compute(1, || async { Ok(String::new()) })
        .await
        .unwrap_err();
    assert!(
        Arc::ptr_eq(cached.error().unwrap(), &errors[0]),
        "the cache hands back the same error"
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_retry_interval_caches_no_error() {
    let (cache, calls) = (cache(Duration::ZERO), Counter::new());
    for n in 1..=3 {
        let error = failing(&cache, &calls).await.unwrap_err();
        assert_eq!(error, CacheError::Failed(Arc::new(format!("failure {n}"))));
    }
    let stats = cache.stats();
    assert_eq!(
        (
            stats.load_failures,
            stats.cached_error_hits,
            stats.total_entries
        ),
        (3, 0, 0)
    );
}

#[test]
fn question_mark_converts_the_original_error() {
    fn parse(text: &str) -> Result<u32, CacheError<std::num::ParseIntError>> {
        Ok(text.parse::<u32>()?)
    }
    let error = parse("x").unwrap_err();
    assert!(matches!(error, CacheError::Failed(_)));
    assert_eq!(error.to_string(), "computation failed");
    let source = std::error::Error::source(&error).expect("the original error");
    assert_eq!(source.to_string(), "invalid digit found in string");
}
