//! `#[smart_cached]`'s resilience options: `retry_max` (backoff of consecutive failures),
//! `refresh` (refresh-ahead), `stale_if_error`, and the retry hints of an error type that
//! implements `smartcache::RetryAfter`.
//!
//! On tokio's paused clock: time moves only with `tokio::time::advance`, so every interval
//! is checked against its exact bounds (a retry interval under backoff is jittered by up to
//! ±20%), and a counter proves how many computations ran.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use smartcache::{CacheError, RetryAfter, smart_cached};

mod macro_support;

use macro_support::until;

const fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// `retry_in` of a cached failure.
fn retry_in<T: std::fmt::Debug, E>(answer: Result<T, CacheError<E>>) -> Duration {
    match answer {
        Err(CacheError::Cached { retry_in, .. }) => retry_in,
        Err(other) => panic!("not a cached failure: fresh {}", other.error().is_some()),
        Ok(value) => panic!("a value: {value:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn retry_max_doubles_the_interval_of_consecutive_failures() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "10s", retry_max = "1m")]
    async fn flaky(id: u32) -> Result<u32, CacheError<String>> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        Err(format!("{id} is down").into())
    }

    assert!(!flaky(1).await.unwrap_err().is_cached(), "failure 1");
    let first = retry_in(flaky(1).await);
    assert!(
        first >= secs(8) && first <= secs(12),
        "10s ± 20%: {first:?}"
    );

    tokio::time::advance(first).await;
    assert!(!flaky(1).await.unwrap_err().is_cached(), "failure 2");
    let second = retry_in(flaky(1).await);
    assert!(
        second >= secs(16) && second <= secs(24),
        "20s ± 20%: {second:?}"
    );
    let ratio = second.as_secs_f64() / first.as_secs_f64();
    assert!(
        (1.3..=3.0).contains(&ratio),
        "about twice the first: {ratio}"
    );
    assert_eq!(RUNS.load(SeqCst), 2);
}

/// `retry_in` is the time left before a call computes again: waiting exactly that long
/// ends the window.
#[tokio::test(start_paused = true)]
async fn waiting_retry_in_ends_a_jittered_window() {
    #[smart_cached(retry = "10s", retry_max = "1m")]
    async fn flaky(id: u32) -> Result<u32, CacheError<String>> {
        Err(format!("{id} is down").into())
    }

    // Eight keys: each window is a multiple of 16ns by chance only once in 16.
    for id in 0..8 {
        let _ = flaky(id).await;
        let left = retry_in(flaky(id).await);
        tokio::time::advance(left).await;
        let again = flaky(id).await.unwrap_err();
        assert!(
            !again.is_cached(),
            "key {id}: still cached for {:?}",
            again.retry_in()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn without_retry_max_the_interval_does_not_grow() {
    #[smart_cached(retry = "10s")]
    async fn flaky(id: u32) -> Result<u32, CacheError<String>> {
        Err(format!("{id} is down").into())
    }

    let _ = flaky(1).await;
    assert_eq!(retry_in(flaky(1).await), secs(10));
    tokio::time::advance(secs(10)).await;
    let _ = flaky(1).await;
    assert_eq!(
        retry_in(flaky(1).await),
        secs(10),
        "neither grown nor jittered"
    );
}

#[tokio::test(start_paused = true)]
async fn refresh_answers_the_old_value_and_refreshes_once_in_the_background() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(ttl = "10m", refresh = "1m")]
    async fn rate(pair: u32) -> usize {
        let run = RUNS.fetch_add(1, SeqCst) + 1;
        tokio::task::yield_now().await;
        run * 100 + pair as usize
    }

    assert_eq!(rate(7).await, 107);
    // A value's refresh point is pulled forward by up to a fifth (so that keys stored
    // together do not refresh together): due somewhere in 48s..=60s.
    tokio::time::advance(secs(47)).await;
    assert_eq!(rate(7).await, 107);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(rate_cache().stats().refreshes, 0, "not due yet");
    assert_eq!(RUNS.load(SeqCst), 1);

    tokio::time::advance(secs(13)).await;
    for _ in 0..3 {
        assert_eq!(rate(7).await, 107, "the old value, at once");
    }
    until(|| rate_cache().get(&(7,)) == Some(207)).await;
    assert_eq!(RUNS.load(SeqCst), 2, "one refresh for three due hits");
    assert_eq!(rate_cache().stats().refreshes, 1);
    assert_eq!(rate(7).await, 207, "the new value");
    assert_eq!(RUNS.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_old_value_until_a_refresh_after_the_retry_interval() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(ttl = "10m", refresh = "1m", retry = "30s")]
    async fn quote(id: u32) -> Result<u32, String> {
        let run = RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        match run {
            1 => Err("down".to_owned()),
            _ => Ok(id * 10 + u32::try_from(run).unwrap_or(0)),
        }
    }

    assert_eq!(quote(1).await, Ok(10));
    tokio::time::advance(secs(60)).await;
    assert_eq!(quote(1).await, Ok(10));
    until(|| quote_cache().stats().refresh_failures == 1).await;
    assert_eq!(
        quote(1).await,
        Ok(10),
        "the failure did not replace the value"
    );

    tokio::time::advance(secs(29)).await;
    assert_eq!(quote(1).await, Ok(10));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        RUNS.load(SeqCst),
        2,
        "no refresh inside the failure's retry interval"
    );

    tokio::time::advance(secs(1)).await;
    assert_eq!(quote(1).await, Ok(10));
    until(|| quote_cache().get(&(1,)) == Some(12)).await;
    assert_eq!(quote_cache().stats().refreshes, 2);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_answers_the_last_good_value_then_the_error() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static DOWN: AtomicBool = AtomicBool::new(false);

    #[smart_cached(ttl = "1m", retry = "10s", stale_if_error = "5m")]
    async fn price(id: u32) -> Result<u32, String> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        if DOWN.load(SeqCst) {
            Err("backend down".to_owned())
        } else {
            Ok(id * 10)
        }
    }

    assert_eq!(price(4).await, Ok(40));
    DOWN.store(true, SeqCst);
    tokio::time::advance(secs(61)).await; // expired
    assert_eq!(price(4).await, Ok(40), "stale, in place of the error");
    assert_eq!(RUNS.load(SeqCst), 2);
    assert_eq!(
        price(4).await,
        Ok(40),
        "the failure is cached: stale, nothing ran"
    );
    assert_eq!(RUNS.load(SeqCst), 2);
    assert_eq!(price_cache().stats().stale_hits, 2);

    tokio::time::advance(secs(240)).await; // 1m + 4m01s: inside the window
    assert_eq!(price(4).await, Ok(40));
    assert_eq!(RUNS.load(SeqCst), 3, "the retry interval had passed");

    tokio::time::advance(secs(60)).await; // 1m + 5m01s: past the window
    assert_eq!(price(4).await, Err("backend down".to_owned()));
    assert_eq!(RUNS.load(SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn none_is_cached_for_the_retry_interval_and_longer_when_it_repeats() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "10s", retry_max = "1m")]
    async fn lookup(id: u32) -> Option<u32> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        (id == 0).then_some(0)
    }

    assert_eq!(lookup(1).await, None);
    tokio::time::advance(secs(7)).await; // under 10s − 20%
    assert_eq!(lookup(1).await, None);
    assert_eq!(RUNS.load(SeqCst), 1, "the `None` is cached");

    tokio::time::advance(secs(6)).await; // 13s: over 10s + 20%
    assert_eq!(lookup(1).await, None);
    assert_eq!(RUNS.load(SeqCst), 2, "`None` 2, now for 20s ± 20%");

    tokio::time::advance(secs(15)).await; // under 20s − 20%
    assert_eq!(lookup(1).await, None);
    assert_eq!(RUNS.load(SeqCst), 2, "cached for longer than the first");

    tokio::time::advance(secs(10)).await; // 25s: over 20s + 20%
    assert_eq!(lookup(1).await, None);
    assert_eq!(RUNS.load(SeqCst), 3);
}

