//! Error types applications use, under `#[smart_cached]`: `anyhow::Result<T>` (smartcache's
//! `anyhow` feature) and `Box<dyn Error + Send + Sync>` are transparent, a cached failure
//! coming back with the original's message and chain; `?` from a `CacheError` into
//! `anyhow::Error`.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use anyhow::Context;
use smartcache::{CacheError, smart_cached};

#[derive(Debug)]
struct Refused(u16);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection refused on port {}", self.0)
    }
}

impl Error for Refused {}

/// The messages of an error's chain, outermost first.
fn chain(error: &(dyn Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(error), |&e| e.source())
        .map(ToString::to_string)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_anyhow_failure_comes_back_with_its_message_and_chain() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[smart_cached(retry = "1m")]
    async fn config(port: u16) -> anyhow::Result<String> {
        let run = RUNS.fetch_add(1, SeqCst);
        if run == 0 {
            return Err(Refused(port)).context("loading the config");
        }
        Ok(format!("port {port}"))
    }

    let fresh = config(80).await.unwrap_err();
    let cached = config(80).await.unwrap_err();
    assert_eq!(RUNS.load(SeqCst), 1, "the failure is cached");
    for error in [&fresh, &cached] {
        assert_eq!(error.to_string(), "loading the config");
        assert_eq!(
            format!("{error:#}"),
            "loading the config: connection refused on port 80"
        );
        assert_eq!(
            error.chain().map(ToString::to_string).collect::<Vec<_>>(),
            ["loading the config", "connection refused on port 80"]
        );
        assert_eq!(
            error.root_cause().to_string(),
            "connection refused on port 80"
        );
    }
    assert_eq!(config_cache().stats().cached_error_hits, 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(config(80).await.unwrap(), "port 80");
}

#[tokio::test]
async fn with_no_retry_interval_the_original_anyhow_error_is_handed_over() {
    #[smart_cached(retry = "0s")]
    async fn probe(port: u16) -> anyhow::Result<u16> {
        Err(Refused(port).into())
    }

    let error = probe(443).await.unwrap_err();
    assert!(
        error.downcast_ref::<Refused>().is_some(),
        "nothing else holds it"
    );
}

#[tokio::test]
async fn a_boxed_error_comes_back_with_its_message_and_chain() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    struct Wrapped(Refused);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("backend unavailable")
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[smart_cached]
    async fn fetch(port: u16) -> Result<u64, Box<dyn Error + Send + Sync>> {
        RUNS.fetch_add(1, SeqCst);
        Err(Box::new(Wrapped(Refused(port))))
    }

    let fresh = fetch(5432).await.unwrap_err();
    let cached = fetch(5432).await.unwrap_err();
    assert_eq!(RUNS.load(SeqCst), 1);
    for error in [fresh, cached] {
        assert_eq!(
            chain(&*error),
            ["backend unavailable", "connection refused on port 5432"]
        );
    }
}

#[tokio::test]
async fn question_mark_takes_a_cache_error_into_anyhow() {
    #[smart_cached]
    async fn port(name: &str) -> Result<u16, CacheError<Refused>> {
        Err(Refused(u16::try_from(name.len()).unwrap_or(0)).into())
    }

    async fn caller() -> anyhow::Result<u16> {
        let port = port("db").await?;
        Ok(port)
    }

    let fresh = caller().await.unwrap_err();
    assert!(fresh.downcast_ref::<CacheError<Refused>>().is_some());
    assert_eq!(
        fresh.root_cause().to_string(),
        "connection refused on port 2"
    );
    let cached = caller().await.unwrap_err();
    let cached = cached
        .downcast_ref::<CacheError<Refused>>()
        .expect("a CacheError");
    assert!(cached.is_cached());
}

#[tokio::test]
async fn a_cache_error_of_anyhow_converts_with_into_anyhow() {
    #[smart_cached]
    async fn token(user: u32) -> Result<String, CacheError<anyhow::Error>> {
        Err(anyhow::anyhow!("no token for {user}").into())
    }

    async fn caller() -> anyhow::Result<String> {
        let token = token(7).await.map_err(CacheError::into_anyhow)?;
        Ok(format!("Bearer {token}"))
    }

    assert_eq!(caller().await.unwrap_err().to_string(), "no token for 7");
    let cached = caller().await.unwrap_err();
    assert!(cached.to_string().starts_with("cached error (retry in "));
    assert_eq!(cached.root_cause().to_string(), "no token for 7");
}

#[tokio::test]
async fn a_cache_error_of_a_boxed_error_converts_with_into_boxed() {
    #[smart_cached]
    async fn lease(slot: u32) -> Result<u32, CacheError<Box<dyn Error + Send + Sync>>> {
        Err(Box::<dyn Error + Send + Sync>::from(format!("slot {slot} taken")).into())
    }

    async fn boxed_caller() -> Result<u32, Box<dyn Error + Send + Sync>> {
        let slot = lease(3).await.map_err(CacheError::into_boxed)?;
        Ok(slot + 1)
    }

    assert_eq!(
        boxed_caller().await.unwrap_err().to_string(),
        "slot 3 taken"
    );
    let cached = boxed_caller().await.unwrap_err();
    assert!(cached.to_string().starts_with("cached error (retry in "));
    assert_eq!(chain(&*cached)[1..], ["slot 3 taken"]);
}
