//! The README's first command: a flaky backend behind `#[smart_cached]`.
//!
//! ```sh
//! cargo run -p smartcache-examples --example demo
//! ```
//!
//! Self-contained (no network) and instant: it runs on tokio's paused clock, which moves only
//! when every task is waiting, so the 300 ms retry interval and the 500 ms time to live below
//! are exact and every figure printed adds up. (Caches read tokio's clock; that is also what
//! makes tests of cached code deterministic.) It shows
//!
//! 1. a herd of concurrent callers coalescing into one computation;
//! 2. a failure cached, counted down, then retried;
//! 3. a value expiring after its time to live and being recomputed;
//! 4. a bounded cache evicting;
//! 5. a backend that goes down: refresh-ahead, stale-if-error and retry backoff;
//! 6. the statistics of every registered cache.
//!
//! Each section ends with its own figures (the change in the cache's statistics during the
//! section), and the table at the end sums them up.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use smartcache::{CacheError, CacheStats, registry, smart_cached};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How many callers make up the herd.
const HERD: u64 = 100;

/// A simulated price backend: takes 20 ms, counts its calls, and fails once for `FLAKY`.
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

impl Error for BackendError {}

impl Backend {
    /// The price of `symbol`: 100 plus the number of this call, so that every computation
    /// shows in the answer (the first call answers 101, the second 102, ...).
    async fn price(&self, symbol: &str) -> Result<u32, BackendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Err(closed) is the open gate: every caller, present and future, goes through.
        drop(self.gate.acquire().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if symbol == "FLAKY" && !self.flaky_recovered.swap(true, Ordering::SeqCst) {
            return Err(BackendError("connection reset by peer"));
        }
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

/// Whether the quote backend answers (section 5 turns it off, then on again).
static QUOTES_UP: AtomicBool = AtomicBool::new(true);
/// Calls of the quote backend.
static QUOTE_CALLS: AtomicU32 = AtomicU32::new(0);

/// A quote: fresh for 1 s, refreshed ahead after 400 ms, served stale for up to 5 s after
/// expiry while the backend fails, failures cached 200 ms and backing off up to 1.6 s.
#[smart_cached(
    ttl = "1s",
    refresh = "400ms",
    stale_if_error = "5s",
    retry = "200ms",
    retry_max = "1600ms"
)]
async fn quote(_symbol: &str) -> Result<u32, CacheError<BackendError>> {
    let call = QUOTE_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(20)).await;
    if QUOTES_UP.load(Ordering::SeqCst) {
        Ok(200 + call)
    } else {
        Err(BackendError("503 service unavailable").into())
    }
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

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    println!("smartcache demo: a flaky price backend behind #[smart_cached]");
    println!("(on tokio's paused clock: the windows below are exact, and it takes no time)\n");
    herd().await;
    error_caching().await;
    time_to_live().await;
    capacity().await;
    failing_backend().await;
    stats_table();
}

/// What happened to a cache between two snapshots of its statistics.
struct Section {
    before: CacheStats,
    calls_before: u32,
}

impl Section {
    fn start(stats: CacheStats) -> Self {
        Self {
            before: stats,
            calls_before: BACKEND.calls(),
        }
    }

    /// The section's requests, split the way they were answered (the parts add up to the
    /// total), and what else changed.
    fn summary(&self, now: &CacheStats, backend: bool) -> String {
        let b = &self.before;
        let (hits, joined, errors) = (
            now.hits - b.hits,
            now.coalesced - b.coalesced,
            now.cached_error_hits - b.cached_error_hits,
        );
        let (ok, failed) = (
            now.load_successes - b.load_successes,
            now.load_failures - b.load_failures,
        );
        let mut parts = Vec::new();
        for (count, what) in [
            (hits, "hit"),
            (joined, "joined a computation"),
            (errors, "cached error"),
        ] {
            if count > 0 {
                parts.push(format!("{count} {what}{}", plural(count, what)));
            }
        }
        let computed = match (ok, failed) {
            (_, 0) => format!("{ok} computed"),
            _ => format!("{} computed ({ok} ok, {failed} failed)", ok + failed),
        };
        parts.push(computed);
        let mut line = format!(
            "   this section: {} requests = {}",
            now.requests() - b.requests(),
            parts.join(" + ")
        );
        if backend {
            let calls = BACKEND.calls() - self.calls_before;
            let _ = write!(line, "; backend calls: {calls}"); // cannot fail on a String
        }
        line
    }
}

