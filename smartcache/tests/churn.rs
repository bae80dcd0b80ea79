//! Everything at once on a multi-thread runtime: hits, misses, failures, panics,
//! cancellations, invalidations and clears. No hang, no wrong value, stats that add up.

use std::sync::Arc;
use std::time::Duration;

use smartcache::{AsyncSmartCache, CacheError};

type Cache = AsyncSmartCache<u64, (u64, u64), String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_operations_never_hang_or_mix_up_keys() {
    // The injected panics are expected; keep the output readable.
    std::panic::set_hook(Box::new(|_| {}));
    let cache = Arc::new(
        Cache::builder()
            .retry_interval(Duration::from_millis(1))
            .max_capacity(6)
            .build(),
    );
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                let mut seed = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..600 {
                    // xorshift: a cheap, deterministic spread of operations and keys
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let key = seed % 10;
                    match seed % 16 {
                        0 => {
                            cache.invalidate(&key);
                        }
                        1 => cache.clear(),
                        2 => {
                            // A caller cancelled while its computation is still running.
                            let call = cache.get_or_compute(key, || async move {
                                tokio::task::yield_now().await;
                                Ok((key, 0))
                            });
                            let _ = tokio::time::timeout(Duration::from_micros(1), call).await;
                        }
                        mode => {
                            let answer = cache
                                .get_or_compute(key, || async move {
                                    tokio::task::yield_now().await;
                                    match mode {
                                        3 => Err(format!("error for {key}")),
                                        4 => panic!("panic for {key}"),
                                        _ => Ok((key, mode)),
                                    }
                                })
                                .await;
                            match answer {
                                Ok((k, _)) => assert_eq!(k, key, "a value of another key"),
                                Err(
                                    CacheError::Failed(e) | CacheError::Cached { error: e, .. },
                                ) => {
                                    assert_eq!(*e, format!("error for {key}"));
                                }
                                Err(CacheError::Panicked { message }) => {
                                    assert_eq!(message, format!("panic for {key}"));
                                }
                                Err(other) => panic!("unexpected answer {other:?}"),
                            }
                        }
                    }
                    assert!(cache.entry_count() <= 6);
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("no task hangs")
            .expect("no task fails");
    }
    let stats = cache.stats();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(
        stats.requests(),
        stats.hits + stats.misses + stats.cached_error_hits
    );
    assert!(stats.total_entries <= 6 && stats.coalesced <= stats.misses);
}
