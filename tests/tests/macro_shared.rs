//! `#[smart_cached(shared)]`: the cache goes on the tier installed with
//! `smartcache::redis::install`, and shares its entries with every cache of the same name
//! and types on that Redis. (One test: the installed tier is process-wide.)
#![cfg(feature = "redis")]

#[path = "../../smartcache/tests/redis_support/mod.rs"]
mod redis_support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use smartcache::redis::{self, RedisTier};
use smartcache::{AsyncSmartCache, smart_cached};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[smart_cached(shared, name = "macro-shared-price", retry = "1m")]
async fn price(id: u64) -> Result<String, String> {
    RUNS.fetch_add(1, SeqCst);
    if id == 0 {
        return Err("no such item".to_owned());
    }
    Ok(format!("price of {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_fn_uses_the_installed_tier_and_another_process_sees_its_entries() {
    let server = redis_support::Server::start();
    assert!(redis::install(
        RedisTier::connect(&server.url()).await.unwrap()
    ));
    assert_eq!(price(7).await.unwrap(), "price of 7");
    assert!(price(0).await.is_err());
    assert_eq!(RUNS.load(SeqCst), 2);

    // Another process's cache of the same name and types, on its own connection: it finds
    // the value and the failure in the fleet, and computes neither.
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    let other: AsyncSmartCache<(u64,), String, String> = AsyncSmartCache::builder()
        .name("macro-shared-price")
        .retry_interval(Duration::from_secs(60))
        .shared(tier)
        .build();
    let value = other
        .get_or_compute_shared((7,), || async { Ok("computed again".to_owned()) })
        .await;
    assert_eq!(value.unwrap(), "price of 7");
    let failure = other
        .get_or_compute_shared((0,), || async { Ok("computed again".to_owned()) })
        .await
        .unwrap_err();
    assert!(
        failure.is_cached(),
        "the fleet's cached failure: {failure:?}"
    );
    assert_eq!(failure.error().map(|e| e.as_str()), Some("no such item"));
    assert_eq!(RUNS.load(SeqCst), 2);
}
