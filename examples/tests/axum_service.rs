//! The `axum_service` example's app, started on a free port and spoken to over real HTTP.
//!
//! The cached lookup is one static cache for the whole test binary, so every test uses its
//! own user ids, and only one test (`concurrent_requests_...`) counts that cache's misses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use smartcache_examples::axum_app::{self, Upstream, lookup_user_cache};
use smartcache_examples::http::{self, Response};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Starts the app with `upstream` on 127.0.0.1 and a free port.
async fn start(upstream: Arc<Upstream>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum_app::serve(listener, upstream));
    addr
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    http::get(addr, path)
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"))
}

/// Waits until `done` holds, checking every millisecond; fails the test after 10 s instead
/// of hanging. (This waits for a condition; it never sleeps hoping for an interleaving.)
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn json(response: &Response) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", response.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_user_make_one_upstream_call() {
    const REQUESTS: u64 = 16;
    let (upstream, gate) = Upstream::gated();
    let addr = start(Arc::clone(&upstream)).await;
    let before = lookup_user_cache().stats();

    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| tokio::spawn(http::get(addr, "/users/42")))
        .collect();
    // The upstream holds the first call until the gate opens; open it only once every
    // request has reached the cache (one led the flight, the others joined it).
    until("every request has reached the cache", || {
        lookup_user_cache().stats().misses - before.misses == REQUESTS
    })
    .await;
    assert_eq!(upstream.calls(), 1, "one upstream call while they all wait");
    gate.open();

    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(json(&response)["id"], 42);
        assert_eq!(json(&response)["name"], "user-42");
        assert!(response.header("x-process-id").is_some());
    }
    assert_eq!(upstream.calls(), 1);

    // A later request is a hit: still one upstream call.
    let again = get(addr, "/users/42").await;
    assert_eq!((again.status, upstream.calls()), (200, 1));

    // `/stats` lists the lookup's cache with the herd in its figures.
    let stats = json(&get(addr, "/stats").await);
    let listed = stats.as_array().expect("a JSON array of caches");
    let lookup = listed
        .iter()
        .find(|cache| {
            cache["name"]
                .as_str()
                .is_some_and(|name| name.ends_with("lookup_user"))
        })
        .unwrap_or_else(|| panic!("lookup_user's cache is not listed: {stats}"));
    let figure = |field: &str| lookup["stats"][field].as_u64().unwrap();
    assert_eq!(figure("misses") - before.misses, REQUESTS);
    assert_eq!(figure("coalesced") - before.coalesced, REQUESTS - 1);
    assert_eq!(figure("load_successes") - before.load_successes, 1);
    assert_eq!(figure("hits") - before.hits, 1);
    assert_eq!(figure("in_flight"), 0);

    // An unknown user: a fresh 404, then a cached one, with one more upstream call in all.
    let fresh = get(addr, "/users/2000042").await;
    assert_eq!(fresh.status, 404);
    assert_eq!(json(&fresh)["cached"], false);
    let cached = get(addr, "/users/2000042").await;
    assert_eq!(cached.status, 404);
    assert_eq!(json(&cached)["cached"], true);
    assert!(json(&cached)["retry_in_ms"].as_u64().unwrap() > 0);
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn a_bad_id_is_a_clear_400_and_never_reaches_the_upstream() {
    let (upstream, gate) = Upstream::gated();
    gate.open();
    let addr = start(Arc::clone(&upstream)).await;
    for path in ["/users/abc", "/users/-1", "/users/99999999999999999999999"] {
        let response = get(addr, path).await;
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        assert!(response.body.contains("Cannot parse"), "{}", response.body);
    }
    assert_eq!(get(addr, "/nowhere").await.status, 404);
    assert_eq!(upstream.calls(), 0);
}

#[tokio::test]
async fn the_middleware_adds_the_cached_enrichers_to_every_response() {
    let (upstream, gate) = Upstream::gated();
    gate.open();
    let addr = start(upstream).await;
    let response = get(addr, "/stats").await;
    assert_eq!(response.status, 200);
    let pid = std::process::id().to_string();
    assert_eq!(response.header("x-process-id"), Some(pid.as_str()));
    if let Ok(host) = smartcache_examples::enrich::hostname().await {
        assert_eq!(response.header("x-served-by"), Some(host.as_str()));
    }
}
