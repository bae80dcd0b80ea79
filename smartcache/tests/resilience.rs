//! Failing backends: retry backoff with jitter, retry hints, refresh-ahead, stale-if-error,
//! and negative caching of `None`. The clock is paused throughout; computations are
//! counted, and gates hold them where a test needs them in flight.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Counter, Gate, poll_once, until};
use smartcache::{Absent, AsyncSmartCache, CacheError, RetryAfter, Served};
use tokio::time::advance;

const SEC: Duration = Duration::from_secs(1);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A cache whose computations fail with a `String`.
type Flaky = AsyncSmartCache<&'static str, u32, String>;

/// Fails `key` once (counting the computation), and answers the cached error's `retry_in`.
async fn fail_once(cache: &Flaky, key: &'static str, calls: &Counter) -> Duration {
    let calls2 = calls.clone();
    let failed = cache
        .get_or_compute(key, || async move {
            calls2.bump();
            Err("down".to_owned())
        })
        .await;
    assert!(matches!(failed, Err(CacheError::Failed(_))), "{failed:?}");
    let cached = cache
        .get_or_compute(key, || async { unreachable!("inside the retry window") })
        .await;
    cached.unwrap_err().retry_in().expect("a cached error")
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_double_the_interval_within_a_fifth_up_to_the_cap_and_a_success_resets_it()
 {
    let cache = Flaky::builder()
        .retry_interval(secs(10))
        .max_retry_interval(secs(100))
        .build();
    let calls = Counter::new();
    let mut timeline = Vec::new();
    for failure in 1..=6u32 {
        let retry_in = fail_once(&cache, "k", &calls).await;
        let doubled = (secs(10) * 2u32.pow(failure - 1)).min(secs(100));
        let (low, high) = (doubled * 4 / 5, (doubled * 6 / 5).min(secs(100)));
        assert!(
            retry_in >= low && retry_in <= high,
            "failure {failure}: {retry_in:?} not in {low:?}..={high:?}"
        );
        timeline.push(retry_in);
        // Just before the window ends nothing runs; at its end the next computation does.
        advance(retry_in.saturating_sub(SEC)).await;
        let early = cache.get_or_compute("k", || async { unreachable!() }).await;
        assert!(early.unwrap_err().is_cached());
        advance(SEC).await;
    }
    assert_eq!(calls.get(), 6);
    println!("backoff timeline: {timeline:?}");
    // A success resets the count: the next failure is back at the first interval.
    let value = cache.get_or_compute("k", || async { Ok(1) }).await;
    assert_eq!(value.unwrap(), 1);
    cache.invalidate(&"k");
    let retry_in = fail_once(&cache, "k", &calls).await;
    assert!(retry_in >= secs(8) && retry_in <= secs(12), "{retry_in:?}");
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_the_keys_that_failed_together() {
    let cache = AsyncSmartCache::<u32, u32, String>::builder()
        .retry_interval(secs(10))
        .max_retry_interval(secs(60))
        .build();
    let mut intervals = std::collections::BTreeSet::new();
    for key in 0..50 {
        let _ = cache
            .get_or_compute(key, || async { Err("down".to_owned()) })
            .await;
        let cached = cache.get_or_compute(key, || async { Ok(0) }).await;
        intervals.insert(cached.unwrap_err().retry_in().unwrap());
    }
    assert!(intervals.len() > 40, "{} distinct of 50", intervals.len());
    let (low, high) = (intervals.first().unwrap(), intervals.last().unwrap());
    assert!(*low >= secs(8) && *high <= secs(12), "{low:?}..{high:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_cap_the_interval_neither_grows_nor_varies() {
    let cache = Flaky::builder().retry_interval(secs(10)).build();
    let calls = Counter::new();
    for _ in 0..3 {
        assert_eq!(fail_once(&cache, "k", &calls).await, secs(10));
        advance(secs(10)).await;
    }
}

/// An error that says when to come back, like an HTTP 429 with `Retry-After`.
#[derive(Debug)]
enum ApiError {
    RateLimited(Duration),
    Down,
}

impl RetryAfter for ApiError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(after) => Some(*after),
            Self::Down => None,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_errors_retry_after_hint_replaces_the_interval_capped_by_the_maximum() {
    let cache = AsyncSmartCache::<u32, u32, ApiError>::builder()
        .retry_interval(secs(10))
        .max_retry_interval(secs(300))
        .honor_retry_after()
        .build();
    let retry_in = |key: u32, error: fn() -> ApiError| {
        let cache = &cache;
        async move {
            let _ = cache.get_or_compute(key, || async { Err(error()) }).await;
            let cached = cache.get_or_compute(key, || async { Ok(0) }).await;
            cached.unwrap_err().retry_in().unwrap()
        }
    };
    assert_eq!(
        retry_in(1, || ApiError::RateLimited(secs(42))).await,
        secs(42)
    );
    assert_eq!(
        retry_in(2, || ApiError::RateLimited(secs(3600))).await,
        secs(300),
        "capped"
    );
    let computed = retry_in(3, || ApiError::Down).await;
    assert!(computed >= secs(8) && computed <= secs(12), "{computed:?}");
}

/// A cache with refresh-ahead after 60 s, values living 600 s.
fn refreshing() -> Arc<AsyncSmartCache<&'static str, u32, String>> {
    Arc::new(
        AsyncSmartCache::builder()
            .time_to_live(secs(600))
            .refresh_after(secs(60))
            .retry_interval(secs(30))
            .build(),
    )
}

/// [`refreshing`], with the value 1 stored for "k" (by the shared form) `age` ago.
async fn refreshing_due(age: Duration) -> Arc<AsyncSmartCache<&'static str, u32, String>> {
    let cache = refreshing();
    let stored = cache.get_or_compute_shared("k", || async { Ok(1) }).await;
    assert_eq!(stored.unwrap(), 1);
    advance(age).await;
    cache
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_answers_the_old_value_at_once_and_runs_one_refresh_for_a_herd() {
    let cache = refreshing_due(secs(60)).await;
    let (gate, calls) = (Gate::new(), Counter::new());
    for _ in 0..1_000 {
        let (gate, calls) = (gate.clone(), calls.clone());
        // Each read is answered on its first poll: it never waits for the refresh.
        let read = cache.get_or_compute_shared("k", move || async move {
            calls.bump();
            gate.pass().await;
            Ok(2)
        });
        assert_eq!(poll_once(read).expect("answered at once").unwrap(), 1);
    }
    until("the refresh starts", || calls.get() == 1).await;
    let stats = cache.stats();
    assert_eq!(
        (stats.refreshes, stats.in_flight, stats.hits),
        (1, 1, 1_000)
    );
    gate.open();
    until("the refresh stores", || cache.get("k") == Some(2)).await;
    assert_eq!(calls.get(), 1, "one refresh for a thousand reads");
    let stats = cache.stats();
    assert_eq!((stats.load_successes, stats.in_flight), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_value_younger_than_four_fifths_of_refresh_after_starts_no_refresh() {
    let cache = refreshing_due(secs(47)).await; // 0.78 of 60 s
    let read = cache.get_or_compute_shared("k", || async { unreachable!("no refresh yet") });
    assert_eq!(read.await.unwrap(), 1);
    tokio::task::yield_now().await;
    assert_eq!(cache.stats().refreshes, 0);
}

#[tokio::test(start_paused = true)]
async fn refresh_points_are_spread_over_the_last_fifth() {
    let cache = Arc::new(
        AsyncSmartCache::<u32, u32>::builder()
            .refresh_after(secs(100))
            .build(),
    );
    for key in 0..1_000 {
        cache
            .get_or_compute_shared(key, || async { Ok(0) })
            .await
            .unwrap();
    }
    advance(secs(90)).await;
    for key in 0..1_000 {
        cache
            .get_or_compute_shared(key, || async { Ok(1) })
            .await
            .unwrap();
    }
    let early = cache.stats().refreshes;
    assert!(
        (300..=700).contains(&early),
        "{early} of 1000 keys stored together were due at 90% of refresh_after"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_old_value_and_is_not_retried_inside_its_window() {
    let cache = refreshing_due(secs(60)).await;
    let calls = Counter::new();
    let failing = |calls: &Counter| {
        let calls = calls.clone();
        move || async move {
            calls.bump();
            Err::<u32, _>("down".to_owned())
        }
    };
    let read = cache.get_or_compute_shared("k", failing(&calls)).await;
    assert_eq!(read.unwrap(), 1);
    until("the refresh fails", || cache.stats().refresh_failures == 1).await;
    // Inside the failure's window: the old value, and no refresh.
    for _ in 0..10 {
        let read = cache.get_or_compute_shared("k", failing(&calls)).await;
        assert_eq!(read.unwrap(), 1, "the old value stays");
        advance(secs(2)).await;
    }
    tokio::task::yield_now().await;
    assert_eq!(calls.get(), 1, "no refresh storm");
    assert_eq!(cache.stats().refreshes, 1);
    // After the window (30 s in all), the next due read refreshes again.
    advance(secs(10)).await;
    let read = cache.get_or_compute_shared("k", || async { Ok(3) }).await;
    assert_eq!(read.unwrap(), 1);
    until("the second refresh stores", || cache.get("k") == Some(3)).await;
    assert_eq!(cache.stats().refreshes, 2);
}

#[tokio::test(start_paused = true)]
async fn an_invalidate_or_prime_during_a_refresh_keeps_its_result_out() {
    let cache = refreshing();
    for (key, settle) in [("invalidated", 0), ("primed", 1)] {
        cache
            .get_or_compute_shared(key, || async { Ok(1) })
            .await
            .unwrap();
        advance(secs(60)).await;
        let (gate, calls) = (Gate::new(), Counter::new());
        let (gate2, calls2) = (gate.clone(), calls.clone());
        let read = cache.get_or_compute_shared(key, move || async move {
            calls2.bump();
            gate2.pass().await;
            Ok(2)
        });
        assert_eq!(read.await.unwrap(), 1);
        until("the refresh starts", || calls.get() == 1).await;
        if settle == 0 {
            assert!(cache.invalidate(&key));
        } else {
            cache.prime(key, 9);
        }
        gate.open();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let expected = if settle == 0 { None } else { Some(9) };
        assert_eq!(cache.get(key), expected, "{key}: the refresh did not store");
    }
    until("no flight is left", || cache.stats().in_flight == 0).await;
}

#[tokio::test(start_paused = true)]
async fn the_local_form_answers_a_due_value_and_starts_no_refresh() {
    let cache = refreshing();
    cache.get_or_compute("k", || async { Ok(1) }).await.unwrap();
    advance(secs(60)).await;
    let read = cache.get_or_compute("k", || async { unreachable!("no refresh") });
    assert_eq!(read.await.unwrap(), 1);
    assert_eq!(cache.stats().refreshes, 0);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_refresh_joins_the_refresh_in_flight() {
    let cache = refreshing_due(secs(60)).await;
    let (gate, calls) = (Gate::new(), Counter::new());
    let (gate2, calls2) = (gate.clone(), calls.clone());
    cache
        .get_or_compute_shared("k", move || async move {
            calls2.bump();
            gate2.pass().await;
            Ok(2)
        })
        .await
        .unwrap();
    until("the refresh-ahead starts", || calls.get() == 1).await;
    let joined = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .refresh("k", || async { unreachable!("joined") })
                .await
        })
    };
    until("the explicit refresh joins", || {
        cache.stats().coalesced == 1
    })
    .await;
    gate.open();
    assert_eq!(joined.await.unwrap().unwrap(), 2);
    // With nothing in flight, `refresh` computes now, even inside a failure's window.
    let failed = cache
        .refresh("k", || async { Err("down".to_owned()) })
        .await;
    assert!(matches!(failed, Err(CacheError::Failed(_))));
    assert_eq!(cache.get("k"), Some(2), "a failed refresh keeps the value");
    assert_eq!(cache.refresh("k", || async { Ok(4) }).await.unwrap(), 4);
    let stats = cache.stats();
    assert_eq!((stats.refreshes, stats.refresh_failures), (3, 1));
}

/// A cache whose values live 60 s and are served stale for 100 s more if recomputing fails.
fn stale_serving() -> Flaky {
    Flaky::builder()
        .time_to_live(secs(60))
        .stale_if_error(secs(100))
        .retry_interval(secs(30))
        .build()
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_answers_the_last_good_value_from_expiry_to_the_end_of_its_window() {
    let cache = stale_serving();
    let calls = Counter::new();
    let down = |calls: &Counter| {
        let calls = calls.clone();
        move || async move {
            calls.bump();
            Err::<u32, _>("down".to_owned())
        }
    };
    cache.get_or_compute("k", || async { Ok(1) }).await.unwrap();
    let mut timeline = Vec::new();
    // Before expiry: fresh, nothing runs.
    advance(secs(59)).await;
    let served = cache
        .get_or_compute_served("k", down(&calls))
        .await
        .unwrap();
    assert!(matches!(served, Served::Fresh(1)));
    timeline.push("59 s: fresh");
    // Expired, the recompute fails: the stale value, the failure cached.
    advance(secs(2)).await;
    match cache
        .get_or_compute_served("k", down(&calls))
        .await
        .unwrap()
    {
        Served::Stale {
            value, expired_for, ..
        } => {
            assert_eq!((value, expired_for), (1, SEC));
        }
        fresh @ Served::Fresh(_) => panic!("{fresh:?}"),
    }
    timeline.push("61 s: recompute failed -> stale 1");
    assert_eq!(calls.get(), 1);
    // Inside the retry window: stale again, nothing runs (the backend is not hammered).
    advance(secs(10)).await;
    let served = cache
        .get_or_compute_served("k", down(&calls))
        .await
        .unwrap();
    assert!(served.is_stale() && served.error().is_some());
    assert_eq!(calls.get(), 1);
    timeline.push("71 s: cached failure -> stale 1");
    // The plain form answers the stale value as a value.
    assert_eq!(cache.get_or_compute("k", down(&calls)).await.unwrap(), 1);
    // The last retry inside the window: stale.
    advance(secs(50)).await; // 121 s
    assert!(
        cache
            .get_or_compute_served("k", down(&calls))
            .await
            .unwrap()
            .is_stale()
    );
    assert_eq!(calls.get(), 2);
    timeline.push("121 s: recompute failed -> stale 1");
    // Past expiry + 100 s: the error.
    advance(secs(40)).await; // 161 s
    let failed = cache.get_or_compute_served("k", down(&calls)).await;
    assert!(matches!(
        failed,
        Err(CacheError::Cached { .. } | CacheError::Failed(_))
    ));
    timeline.push("161 s: window over -> error");
    // Recovered: a success is fresh again.
    advance(secs(30)).await;
    let served = cache
        .get_or_compute_served("k", || async { Ok(5) })
        .await
        .unwrap();
    assert!(matches!(served, Served::Fresh(5)));
    timeline.push("191 s: recovered -> fresh 5");
    let stats = cache.stats();
    assert_eq!(stats.stale_hits, 4);
    println!("stale-if-error timeline: {timeline:#?}");
}

#[tokio::test(start_paused = true)]
async fn callers_sharing_a_failed_recompute_all_get_the_stale_value() {
    let cache = Arc::new(stale_serving());
    cache.get_or_compute("k", || async { Ok(1) }).await.unwrap();
    advance(secs(61)).await;
    let gate = Gate::new();
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (cache, gate) = (Arc::clone(&cache), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute_served("k", || async move {
                        gate.pass().await;
                        Err("down".to_owned())
                    })
                    .await
            })
        })
        .collect();
    until("all three share the flight", || {
        cache.stats().coalesced == 2
    })
    .await;
    gate.open();
    for caller in callers {
        assert!(caller.await.unwrap().unwrap().is_stale());
    }
    let stats = cache.stats();
    assert_eq!((stats.stale_hits, stats.load_failures), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_then_expiry_serves_stale_with_both_settings() {
    // fresh -> refreshing -> stale-if-error -> cached error -> recovered, one key.
    let cache = Arc::new(
        Flaky::builder()
            .time_to_live(secs(60))
            .refresh_after(secs(30))
            .stale_if_error(secs(60))
            .retry_interval(secs(20))
            .max_retry_interval(secs(80))
            .build(),
    );
    let down = || async { Err::<u32, _>("down".to_owned()) };
    let mut timeline = Vec::new();
    cache
        .get_or_compute_shared("k", || async { Ok(1) })
        .await
        .unwrap();
    timeline.push("0 s: computed 1 (fresh)".to_owned());
    advance(secs(30)).await;
    let read = cache.get_or_compute_shared_served("k", down).await.unwrap();
    assert!(matches!(read, Served::Fresh(1)));
    until("the refresh fails", || cache.stats().refresh_failures == 1).await;
    timeline.push("30 s: fresh 1, refresh started and failed (cached ~20 s)".to_owned());
    advance(secs(31)).await; // 61 s: expired; the failure's window is over
    let read = cache.get_or_compute_shared_served("k", down).await.unwrap();
    assert!(read.is_stale(), "{read:?}");
    timeline.push("61 s: expired, recompute failed -> stale 1 (failure 2, ~40 s)".to_owned());
    advance(secs(60)).await; // 121 s: past the stale window
    let answer = cache.get_or_compute_shared_served("k", down).await;
    assert!(answer.is_err(), "{answer:?}");
    timeline.push(format!(
        "121 s: stale window over -> {}",
        answer.unwrap_err()
    ));
    advance(secs(100)).await;
    let read = cache
        .get_or_compute_shared_served("k", || async { Ok(2) })
        .await;
    assert!(matches!(read, Ok(Served::Fresh(2))));
    timeline.push("221 s: recovered -> fresh 2".to_owned());
    println!("one key through every setting: {timeline:#?}");
}

#[tokio::test(start_paused = true)]
async fn none_is_cached_for_the_retry_interval_with_backoff() {
    let cache = AsyncSmartCache::<u32, String, Absent>::builder()
        .retry_interval(secs(10))
        .max_retry_interval(secs(40))
        .build();
    let calls = Counter::new();
    let lookup = |calls: &Counter, found: Option<&'static str>| {
        let calls = calls.clone();
        move || async move {
            calls.bump();
            found.map(str::to_owned)
        }
    };
    assert_eq!(
        cache.get_or_compute_option(1, lookup(&calls, None)).await,
        None
    );
    assert_eq!(
        cache
            .get_or_compute_option(1, lookup(&calls, Some("x")))
            .await,
        None
    );
    assert_eq!(calls.get(), 1, "the None is cached");
    advance(secs(12)).await;
    assert_eq!(
        cache.get_or_compute_option(1, lookup(&calls, None)).await,
        None
    );
    assert_eq!(calls.get(), 2);
    advance(secs(12)).await; // the second None is cached for about 20 s
    assert_eq!(
        cache
            .get_or_compute_option(1, lookup(&calls, Some("x")))
            .await,
        None
    );
    assert_eq!(calls.get(), 2);
    advance(secs(12)).await;
    let found = cache
        .get_or_compute_option(1, lookup(&calls, Some("x")))
        .await;
    assert_eq!(found.as_deref(), Some("x"));
    // A zero retry interval stores no None.
    let uncached = AsyncSmartCache::<u32, String, Absent>::builder()
        .retry_interval(Duration::ZERO)
        .build();
    assert_eq!(
        uncached
            .get_or_compute_option(1, lookup(&calls, None))
            .await,
        None
    );
    assert_eq!(
        uncached
            .get_or_compute_option(1, lookup(&calls, None))
            .await,
        None
    );
    assert_eq!((calls.get(), uncached.entry_count()), (5, 0));
}