/// An error that carries the backend's `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
struct RateLimited {
    secs: Option<u64>,
}

impl RetryAfter for RateLimited {
    fn retry_after(&self) -> Option<Duration> {
        self.secs.map(Duration::from_secs)
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_type_with_retry_after_sets_the_interval() {
    #[smart_cached(retry = "1m", retry_max = "1h")]
    async fn limited(secs: Option<u64>) -> Result<u32, CacheError<RateLimited>> {
        Err(RateLimited { secs }.into())
    }

    let _ = limited(Some(90)).await;
    assert_eq!(
        retry_in(limited(Some(90)).await),
        secs(90),
        "the hint, not jittered"
    );
    let _ = limited(Some(7200)).await;
    assert_eq!(
        retry_in(limited(Some(7200)).await),
        secs(3600),
        "capped by `retry_max`"
    );
    let _ = limited(None).await;
    let computed = retry_in(limited(None).await);
    assert!(
        computed >= secs(48) && computed <= secs(72),
        "no hint: {computed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transparent_fn_honours_retry_after_too() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "1m")]
    async fn limited(id: u32) -> Result<u32, RateLimited> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        Err(RateLimited {
            secs: Some(u64::from(id)),
        })
    }

    assert!(limited(5).await.is_err());
    tokio::time::advance(secs(4)).await;
    assert!(limited(5).await.is_err());
    assert_eq!(RUNS.load(SeqCst), 1, "cached for the hint's 5s");
    tokio::time::advance(secs(1)).await;
    assert!(limited(5).await.is_err());
    assert_eq!(RUNS.load(SeqCst), 2, "computed again after 5s, not 1m");
}
