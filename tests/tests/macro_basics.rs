//! `#[smart_cached]` on free functions: single-flight, the three return modes, options,
//! argument kinds, the generated handle and uncached body, the registry, recursion.
//!
//! Every function is defined inside its test, with its own counters, so that tests running
//! in parallel do not share a cache.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use smartcache::{CacheError, smart_cached};
use tokio::sync::Semaphore;

mod macro_support;
use macro_support::until;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Unavailable(&'static str);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[tokio::test]
async fn herd_on_a_cold_key_runs_one_computation() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static GATE: Semaphore = Semaphore::const_new(0);

    #[smart_cached]
    async fn profile(id: u64) -> String {
        RUNS.fetch_add(1, SeqCst);
        GATE.acquire().await.expect("open").forget();
        format!("profile {id}")
    }

    let callers: Vec<_> = (0..8).map(|_| tokio::spawn(profile(7))).collect();
    until(|| profile_cache().stats().misses == 8).await;
    assert_eq!(RUNS.load(SeqCst), 1, "the herd joined one computation");
    GATE.add_permits(1);
    for caller in callers {
        assert_eq!(caller.await.expect("no panic"), "profile 7");
    }
    let stats = profile_cache().stats();
    assert_eq!(RUNS.load(SeqCst), 1);
    assert_eq!(stats.load_successes, 1);
    assert_eq!(stats.coalesced, 7);
    assert_eq!(profile(7).await, "profile 7");
    assert_eq!(profile_cache().stats().hits, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_cached_until_the_retry_window_has_passed() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "30s")]
    async fn quote(symbol: u32) -> Result<u64, CacheError<Unavailable>> {
        let run = RUNS.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if run == 0 {
            return Err(Unavailable("backend down").into());
        }
        Ok(u64::from(symbol) * 100)
    }

    let fresh = quote(1).await.unwrap_err();
    assert!(matches!(&fresh, CacheError::Failed(e) if **e == Unavailable("backend down")));
    let cached = quote(1).await.unwrap_err();
    assert!(cached.is_cached());
    assert_eq!(cached.retry_in(), Some(Duration::from_secs(30)));
    assert_eq!(
        **cached.error().expect("original kept"),
        Unavailable("backend down")
    );
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(quote(1).await.unwrap_err().is_cached());
    assert_eq!(RUNS.load(SeqCst), 1, "nothing ran inside the window");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(quote(1).await.unwrap(), 100);
    assert_eq!(RUNS.load(SeqCst), 2);
    let stats = quote_cache().stats();
    assert_eq!((stats.load_failures, stats.load_successes), (1, 1));
    assert_eq!(stats.cached_error_hits, 2);
}

#[tokio::test]
async fn question_mark_turns_the_body_error_into_a_cache_error() {
    #[smart_cached]
    async fn port(text: &str) -> Result<u16, CacheError<std::num::ParseIntError>> {
        Ok(text.parse::<u16>()?)
    }

    assert_eq!(port("8080").await.unwrap(), 8080);
    let error = port("eighty").await.unwrap_err();
    // `Display` says what the cache did; the body's error is the source.
    assert_eq!(error.to_string(), "computation failed");
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("invalid digit found in string"));
    let cached = port("eighty").await.unwrap_err();
    assert!(cached.is_cached());
    assert!(cached.to_string().starts_with("cached error (retry in "));
    assert_eq!(
        cached.error().unwrap().to_string(),
        "invalid digit found in string"
    );
}

#[tokio::test(start_paused = true)]
async fn transparent_mode_hands_back_a_clone_of_the_original_error() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "1m")]
    async fn lookup(host: String) -> Result<[u8; 4], Unavailable> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        if host == "down" {
            Err(Unavailable("no route"))
        } else {
            Ok([10, 0, 0, 1])
        }
    }

    assert_eq!(lookup("down".into()).await, Err(Unavailable("no route")));
    assert_eq!(lookup("down".into()).await, Err(Unavailable("no route")));
    assert_eq!(RUNS.load(SeqCst), 1, "the second error came from the cache");
    assert_eq!(lookup("up".into()).await, Ok([10, 0, 0, 1]));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(lookup("down".into()).await, Err(Unavailable("no route")));
    assert_eq!(RUNS.load(SeqCst), 3, "recomputed after the window");
}

mod api {
    /// A `Result` alias, as libraries define them.
    pub(crate) type Result<T> = std::result::Result<T, super::Unavailable>;
}

