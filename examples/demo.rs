//! The README's first command: single-flight and a cached error, with printed stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use smartcache::{AsyncSmartCache, CacheError};

#[tokio::main]
async fn main() {
    let calls = Arc::new(AtomicU32::new(0));
    let cache: Arc<AsyncSmartCache<u64, String, String>> = Arc::new(
        AsyncSmartCache::builder()
            .retry_interval(Duration::from_secs(300))
            .name("demo::users")
            .build(),
    );

    println!("100 concurrent callers ask for user 1:");
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            tokio::spawn(async move {
                cache
                    .get_or_compute(1, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok("Ada".to_owned())
                    })
                    .await
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.expect("caller task").as_deref(), Ok("Ada"));
    }
    println!("  backend calls: {}", calls.load(Ordering::SeqCst));

    println!("user 2's backend fails:");
    let failed = cache
        .get_or_compute(2, || async { Err("connection refused".to_owned()) })
        .await;
    println!("  first call:  {}", failed.unwrap_err());
    let cached: Result<String, CacheError<String>> = cache
        .get_or_compute(2, || async { Ok("never runs".to_owned()) })
        .await;
    println!("  second call: {}", cached.unwrap_err());

    println!("stats: {}", cache.stats());
}