/// The plural ending of `what` for `count`, for the words used above.
fn plural(count: u64, what: &str) -> &'static str {
    match (count, what) {
        (1, _) | (_, "joined a computation") => "",
        _ => "s",
    }
}

/// An error as an error reporter prints it: each layer, then its source, joined by ": "
/// (`CacheError`'s own text says what the cache did; the backend's error is its source).
fn report(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}"); // cannot fail on a String
        source = cause.source();
    }
    text
}

async fn herd() {
    println!("1. single-flight: {HERD} concurrent callers ask for ACME");
    let section = Section::start(price_cache().stats());
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
        "   {} callers have asked while the backend works: {} computation in flight, which {} of them joined",
        stats.misses, stats.in_flight, stats.coalesced
    );
    BACKEND.gate.close();
    let mut answers = Vec::new();
    for caller in callers {
        match caller.await {
            Ok(Ok(price)) => answers.push(price),
            Ok(Err(error)) => println!("   a caller failed: {}", report(&error)),
            Err(error) => println!("   a caller task failed: {error}"),
        }
    }
    let received = answers.len();
    answers.dedup();
    match answers[..] {
        [one] => println!(
            "   all {received} callers got the same price, {one}: the backend's answer to its call {}",
            one - 100
        ),
        _ => println!("   the callers got different prices: {answers:?}"),
    }
    println!("{}\n", section.summary(&price_cache().stats(), true));
}