#[tokio::test]
async fn a_result_alias_is_transparent() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn status(code: u16) -> api::Result<&'static str> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        if code == 503 {
            Err(Unavailable("maintenance"))
        } else {
            Ok("ok")
        }
    }

    assert_eq!(status(503).await, Err(Unavailable("maintenance")));
    assert_eq!(status(503).await, Err(Unavailable("maintenance")));
    assert_eq!(status(200).await, Ok("ok"));
    assert_eq!(RUNS.load(SeqCst), 2);
}

#[tokio::test]
async fn a_zero_retry_interval_does_not_cache_errors() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "0s")]
    async fn flaky(_id: u8) -> Result<u8, Unavailable> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        Err(Unavailable("flaky"))
    }

    for _ in 0..3 {
        assert_eq!(flaky(1).await, Err(Unavailable("flaky")));
    }
    assert_eq!(RUNS.load(SeqCst), 3);
    assert_eq!(flaky_cache().entry_count(), 0);
}

#[tokio::test]
async fn infallible_mode_caches_the_value() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn words(text: String) -> Vec<String> {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        text.split(' ').map(str::to_owned).collect()
    }

    assert_eq!(words("a b".into()).await, ["a", "b"]);
    assert_eq!(words("a b".into()).await, ["a", "b"]);
    assert_eq!(RUNS.load(SeqCst), 1);
}

#[tokio::test]
async fn a_function_without_arguments_or_return_type_runs_once() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn warm_up() {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
    }

    warm_up().await;
    warm_up().await;
    assert_eq!(RUNS.load(SeqCst), 1);
    assert_eq!(warm_up_cache().get(&()), Some(()));
}

#[tokio::test]
async fn an_infallible_panic_reaches_the_callers_and_is_not_cached() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn parse(text: String) -> u32 {
        let run = RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        assert!(run > 0, "first run fails");
        text.len().try_into().expect("short")
    }

    let panicked = tokio::spawn(parse("abc".into())).await.unwrap_err();
    let payload = panicked.into_panic();
    let message = payload.downcast_ref::<String>().expect("string payload");
    assert!(message.contains("first run fails"), "{message}");
    assert_eq!(parse("abc".into()).await, 3, "nothing was cached");
    assert_eq!(RUNS.load(SeqCst), 2);
}

#[tokio::test]
async fn a_panic_in_full_mode_is_a_cache_error() {
    #[smart_cached]
    async fn explode(id: u8) -> Result<u8, CacheError<Unavailable>> {
        tokio::task::yield_now().await;
        assert!(id != 0, "zero explodes");
        Ok(id)
    }

    let error = explode(0).await.unwrap_err();
    assert!(error.is_panic());
    assert!(error.to_string().contains("zero explodes"));
    assert_eq!(explode(1).await.unwrap(), 1);
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Point {
    x: i32,
    y: i32,
}

#[tokio::test]
async fn reference_arguments_are_keyed_by_owned_copies() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn describe(name: &str, bytes: &[u8], at: &Point) -> String {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        format!("{name} {} {},{}", bytes.len(), at.x, at.y)
    }

    let owned = String::from("tile");
    let first = describe(&owned, &[1, 2], &Point { x: 1, y: 2 }).await;
    let bytes = vec![1, 2];
    let again = describe("tile", &bytes, &Point { x: 1, y: 2 }).await;
    assert_eq!(first, "tile 2 1,2");
    assert_eq!(again, first);
    assert_eq!(
        RUNS.load(SeqCst),
        1,
        "a `&str` key hits whatever its origin"
    );
    let key = ("tile".to_owned(), vec![1_u8, 2], Point { x: 1, y: 2 });
    assert_eq!(describe_cache().get(&key).as_deref(), Some("tile 2 1,2"));
}

#[tokio::test]
async fn skipped_arguments_are_not_part_of_the_key() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    struct Client {
        base: &'static str,
    }

    #[smart_cached(skip(client, trace))]
    async fn user(client: &Client, id: u64, trace: String) -> String {
        RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        format!("{}/users/{id} ({trace})", client.base)
    }

    let a = Client { base: "http://a" };
    let b = Client { base: "http://b" };
    assert_eq!(user(&a, 1, "t1".into()).await, "http://a/users/1 (t1)");
    assert_eq!(user(&b, 1, "t2".into()).await, "http://a/users/1 (t1)");
    assert_eq!(RUNS.load(SeqCst), 1);
    assert!(user_cache().get(&(1,)).is_some(), "the key is `(id,)`");
}

