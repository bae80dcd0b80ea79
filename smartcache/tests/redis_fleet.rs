//! A fleet: this test binary starts copies of itself as worker processes, all on one real
//! Redis, and counts in Redis what their computations did.
//!
//! A worker is the `fleet_worker` test run with `SMARTCACHE_FLEET_WORKER` set (`url|scenario`);
//! without it, that test does nothing.
#![cfg(feature = "redis")]

mod redis_support;

use std::future::Future;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use redis_support::Server;
use smartcache::AsyncSmartCache;
use smartcache::redis::{RedisTier, TierConfig};

const WORKER: &str = "SMARTCACHE_FLEET_WORKER";
const PROCESSES: usize = 3;
const TASKS: usize = 20;

type Cache = AsyncSmartCache<u64, String, String>;

/// This test binary, to run as the worker of `spec` (`url|scenario`).
fn worker_command(spec: String) -> Command {
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            "fleet_worker",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(WORKER, spec);
    command
}

/// Runs `PROCESSES` workers of `scenario` against `server`; returns each one's output.
fn run_fleet(server: &Server, scenario: &str) -> Vec<String> {
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            worker_command(format!("{}|{scenario}", server.url()))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("a worker process")
        })
        .collect();
    workers
        .into_iter()
        .map(|worker| {
            let output = worker.wait_with_output().expect("the worker ends");
            assert!(output.status.success(), "a worker failed");
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
        .collect()
}

fn connection(server: &Server) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn counter(server: &Server, name: &str) -> i64 {
    redis::cmd("GET")
        .arg(name)
        .query::<Option<i64>>(&mut connection(server))
        .unwrap()
        .unwrap_or(0)
}

/// The answers a worker printed (`answer: ..`; the first shares its line with the test
/// harness's `test fleet_worker ... `).
fn answers(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter_map(|line| line.split_once("answer: ").map(|(_, answer)| answer))
        .collect()
}

#[test]
fn a_herd_across_processes_makes_one_backend_call() {
    let server = Server::start();
    let outputs = run_fleet(&server, "herd");
    assert_eq!(
        counter(&server, "fleet:computations"),
        1,
        "one computation fleet-wide"
    );
    let all: Vec<&str> = outputs.iter().flat_map(|o| answers(o)).collect();
    assert_eq!(all.len(), PROCESSES * TASKS);
    assert!(
        all.iter().all(|a| *a == all[0]),
        "everyone got the same value: {all:?}"
    );
}

#[test]
fn a_failure_is_shared_by_the_fleet_and_computed_once() {
    let server = Server::start();
    let outputs = run_fleet(&server, "fail");
    assert_eq!(
        counter(&server, "fleet:computations"),
        1,
        "one failing call fleet-wide"
    );
    let all: Vec<&str> = outputs.iter().flat_map(|o| answers(o)).collect();
    assert_eq!(all.len(), PROCESSES * 3);
    // The process that ran it answers `Failed` once; every other answer, in every process,
    // is the fleet's cached error, with the time left of the fleet's window.
    let failed = all
        .iter()
        .filter(|a| **a == "error computation failed")
        .count();
    let cached = all
        .iter()
        .filter(|a| a.starts_with("error cached error (retry in "))
        .count();
    assert_eq!((failed, cached), (1, PROCESSES * 3 - 1), "{all:?}");
}

#[test]
fn after_the_shared_window_exactly_one_process_retries() {
    let server = Server::start();
    let outputs = run_fleet(&server, "retry");
    // One failure, then after the 2 s window one retry (failing again) for the whole fleet.
    assert_eq!(counter(&server, "fleet:computations"), 2);
    let all: Vec<&str> = outputs.iter().flat_map(|o| answers(o)).collect();
    let failed = all
        .iter()
        .filter(|a| **a == "error computation failed")
        .count();
    assert_eq!((all.len(), failed), (PROCESSES * 2, 2), "{all:?}");
}

#[test]
fn a_lease_holder_killed_mid_computation_delays_the_others_by_the_lease_time_at_most() {
    let server = Server::start();
    let mut holder = worker_command(format!("{}|hold", server.url()))
        .stdout(Stdio::null())
        .spawn()
        .expect("a worker");
    let mut started = false;
    for _ in 0..1_000 {
        if counter(&server, "fleet:computations") == 1 {
            started = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(started, "the holder started computing");
    holder.kill().expect("SIGKILL"); // no clean-up: its lease stays until it runs out
    let _ = holder.wait();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async {
        let client = redis::Client::open(server.url()).unwrap();
        let config = TierConfig::default().with_lease(Duration::from_secs(1));
        let tier = RedisTier::from_client(client, config).await.unwrap();
        let cache: Cache = AsyncSmartCache::builder()
            .name("fleet-hold")
            .shared(tier)
            .build();
        let call = cache.get_or_compute_shared(1, || async { Ok("computed here".to_owned()) });
        // A guard against a hang, not a timing check: the lease runs out after 1 s.
        let answer = tokio::time::timeout(Duration::from_secs(30), call).await;
        (answer, cache.stats().shared)
    });
    let (answer, shared) = answer;
    assert_eq!(answer.expect("no hang").unwrap(), "computed here");
    assert!(
        shared.lease_waits >= 1,
        "it waited for the dead holder: {shared:?}"
    );
    assert_eq!((shared.lease_timeouts, shared.misses), (1, 1), "{shared:?}");
}

#[test]
fn with_redis_gone_every_process_computes_on_its_own() {
    let mut server = Server::start();
    let url = server.url();
    server.stop();
    let output = worker_command(format!("{url}|down"))
        .output()
        .expect("a worker");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(answers(&stdout), vec!["local-only"]);
}

#[test]
fn an_invalidation_in_one_process_reaches_the_copies_of_the_others() {
    let server = Server::start();
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            worker_command(format!("{}|invalidate", server.url()))
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker process")
        })
        .collect();
    // Every worker holds a local copy of key 1; then this process invalidates it.
    let mut fetched = false;
    for _ in 0..1_000 {
        if counter(&server, "fleet:fetched") == i64::try_from(PROCESSES).unwrap() {
            fetched = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fetched, "the workers fetched the key");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tier = RedisTier::connect(&server.url()).await.unwrap();
        let cache: Cache = AsyncSmartCache::builder()
            .name("fleet-invalidate")
            .shared(tier)
            .build();
        cache.invalidate(&1);
        // The fan-out runs in a task of this runtime: give it the time to send.
        for _ in 0..500 {
            if counter(&server, "fleet:dropped") == i64::try_from(PROCESSES).unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    for worker in workers {
        let output = worker.wait_with_output().expect("the worker ends");
        assert!(output.status.success(), "a worker failed");
        assert_eq!(
            answers(&String::from_utf8_lossy(&output.stdout)),
            vec!["dropped"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_entry_is_a_miss_and_is_overwritten() {
    let server = Server::start();
    let (a, b) = two_processes(&server, "garbled").await;
    let first = a
        .get_or_compute_shared(1, || async { Ok("first".to_owned()) })
        .await;
    assert_eq!(first.unwrap(), "first");
    // Something else wrote over the entry: bytes no envelope decodes from.
    let mut redis = connection(&server);
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg("sc:garbled:*:k:*")
        .query(&mut redis)
        .unwrap();
    assert_eq!(keys.len(), 1);
    let () = redis::cmd("HSET")
        .arg(&keys[0])
        .arg("e")
        .arg(b"\xc1 not an envelope")
        .query(&mut redis)
        .unwrap();
    let again = b
        .get_or_compute_shared(1, || async { Ok("recomputed".to_owned()) })
        .await;
    assert_eq!(
        again.unwrap(),
        "recomputed",
        "a miss, not a panic or an error"
    );
    let stored: Vec<u8> = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("e")
        .query(&mut redis)
        .unwrap();
    assert_ne!(
        stored, b"\xc1 not an envelope",
        "overwritten by the recomputation"
    );
}

/// The worker side: does nothing unless started by one of the tests above.
#[test]
fn fleet_worker() {
    let Ok(spec) = std::env::var(WORKER) else {
        return;
    };
    let (url, scenario) = spec.split_once('|').expect("url|scenario");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(worker(url.to_owned(), scenario.to_owned()));
}

async fn worker(url: String, scenario: String) {
    if scenario == "down" {
        // Redis is gone before the process starts: connecting fails fast, and the cache
        // works on its own.
        let connected = RedisTier::connect(&url).await;
        assert!(connected.is_err());
        let cache: Cache = AsyncSmartCache::builder().name("fleet").build();
        let answer = cache
            .get_or_compute_shared(1, || async { Ok("local-only".to_owned()) })
            .await
            .unwrap();
        println!("answer: {answer}");
        return;
    }
    match scenario.as_str() {
        "hold" => return hold(&url).await,
        "invalidate" => return await_invalidation(&url).await,
        _ => {}
    }
    let tier = RedisTier::connect(&url).await.expect("redis is up");
    let retry = if scenario == "retry" { 2 } else { 60 };
    let cache: Arc<Cache> = Arc::new(
        AsyncSmartCache::builder()
            .name(format!("fleet-{scenario}"))
            .retry_interval(Duration::from_secs(retry))
            .shared(tier)
            .build(),
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    // Every process is up before any calls: one INCR each, then wait for all.
    let _: i64 = redis::cmd("INCR")
        .arg("fleet:ready")
        .query_async(&mut redis)
        .await
        .unwrap();
    for _ in 0..1_000 {
        let ready: i64 = redis::cmd("GET")
            .arg("fleet:ready")
            .query_async(&mut redis)
            .await
            .unwrap();
        if ready >= i64::try_from(PROCESSES).unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match scenario.as_str() {
        "herd" => herd(&cache, &client).await,
        "fail" => {
            for _ in 0..3 {
                let answer = cache
                    .get_or_compute_shared(7, computation(client.clone(), false))
                    .await;
                println!(
                    "answer: {}",
                    answer.unwrap_or_else(|e| format!("error {e}"))
                );
            }
        }
        "retry" => {
            for round in 0..2 {
                if round == 1 {
                    // Past the window (on Redis's clock and on this process's alike).
                    tokio::time::sleep(Duration::from_millis(2_300)).await;
                }
                let answer = cache
                    .get_or_compute_shared(7, computation(client.clone(), false))
                    .await;
                println!(
                    "answer: {}",
                    answer.unwrap_or_else(|e| format!("error {e}"))
                );
            }
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// Takes the lease and computes for ever, until the test kills the process.
async fn hold(url: &str) {
    // Takes the lease and computes for ever, until the test kills the process.
    let client = redis::Client::open(url).unwrap();
    let config = TierConfig::default().with_lease(Duration::from_secs(1));
    let tier = RedisTier::from_client(client.clone(), config)
        .await
        .unwrap();
    let cache: Cache = AsyncSmartCache::builder()
        .name("fleet-hold")
        .shared(tier)
        .build();
    let _ = cache
        .get_or_compute_shared(1, move || async move {
            let mut redis = client.get_multiplexed_async_connection().await.unwrap();
            let _: i64 = redis::cmd("INCR")
                .arg("fleet:computations")
                .query_async(&mut redis)
                .await
                .unwrap();
            std::future::pending::<Result<String, String>>().await
        })
        .await;
}

/// Fetches key 1 (a local copy), says so, and waits until the copy goes.
async fn await_invalidation(url: &str) {
    // Fetches key 1 (a local copy), says so, and waits until the copy goes.
    let tier = RedisTier::connect(url).await.expect("redis is up");
    let cache: Cache = AsyncSmartCache::builder()
        .name("fleet-invalidate")
        .shared(tier)
        .build();
    let client = redis::Client::open(url).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let value = cache
        .get_or_compute_shared(1, || async { Ok("v".to_owned()) })
        .await;
    assert_eq!(value.unwrap(), "v");
    let _: i64 = redis::cmd("INCR")
        .arg("fleet:fetched")
        .query_async(&mut redis)
        .await
        .unwrap();
    for _ in 0..1_000 {
        if cache.get(&1).is_none() {
            let _: i64 = redis::cmd("INCR")
                .arg("fleet:dropped")
                .query_async(&mut redis)
                .await
                .unwrap();
            println!("answer: dropped");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("answer: still there");
}

/// `TASKS` callers of key 1 at once; the computation (wherever it runs) waits until every
/// process has started calling, so the calls overlap across processes.
async fn herd(cache: &Arc<Cache>, client: &redis::Client) {
    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, client) = (Arc::clone(cache), client.clone());
            tokio::spawn(async move {
                let mut redis = client.get_multiplexed_async_connection().await.unwrap();
                let _: i64 = redis::cmd("INCR")
                    .arg("fleet:calling")
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                cache
                    .get_or_compute_shared(1, computation(client, true))
                    .await
            })
        })
        .collect();
    for caller in callers {
        let answer = caller.await.unwrap();
        println!(
            "answer: {}",
            answer.unwrap_or_else(|e| format!("error {e}"))
        );
    }
}

/// Counts itself in Redis; for a herd, waits until every caller of every process has
/// started (bounded), then answers with its process id; otherwise fails.
fn computation(
    client: redis::Client,
    succeed: bool,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
    move || {
        Box::pin(async move {
            let mut redis = client.get_multiplexed_async_connection().await.unwrap();
            let _: i64 = redis::cmd("INCR")
                .arg("fleet:computations")
                .query_async(&mut redis)
                .await
                .unwrap();
            if !succeed {
                return Err("backend down".to_owned());
            }
            let everyone = i64::try_from(PROCESSES * TASKS).unwrap();
            for _ in 0..500 {
                let calling: i64 = redis::cmd("GET")
                    .arg("fleet:calling")
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                if calling >= everyone {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(format!("computed by process {}", std::process::id()))
        })
    }
}

/// Two caches of one name on two connections, as two processes would have them.
async fn two_processes(server: &Server, name: &str) -> (Cache, Cache) {
    let cache = || async {
        let tier = RedisTier::connect(&server.url())
            .await
            .expect("redis is up");
        AsyncSmartCache::builder().name(name).shared(tier).build()
    };
    (cache().await, cache().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_reaches_the_local_copies_of_every_process() {
    let server = Server::start();
    let (a, b) = two_processes(&server, "fanout").await;
    let from_a = a
        .get_or_compute_shared(1, || async { Ok("first".to_owned()) })
        .await;
    assert_eq!(from_a.unwrap(), "first");
    // B's miss is a shared hit: nothing runs there, and B keeps a local copy.
    let from_b = b
        .get_or_compute_shared(1, || async { Ok("not run".to_owned()) })
        .await;
    assert_eq!(from_b.unwrap(), "first");
    assert_eq!(b.get(&1).as_deref(), Some("first"));
    let (shared_a, shared_b) = (a.stats().shared, b.stats().shared);
    assert_eq!(
        (shared_a.misses, shared_a.hits),
        (1, 0),
        "A computed for the fleet"
    );
    assert_eq!(
        (shared_b.misses, shared_b.hits),
        (0, 1),
        "B was answered by it"
    );
    assert!(a.invalidate(&1));
    let mut dropped = false;
    for _ in 0..500 {
        if b.get(&1).is_none() {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dropped, "B's local copy was dropped by A's invalidation");
    let again = b
        .get_or_compute_shared(1, || async { Ok("second".to_owned()) })
        .await;
    assert_eq!(
        again.unwrap(),
        "second",
        "recomputed, not the invalidated value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_reaches_every_process() {
    let server = Server::start();
    let (a, b) = two_processes(&server, "fanout-clear").await;
    for key in 0..3 {
        let value = a
            .get_or_compute_shared(key, || async move { Ok(key.to_string()) })
            .await;
        assert_eq!(value.unwrap(), key.to_string());
        let shared = b
            .get_or_compute_shared(key, || async { Ok("not run".to_owned()) })
            .await;
        assert_eq!(shared.unwrap(), key.to_string());
    }
    a.clear();
    let mut cleared = false;
    for _ in 0..500 {
        if b.stats().total_entries == 0 {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        cleared,
        "B's local copies went with A's clear: {:?}",
        b.stats()
    );
    let fresh = b
        .get_or_compute_shared(0, || async { Ok("fresh".to_owned()) })
        .await;
    assert_eq!(
        fresh.unwrap(),
        "fresh",
        "the old generation is gone for B too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_or_shut_down_redis_never_fails_or_hangs_a_call() {
    let server = Server::start();
    let tier = RedisTier::connect(&server.url())
        .await
        .expect("redis is up");
    let cache: Cache = AsyncSmartCache::builder()
        .name("fleet-faults")
        .shared(tier.clone())
        .build();
    let warm = cache.get_or_compute_shared(0, || async { Ok("warm".to_owned()) });
    assert_eq!(warm.await.unwrap(), "warm");

    let mut admin = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Paused: every command waits; the tier's timeout answers instead, and the call runs
    // here, local-only.
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "3000", "ALL"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let during = tokio::time::timeout(
        Duration::from_secs(30), // a hang guard, not a timing check
        cache.get_or_compute_shared(1, || async { Ok("local while paused".to_owned()) }),
    )
    .await
    .expect("no hang");
    assert_eq!(during.unwrap(), "local while paused");
    assert!(tier.stats().redis_errors >= 1, "{:?}", tier.stats());
    let shared = cache.stats().shared;
    assert!(
        shared.local_only >= 1 && shared.redis_errors >= 1,
        "{shared:?}"
    );

    // Shut down for good: still every call answers.
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query_async::<()>(&mut admin)
        .await;
    for key in 2..6 {
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            cache.get_or_compute_shared(key, move || async move { Ok(format!("local {key}")) }),
        )
        .await
        .expect("no hang");
        assert_eq!(answer.unwrap(), format!("local {key}"));
    }
    assert!(tier.is_degraded(), "the breaker opened: {:?}", tier.stats());
    // The cache's statistics show the tier's degraded time (counted in milliseconds).
    let mut shown = false;
    for _ in 0..200 {
        if cache.stats().shared.degraded > Duration::ZERO {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        shown,
        "the cache's stats show it: {:?}",
        cache.stats().shared
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_copies_from_the_fleet_are_dropped_when_redis_comes_back() {
    let mut server = Server::start();
    let port = server.port;
    let (a, b) = two_processes(&server, "reconnect").await;
    let computed = a.get_or_compute_shared(1, || async { Ok("before".to_owned()) });
    assert_eq!(computed.await.unwrap(), "before");
    let copied = b.get_or_compute_shared(1, || async { Ok("not run".to_owned()) });
    assert_eq!(copied.await.unwrap(), "before");
    assert_eq!(b.get(&1).as_deref(), Some("before"));

    // Redis restarts: B may have missed events meanwhile, so its copy goes.
    server.stop();
    let _server = Server::start_on(port);
    let mut dropped = false;
    for _ in 0..500 {
        // Calls keep the connection busy, so that B notices the restart.
        let _ = b
            .get_or_compute_shared(2, || async { Ok("other".to_owned()) })
            .await;
        if b.get(&1).is_none() {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        dropped,
        "B dropped its copy from before the restart: {:?}",
        b.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_borrowing_forms_share_through_the_tier_too() {
    let server = Server::start();
    let (a, b) = two_processes(&server, "borrowing").await;
    let prefix = String::from("computed from a borrowed "); // borrowed by the computations
    let from_a = a
        .get_or_compute(1, || async { Ok(format!("{prefix}string")) })
        .await;
    assert_eq!(from_a.unwrap(), "computed from a borrowed string");
    let from_b = b.get_or_compute_sync(1, || Ok("not run".to_owned())).await;
    assert_eq!(from_b.unwrap(), "computed from a borrowed string");
    assert_eq!((b.stats().shared.hits, b.stats().shared.misses), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_counted_fleet_wide_consecutive_failures_in_two_processes_grow_one_window() {
    let server = Server::start();
    let cache = || async {
        let tier = RedisTier::connect(&server.url())
            .await
            .expect("redis is up");
        Cache::builder()
            .name("fleet-backoff")
            .retry_interval(Duration::from_millis(200))
            .max_retry_interval(Duration::from_secs(10))
            .shared(tier)
            .build()
    };
    let (a, b) = (cache().await, cache().await);
    let down = || async { Err::<String, _>("down".to_owned()) };
    // Failure 1, computed by A: about 200 ms fleet-wide (±20%).
    assert!(
        a.get_or_compute_shared(1, down)
            .await
            .unwrap_err()
            .error()
            .is_some()
    );
    let first = b.get_or_compute_shared(1, down).await.unwrap_err();
    assert!(first.is_cached(), "B is answered by A's failure: {first:?}");
    assert!(first.retry_in().unwrap() <= Duration::from_millis(240));
    // Once it is over, failure 2 is computed by B: the fleet's count makes it about 400 ms.
    let mut second = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match b.get_or_compute_shared(1, down).await {
            Err(error) if !error.is_cached() => {
                second = Some(error);
                break;
            }
            _ => {}
        }
    }
    assert!(
        second.is_some(),
        "B computed again once the window was over"
    );
    // A's local copy is over too: it asks the fleet, which has failure 2 with its grown window.
    let from_a = a.get_or_compute_shared(1, down).await.unwrap_err();
    let left = from_a.retry_in().expect("a cached error from the fleet");
    assert!(
        left > Duration::from_millis(250) && left <= Duration::from_millis(480),
        "the second window is doubled fleet-wide: {left:?} left"
    );
    assert_eq!((a.stats().load_failures, b.stats().load_failures), (2, 2));
}
