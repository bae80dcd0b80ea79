//! The README's first command: a flaky backend behind `#[smart_cached]`.
//!
//! ```sh
//! cargo run -p smartcache-examples --example demo
//! ```
//!
//! Self-contained (no network) and quick: the windows are real but short (a 300 ms retry
//! interval, a 500 ms time to live), so it runs in about a second. It shows
//!
//! 1. a herd of concurrent callers coalescing into one computation;
//! 2. a failure cached, counted down, then retried;
//! 3. a value expiring after its time to live and being recomputed;
//! 4. a bounded cache evicting;
//! 5. the statistics of every registered cache.

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use smartcache::{CacheError, registry, smart_cached};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How many callers make up the herd.
const HERD: u64 = 100;

/// A simulated price backend: slow, counts its calls, and fails once for `FLAKY`.
struct Backend {
    calls: AtomicU32,
    /// Calls wait here until the demo opens it (closes the semaphore), so that the whole
    /// herd has arrived before the first call can finish.
    gate: Semaphore,
    flaky_recovered: AtomicBool,
}

static BACKEND: LazyLock<Backend> = LazyLock::new(|| Backend {
    calls: AtomicU32::new(0),
    gate: Semaphore::new(0),
    flaky_recovered: AtomicBool::new(false),
});

/// What the backend says when it fails.
#[derive(Debug)]
struct BackendError(&'static str);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Backend {
    async fn price(&self, symbol: &str) -> Result<u32, BackendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Err(closed) is the open gate: every caller, present and future, goes through.
        drop(self.gate.acquire().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if symbol == "FLAKY" && !self.flaky_recovered.swap(true, Ordering::SeqCst) {
            return Err(BackendError("connection reset by peer"));
        }
        // A price that moves with every call, so a recomputation shows.
        Ok(100 + call)
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The cached price: failures cached for 300 ms, prices kept for 500 ms.
#[smart_cached(retry = "300ms", ttl = "500ms")]
async fn price(symbol: &str) -> Result<u32, CacheError<BackendError>> {
    Ok(BACKEND.price(symbol).await?)
}

/// An infallible lookup in a cache of at most two entries.
#[smart_cached(capacity = 2, name = "demo::currency_names")]
async fn currency_name(code: &str) -> String {
    match code {
        "EUR" => "euro",
        "USD" => "US dollar",
        "JPY" => "yen",
        _ => "unknown",
    }
    .to_owned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("smartcache demo: a flaky price backend behind #[smart_cached]\n");
    herd().await;
    error_caching().await;
    time_to_live().await;
    capacity().await;
    stats_table();
}

async fn herd() {
    println!("1. single-flight: {HERD} concurrent callers ask for ACME");
    let callers: Vec<_> = (0..HERD)
        .map(|_| tokio::spawn(async { price("ACME").await }))
        .collect();
    // Hold the backend until every caller has arrived: one led the flight, the rest joined.
    // (Bounded, so a regression shows up as odd figures below rather than a hang.)
    for _ in 0..1_000_000 {
        if price_cache().stats().misses >= HERD {
            break;
        }
        tokio::task::yield_now().await;
    }
    let stats = price_cache().stats();
    println!(
        "   {} callers waiting, {} computation in flight ({} joined it)",
        stats.misses, stats.in_flight, stats.coalesced
    );
    BACKEND.gate.close();
    let mut answers = Vec::new();
    for caller in callers {
        match caller.await {
            Ok(Ok(price)) => answers.push(price),
            Ok(Err(error)) => println!("   a caller failed: {error}"),
            Err(error) => println!("   a caller task failed: {error}"),
        }
    }
    answers.dedup();
    println!(
        "   every caller got {answers:?}; backend calls: {}\n",
        BACKEND.calls()
    );
}

async fn error_caching() {
    println!("2. error caching: FLAKY fails once; the failure is cached for 300 ms");
    let start = Instant::now();
    loop {
        let at = start.elapsed().as_millis();
        match price("FLAKY").await {
            Ok(price) => {
                println!(
                    "   {at:>4} ms  recomputed: {price} (backend calls: {})\n",
                    BACKEND.calls()
                );
                break;
            }
            Err(error) if error.is_cached() => {
                println!("   {at:>4} ms  {error}  (nothing ran)");
            }
            Err(error) => println!(
                "   {at:>4} ms  failed: {error} (backend calls: {})",
                BACKEND.calls()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn time_to_live() {
    println!("3. time to live: INITECH is kept for 500 ms");
    let first = shown(price("INITECH").await);
    let again = shown(price("INITECH").await);
    println!("   computed {first}, then a hit: {again}");
    tokio::time::sleep(Duration::from_millis(550)).await;
    let later = shown(price("INITECH").await);
    println!(
        "   550 ms later: {later} (recomputed; backend calls: {})",
        BACKEND.calls()
    );
    println!(
        "   expirations: {} (ACME and FLAKY had outlived 500 ms too: swept on the way)\n",
        price_cache().stats().expirations
    );
}

/// A price, or why there is none.
fn shown(answer: Result<u32, CacheError<BackendError>>) -> String {
    match answer {
        Ok(price) => price.to_string(),
        Err(error) => format!("error: {error}"),
    }
}

async fn capacity() {
    println!("4. capacity: currency names, at most 2 kept");
    for code in ["EUR", "USD", "EUR", "JPY"] {
        let name = currency_name(code).await;
        println!("   {code}: {name}");
    }
    let stats = currency_name_cache().stats();
    println!(
        "   entries: {}, evictions: {} (EUR was read again, so USD went first)\n",
        stats.total_entries, stats.evictions
    );
}

fn stats_table() {
    println!("5. every registered cache (smartcache::registry::snapshot)");
    println!(
        "   {:<22} {:>5} {:>6} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "cache",
        "hits",
        "misses",
        "coalesced",
        "loads ok",
        "failed",
        "cached",
        "expired",
        "evicted",
        "hit rate"
    );
    for cache in registry::snapshot() {
        let s = &cache.stats;
        println!(
            "   {:<22} {:>5} {:>6} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7.1}%",
            cache.name,
            s.hits,
            s.misses,
            s.coalesced,
            s.load_successes,
            s.load_failures,
            s.cached_error_hits,
            s.expirations,
            s.evictions,
            s.hit_rate() * 100.0
        );
    }
}