#[tokio::test(start_paused = true)]
async fn ttl_expires_values() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(ttl = "1h30m")]
    async fn rate(currency: u16) -> u64 {
        RUNS.fetch_add(1, SeqCst) as u64 + u64::from(currency)
    }

    assert_eq!(rate(1).await, 1);
    tokio::time::advance(Duration::from_secs(89 * 60)).await;
    assert_eq!(rate(1).await, 1, "still fresh");
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    assert_eq!(rate(1).await, 2, "recomputed after 1h30m");
}

#[tokio::test]
async fn capacity_bounds_the_entries() {
    #[smart_cached(capacity = 3)]
    async fn cube(n: u64) -> u64 {
        n * n * n
    }

    for n in 0..50 {
        assert_eq!(cube(n).await, n * n * n);
        assert!(cube_cache().entry_count() <= 3);
    }
    assert!(cube_cache().stats().evictions >= 47);
}

#[tokio::test]
async fn generated_caches_are_registered_under_their_names() {
    #[smart_cached]
    async fn default_named(n: u8) -> u8 {
        n
    }

    #[smart_cached(name = "inventory::stock")]
    async fn custom_named(n: u8) -> u8 {
        n
    }

    default_named(1).await;
    custom_named(1).await;
    custom_named(1).await;
    let listed = smartcache::registry::snapshot();
    let names: Vec<&str> = listed.iter().map(|cache| cache.name.as_str()).collect();
    assert!(names.contains(&"macro_basics::default_named"), "{names:?}");
    let stock = listed
        .iter()
        .find(|cache| cache.name == "inventory::stock")
        .expect("listed");
    assert_eq!((stock.stats.misses, stock.stats.hits), (1, 1));
    assert_eq!(custom_named_cache().name(), Some("inventory::stock"));
}

#[tokio::test]
async fn the_uncached_body_runs_every_time() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn count(n: u8) -> usize {
        RUNS.fetch_add(1, SeqCst) + usize::from(n)
    }

    assert_eq!(count_uncached(0).await, 0);
    assert_eq!(count_uncached(0).await, 1);
    assert_eq!(count(0).await, 2);
    assert_eq!(count(0).await, 2);
    assert_eq!(count_cache().stats().requests(), 2);
}

#[tokio::test]
async fn the_handle_primes_and_invalidates() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn setting(name: &str) -> String {
        RUNS.fetch_add(1, SeqCst);
        format!("default {name}")
    }

    setting_cache().prime(("mode".to_owned(),), "primed".to_owned());
    assert_eq!(setting("mode").await, "primed");
    assert_eq!(RUNS.load(SeqCst), 0);
    assert!(setting_cache().invalidate(&("mode".to_owned(),)));
    assert_eq!(setting("mode").await, "default mode");
    assert_eq!(RUNS.load(SeqCst), 1);
}

#[tokio::test]
async fn a_recursive_function_memoizes_its_own_calls() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached]
    async fn fib(n: u64) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        if n < 2 {
            return n;
        }
        Box::pin(fib(n - 1)).await + Box::pin(fib(n - 2)).await
    }

    assert_eq!(fib(90).await, 2_880_067_194_370_816_120);
    assert_eq!(RUNS.load(SeqCst), 91, "each n computed once");
    // The generated future is `Send`: it can run on a multi-thread runtime's task.
    assert_eq!(
        tokio::spawn(fib(91)).await.expect("no panic"),
        4_660_046_610_375_530_309
    );
}

#[tokio::test]
async fn a_cache_error_passes_through_question_mark_unchanged() {
    static INNER_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "1m")]
    async fn inner(_id: u8) -> Result<u8, CacheError<Unavailable>> {
        INNER_RUNS.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        Err(Unavailable("inner down").into())
    }

    #[smart_cached(retry = "1m")]
    async fn outer(id: u8) -> Result<u8, CacheError<Unavailable>> {
        Ok(inner(id).await? + 1)
    }

    let fresh = outer(1).await.unwrap_err();
    assert!(matches!(&fresh, CacheError::Failed(e) if **e == Unavailable("inner down")));
    let cached = outer(1).await.unwrap_err();
    assert!(cached.is_cached(), "outer's own cached failure");
    assert_eq!(
        **cached.error().expect("original"),
        Unavailable("inner down")
    );
    // Run outer's body again: it receives inner's cached error and passes it on as such.
    assert!(outer_cache().invalidate(&(1,)));
    let passed_on = outer(1).await.unwrap_err();
    assert!(passed_on.is_cached());
    assert_eq!(
        **passed_on.error().expect("original"),
        Unavailable("inner down")
    );
    assert_eq!(INNER_RUNS.load(SeqCst), 1);
    assert_eq!(outer_cache().stats().load_failures, 2);
}
