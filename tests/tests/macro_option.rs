//! `#[smart_cached]` on a fn returning `Option<T>`: `Some` is a cached value, `None` is
//! cached like a failure, for the retry interval (negative caching).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use smartcache::smart_cached;

#[tokio::test(start_paused = true)]
async fn none_is_cached_for_the_retry_interval() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "30s")]
    async fn lookup(id: u32) -> Option<String> {
        let run = RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        (run > 0).then(|| format!("user {id}"))
    }

    assert_eq!(lookup(1).await, None);
    assert_eq!(lookup(1).await, None, "the `None` is cached");
    assert_eq!(RUNS.load(SeqCst), 1);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(lookup(1).await, None);
    assert_eq!(RUNS.load(SeqCst), 1, "still inside the window");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(lookup(1).await.as_deref(), Some("user 1"));
    assert_eq!(lookup(1).await.as_deref(), Some("user 1"), "a hit");
    assert_eq!(RUNS.load(SeqCst), 2);
    let stats = lookup_cache().stats();
    assert_eq!(
        (stats.load_failures, stats.cached_error_hits, stats.hits),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn with_no_retry_interval_none_is_not_stored() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "0s")]
    async fn find(word: &str) -> Option<usize> {
        RUNS.fetch_add(1, SeqCst);
        word.find('x')
    }

    assert_eq!(find("abc").await, None);
    assert_eq!(find("abc").await, None);
    assert_eq!(RUNS.load(SeqCst), 2, "every `None` ran");
    assert_eq!(find("axe").await, Some(1));
    assert_eq!(find("axe").await, Some(1));
    assert_eq!(RUNS.load(SeqCst), 3);
    assert_eq!(find_cache().entry_count(), 1);
}

#[test]
fn sync_option_fns_negative_cache_too() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    fn env(name: &str) -> Option<String> {
        RUNS.fetch_add(1, SeqCst);
        (name == "HOME").then(|| "/home".to_owned())
    }

    assert_eq!(env("NOPE"), None);
    assert_eq!(env("NOPE"), None);
    assert_eq!(env("HOME").as_deref(), Some("/home"));
    assert_eq!(RUNS.load(SeqCst), 2);
}