async fn error_caching() {
    println!("2. error caching: FLAKY fails once; the failure is cached for 300 ms");
    let section = Section::start(price_cache().stats());
    // Times are counted from the failure, when the retry window starts; each line after the
    // first shows when the call was made.
    let mut failed_at: Option<Instant> = None;
    loop {
        let asked = failed_at.map_or(Duration::ZERO, |at| at.elapsed());
        let answer = price("FLAKY").await;
        failed_at.get_or_insert_with(Instant::now);
        let at = format!("{:>4} ms", asked.as_millis());
        match answer {
            Ok(price) => {
                println!("   {at}  the window has passed: computed again, {price}");
                break;
            }
            Err(error) if error.is_cached() => {
                println!("   {at}  {}  (nothing ran)", report(&error));
            }
            Err(error) => println!("   {at}  {}  (the backend was called)", report(&error)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{}\n", section.summary(&price_cache().stats(), true));
}

async fn time_to_live() {
    println!("3. time to live: INITECH is kept for 500 ms");
    let section = Section::start(price_cache().stats());
    let first = shown(price("INITECH").await);
    let again = shown(price("INITECH").await);
    println!("   computed {first}, then a hit: {again}");
    tokio::time::sleep(Duration::from_millis(550)).await;
    let later = shown(price("INITECH").await);
    println!("   550 ms later it has expired, and is computed again: {later}");
    let now = price_cache().stats();
    println!("{}", section.summary(&now, true));
    let expired = now.expirations - section.before.expirations;
    if expired == 3 {
        println!(
            "   values expired: 3, INITECH's and, removed by the same sweep, ACME's and FLAKY's (older than 500 ms too)\n"
        );
    } else {
        println!("   values expired: {expired}\n");
    }
}

/// A price, or why there is none.
fn shown(answer: Result<u32, CacheError<BackendError>>) -> String {
    match answer {
        Ok(price) => price.to_string(),
        Err(error) => format!("error: {}", report(&error)),
    }
}

async fn capacity() {
    println!("4. capacity: currency names, at most 2 kept");
    let section = Section::start(currency_name_cache().stats());
    for code in ["EUR", "USD", "EUR", "JPY"] {
        let name = currency_name(code).await;
        println!("   {code}: {name}");
    }
    let stats = currency_name_cache().stats();
    println!("{}", section.summary(&stats, false));
    println!(
        "   entries: {}, evictions: {} (EUR was read again, so USD went first)\n",
        stats.total_entries, stats.evictions
    );
}

async fn failing_backend() {
    println!(
        "5. a failing backend: QUOTE is fresh 1 s, refreshed ahead after 400 ms, served stale up\n   \
         to 5 s past expiry; failures are cached 200 ms, doubling (±20%) up to 1.6 s"
    );
    let start = Instant::now();
    let at = || format!("{:>5} ms", start.elapsed().as_millis());
    let first = shown(quote("QUOTE").await);
    println!("   {}  computed {first} (fresh)", at());
    tokio::time::sleep(Duration::from_millis(450)).await;
    let old = shown(quote("QUOTE").await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let refreshed = shown(quote("QUOTE").await);
    println!(
        "   {}  past the refresh point: {old} at once, refreshed in the background to {refreshed}",
        at()
    );
    QUOTES_UP.store(false, Ordering::SeqCst);
    println!("   {}  the backend goes down", at());
    let stats = || quote_cache().stats();
    let mut last = (QUOTE_CALLS.load(Ordering::SeqCst), "");
    let mut refresh_failures = 0;
    // Ask every 100 ms; print a line when the backend was called or the kind of answer
    // changed.
    for step in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if step == 80 {
            QUOTES_UP.store(true, Ordering::SeqCst);
            println!("   {}  the backend is back", at());
        }
        let before = stats();
        let answer = quote("QUOTE").await;
        tokio::task::yield_now().await; // a refresh-ahead starts its computation
        let (after, calls) = (stats(), QUOTE_CALLS.load(Ordering::SeqCst));
        let (kind, what) = match &answer {
            Ok(price) if after.stale_hits > before.stale_hits => (
                "stale",
                format!("{price}, stale: expired while the backend fails"),
            ),
            Ok(price) if after.refreshes > before.refreshes => (
                "refreshing",
                format!("{price} at once; a refresh-ahead asks the backend"),
            ),
            Ok(price) if after.refresh_failures > refresh_failures => {
                refresh_failures = after.refresh_failures;
                (
                    "kept",
                    format!("{price}: the refresh failed, the old value stays"),
                )
            }
            Ok(price) => ("fresh", format!("{price}")),
            Err(error) if error.is_cached() => ("cached", report(error)),
            Err(error) => ("failed", report(error)),
        };
        if calls != last.0 || kind != last.1 {
            let asked = if calls == last.0 {
                "nothing ran"
            } else {
                "the backend was asked"
            };
            println!("   {}  {what}  ({asked})", at());
        }
        last = (calls, kind);
        if step > 80 && answer.is_ok() {
            break;
        }
    }
    let s = stats();
    println!(
        "   refreshes {} ({} failed), stale hits {}, backend calls {}\n",
        s.refreshes,
        s.refresh_failures,
        s.stale_hits,
        QUOTE_CALLS.load(Ordering::SeqCst)
    );
}

fn stats_table() {
    println!(
        "6. every registered cache (smartcache::registry::snapshot), sections 1 to 5 together"
    );
    println!(
        "   {:<22} {:>8} {:>5} {:>6} {:>8} {:>6} {:>12} {:>8} {:>12} {:>7}",
        "cache",
        "requests",
        "hits",
        "joined",
        "computed",
        "failed",
        "cached error",
        "hit rate",
        "saved",
        "evicted"
    );
    for cache in registry::snapshot() {
        let s = &cache.stats;
        let computed = s.load_successes + s.load_failures;
        let saved = s.requests() - computed;
        #[allow(clippy::cast_precision_loss)] // small counts
        let saved_share = saved as f64 / s.requests().max(1) as f64 * 100.0;
        println!(
            "   {:<22} {:>8} {:>5} {:>6} {:>8} {:>6} {:>12} {:>7.1}% {:>12} {:>7}",
            cache.name,
            s.requests(),
            s.hits,
            s.coalesced,
            computed,
            s.load_failures,
            s.cached_error_hits,
            s.hit_rate() * 100.0,
            format!("{saved} ({saved_share:.1}%)"),
            s.evictions
        );
    }
    println!(
        "   backend calls: {} in all, demo::price's computations",
        BACKEND.calls()
    );
    println!(
        "
   requests = hits + joined + computed + cached error: every call is one of the four.
   joined: callers that found a computation of their key in flight and shared its result
     (CacheStats::coalesced). The statistics count them as misses, as Caffeine and Guava do:
     misses = joined + computed, and the hit rate is hits / requests, which is why a herd
     keeps it low.
   computed: computations run (= backend calls for demo::price), failed among them.
   cached error: answered with a remembered failure; nothing ran.
   saved: the requests answered without a computation of their own (hits, joined and cached
     errors), that is the work the cache saved."
    );
}
