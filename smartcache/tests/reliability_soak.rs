//! Concurrent churn soak: many tasks on a multi-thread runtime hammer a small key space with
//! hits, misses, failures, panics, cancelled callers, invalidations and clears, while a
//! watcher checks the capacity bound throughout.
//!
//! What must hold, checked on every call or at the end:
//! - no call hangs (each is bounded by an outer timeout that fails the test);
//! - no caller receives a value, error or panic of another key (the key is in each);
//! - no caller receives a value or cached error older than an invalidate or clear that
//!   returned before its call started (a per-key generation is in each);
//! - every call is counted exactly once in `requests()`, `in_flight` returns to 0, and the
//!   entry gauges return to 0 after a final `clear`;
//! - `total_entries` never exceeds the capacity and `error_entries` never exceeds it.
//!
//! `SMARTCACHE_SOAK_SECS` sets the run time of each configuration (default: a short CI run).
//! Figures are printed to stderr (`-- --nocapture`).

mod reliability_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use smartcache::{AsyncSmartCache, CacheError};

/// A value or error names its key and the generation of the key when it was computed.
type Stamp = (u64, u64);
type Cache = AsyncSmartCache<u64, Stamp, Stamp>;

const KEYS: u64 = 10;
const TASKS: u64 = 12;
/// A call that takes this long has hung: no computation here takes more than a few ms.
const HANG: Duration = Duration::from_secs(20);

/// Per-key generations: bumped before each invalidate, and the floor every later call may
/// not go below once the invalidate has returned.
struct Generations {
    current: Vec<AtomicU64>,
    floor: Vec<AtomicU64>,
}

impl Generations {
    fn new() -> Self {
        let zeros = || (0..KEYS).map(|_| AtomicU64::new(0)).collect();
        Self {
            current: zeros(),
            floor: zeros(),
        }
    }

    fn invalidate(&self, cache: &Cache, key: u64) {
        let generation = self.current[slot(key)].fetch_add(1, SeqCst) + 1;
        cache.invalidate(&key);
        self.floor[slot(key)].fetch_max(generation, SeqCst);
    }

    fn clear(&self, cache: &Cache) {
        let generations: Vec<u64> = (self.current.iter())
            .map(|current| current.fetch_add(1, SeqCst) + 1)
            .collect();
        cache.clear();
        for (floor, generation) in self.floor.iter().zip(generations) {
            floor.fetch_max(generation, SeqCst);
        }
    }
}

fn slot(key: u64) -> usize {
    usize::try_from(key).expect("small keys")
}

/// What the soak did, summed over its tasks.
#[derive(Debug, Default)]
struct Tally {
    calls: AtomicU64,
    values: AtomicU64,
    failures: AtomicU64,
    cached_errors: AtomicU64,
    panics: AtomicU64,
    cancelled: AtomicU64,
    invalidations: AtomicU64,
    clears: AtomicU64,
    computations: AtomicU64,
    injected_errors: AtomicU64,
    injected_panics: AtomicU64,
    capacity_checks: AtomicU64,
}

struct Soak {
    cache: Cache,
    capacity: Option<u64>,
    generations: Generations,
    tally: Tally,
}

/// A cheap deterministic generator per task.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// A computation for `key`: reads the key's generation when it starts, does some work
/// (yields, sometimes a short sleep), then returns a value, fails or panics.
async fn compute(soak: Arc<Soak>, key: u64, fate: u64, work: u64) -> Result<Stamp, Stamp> {
    soak.tally.computations.fetch_add(1, SeqCst);
    let generation = soak.generations.current[slot(key)].load(SeqCst);
    for _ in 0..work {
        tokio::task::yield_now().await;
    }
    if work % 4 == 0 {
        tokio::time::sleep(Duration::from_micros(200 * work)).await;
    }
    match fate {
        0 => {
            soak.tally.injected_errors.fetch_add(1, SeqCst);
            Err((key, generation))
        }
        1 => {
            soak.tally.injected_panics.fetch_add(1, SeqCst);
            panic!("injected panic {key}")
        }
        _ => Ok((key, generation)),
    }
}

/// One get call in a random form, perhaps cancelled by a short timeout; checks its answer.
async fn one_call(soak: &Arc<Soak>, rng: &mut XorShift) -> Result<(), String> {
    let key = rng.next(KEYS);
    let (fate, work, form) = (rng.next(10), rng.next(6), rng.next(3));
    let cancel_after = (rng.next(6) == 0).then(|| Duration::from_micros(rng.next(3_000)));
    let floor = soak.generations.floor[slot(key)].load(SeqCst);
    soak.tally.calls.fetch_add(1, SeqCst);
    let call = async {
        let task = Arc::clone(soak);
        match form {
            0 => {
                (soak.cache)
                    .get_or_compute(key, || compute(task, key, fate, work))
                    .await
            }
            1 => {
                (soak.cache)
                    .get_or_compute_shared(key, || compute(task, key, fate, work))
                    .await
            }
            _ => {
                (soak.cache)
                    .get_or_compute_sync(key, || {
                        task.tally.computations.fetch_add(1, SeqCst);
                        // Read when the computation starts, like the async ones.
                        let generation = task.generations.current[slot(key)].load(SeqCst);
                        if fate == 0 {
                            Err((key, generation))
                        } else {
                            Ok((key, generation))
                        }
                    })
                    .await
            }
        }
    };
    let bounded = async {
        match cancel_after {
            Some(after) => tokio::time::timeout(after, call).await.ok(),
            None => Some(call.await),
        }
    };
    let Ok(answer) = tokio::time::timeout(HANG, bounded).await else {
        return Err(format!("a call of key {key} hung"));
    };
    let Some(answer) = answer else {
        soak.tally.cancelled.fetch_add(1, SeqCst);
        return Ok(());
    };
    check(soak, key, floor, &answer)
}

/// The answer belongs to `key` and is not older than the generation floor seen at the start.
fn check(
    soak: &Soak,
    key: u64,
    floor: u64,
    answer: &Result<Stamp, CacheError<Stamp>>,
) -> Result<(), String> {
    let tally = &soak.tally;
    let stamp = match answer {
        Ok(stamp) => {
            tally.values.fetch_add(1, SeqCst);
            *stamp
        }
        Err(CacheError::Failed(stamp)) => {
            tally.failures.fetch_add(1, SeqCst);
            **stamp
        }
        Err(CacheError::Cached { error, .. }) => {
            tally.cached_errors.fetch_add(1, SeqCst);
            **error
        }
        Err(CacheError::Panicked { message }) => {
            tally.panics.fetch_add(1, SeqCst);
            if *message != format!("injected panic {key}") {
                return Err(format!("key {key} answered a foreign panic: {message}"));
            }
            return Ok(());
        }
        Err(other) => return Err(format!("unknown answer {other:?}")),
    };
    if stamp.0 != key {
        return Err(format!(
            "key {key} answered {answer:?}, computed for another key"
        ));
    }
    if stamp.1 < floor {
        return Err(format!(
            "key {key} answered {answer:?}, older than generation {floor} invalidated before the call"
        ));
    }
    Ok(())
}

/// One task: random operations until the deadline.
async fn worker(soak: Arc<Soak>, seed: u64, until: Instant) -> Result<(), String> {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    while Instant::now() < until {
        match rng.next(40) {
            0..=2 => {
                soak.tally.invalidations.fetch_add(1, SeqCst);
                soak.generations.invalidate(&soak.cache, rng.next(KEYS));
            }
            3 => {
                soak.tally.clears.fetch_add(1, SeqCst);
                soak.generations.clear(&soak.cache);
            }
            _ => one_call(&soak, &mut rng).await?,
        }
    }
    Ok(())
}

/// Checks the gauges until told to stop; returns how many checks it made.
async fn watcher(soak: Arc<Soak>, stop: Arc<AtomicBool>) -> Result<u64, String> {
    let mut checks = 0;
    while !stop.load(SeqCst) {
        let stats = soak.cache.stats();
        // `filter` rather than a let chain: the MSRV (1.85) predates let chains.
        if let Some(capacity) = soak
            .capacity
            .filter(|&capacity| stats.total_entries > capacity)
        {
            return Err(format!(
                "{} entries over capacity {capacity}",
                stats.total_entries
            ));
        }
        if stats.error_entries > stats.total_entries.max(KEYS) || stats.total_entries > KEYS {
            return Err(format!("gauges out of range: {stats:?}"));
        }
        checks += 1;
        tokio::task::yield_now().await;
    }
    Ok(checks)
}

/// Runs the workers and the watcher until `until`, failing on the first broken check.
async fn drive(soak: Arc<Soak>, until: Instant) {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watcher(Arc::clone(&soak), Arc::clone(&stop)));
    let workers: Vec<_> = (0..TASKS)
        .map(|seed| tokio::spawn(worker(Arc::clone(&soak), seed, until)))
        .collect();
    for worker in workers {
        let finished = tokio::time::timeout_at((until + HANG).into(), worker).await;
        finished
            .expect("a worker hung")
            .expect("a worker panicked")
            .unwrap();
    }
    stop.store(true, SeqCst);
    let checks = watcher.await.expect("the watcher panicked").unwrap();
    soak.tally.capacity_checks.store(checks, SeqCst);
}

fn soak_secs(default_ms: u64) -> Duration {
    std::env::var("SMARTCACHE_SOAK_SECS")
        .ok()
        .and_then(|secs| secs.parse::<f64>().ok())
        .map_or(Duration::from_millis(default_ms), Duration::from_secs_f64)
}

/// Runs the soak on a cache built by `build` for `length`, then checks the figures.
fn soak(name: &str, capacity: Option<u64>, cache: Cache, length: Duration) {
    reliability_support::quiet_expected_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let soak = Arc::new(Soak {
        cache,
        capacity,
        generations: Generations::new(),
        tally: Tally::default(),
    });
    let started = Instant::now();
    // The runtime runs on its own thread, watched from this one: should its threads ever
    // deadlock (so that no timer inside it fires), the test still fails instead of hanging.
    let (done, finished) = std::sync::mpsc::channel();
    let driver = Arc::clone(&soak);
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(drive(driver, started + length));
        }));
        let _ = done.send(outcome);
    });
    match finished.recv_timeout(length + 2 * HANG) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(RecvTimeoutError::Timeout) => panic!("the soak hung: {}", soak.cache.stats()),
        Err(RecvTimeoutError::Disconnected) => panic!("the soak's thread died"),
    }
    let stats = soak.cache.stats();
    let tally = &soak.tally;
    eprintln!("soak {name}: {:?} {tally:?}\n  {stats}", started.elapsed());
    assert_eq!(stats.in_flight, 0, "no computation is left running");
    assert_eq!(
        stats.requests(),
        stats.hits + stats.misses + stats.cached_error_hits
    );
    assert_eq!(
        stats.requests(),
        tally.calls.load(SeqCst),
        "each call counted once"
    );
    assert!(stats.coalesced <= stats.misses);
    // A waiter that gave up on a stuck flight (`wait_timeout`) joined first, so it counts as
    // coalesced, and then led a flight of its own.
    let leads = if name.contains("wait timeout") {
        stats.misses
    } else {
        stats.misses - stats.coalesced
    };
    assert!(stats.loads() <= leads, "a load for each flight at most");
    assert!(stats.loads() <= tally.computations.load(SeqCst));
    let answered = tally.values.load(SeqCst)
        + tally.failures.load(SeqCst)
        + tally.cached_errors.load(SeqCst)
        + tally.panics.load(SeqCst);
    assert_eq!(
        answered + tally.cancelled.load(SeqCst),
        tally.calls.load(SeqCst)
    );
    assert!(tally.capacity_checks.load(SeqCst) > 0, "the watcher ran");
    soak.cache.clear();
    let stats = soak.cache.stats();
    assert_eq!(
        (stats.total_entries, stats.error_entries),
        (0, 0),
        "the gauges drifted"
    );
}

#[test]
fn churn_with_capacity_ttl_and_retry() {
    let cache = Cache::builder()
        .max_capacity(6)
        .time_to_live(Duration::from_millis(5))
        .retry_interval(Duration::from_millis(2))
        .build();
    soak(
        "capacity 6, ttl 5ms, retry 2ms",
        Some(6),
        cache,
        soak_secs(1_500),
    );
}

#[test]
fn churn_with_capacity_one() {
    let cache = Cache::builder()
        .max_capacity(1)
        .retry_interval(Duration::from_millis(1))
        .build();
    soak("capacity 1, retry 1ms", Some(1), cache, soak_secs(1_000));
}

#[test]
fn churn_with_wait_timeouts_and_quick_abandons() {
    // Waiters give up on caller-driven flights after 300 µs and run their own; task-driven
    // flights whose callers were all cancelled are dropped 200 µs later.
    let cache = Cache::builder()
        .max_capacity(4)
        .retry_interval(Duration::from_millis(1))
        .wait_timeout(Duration::from_micros(300))
        .abandon_after(Duration::from_micros(200))
        .build();
    soak(
        "capacity 4, retry 1ms, wait timeout 300us, abandon after 200us",
        Some(4),
        cache,
        soak_secs(1_000),
    );
}

#[test]
fn churn_unbounded_with_long_retry() {
    let cache = Cache::builder()
        .retry_interval(Duration::from_secs(300))
        .build();
    soak("unbounded, retry 5m", None, cache, soak_secs(1_000));
}

/// Found reading `store.rs`, then by the long soak; pinned down here with plain threads
/// hammering one slot. A removal took its entry out of the map *before* uncounting it, so
/// for a moment `entries` counted an entry that was gone:
/// - an insertion making room then could find the eviction queue empty while `entries` said
///   "full", and hit a `debug_assert!`: a panic in `prime`, or a flight answering a
///   `Panicked` that no computation caused (fixed first by dropping the assertion);
/// - `total_entries` could read capacity + 1 (fixed in `store.rs`: removals uncount under
///   the shard lock, before the entry goes; see `forget_if`).
#[test]
fn regression_removals_racing_insertions_keep_the_gauge_within_capacity() {
    let cache: Arc<AsyncSmartCache<u64, u64>> =
        Arc::new(AsyncSmartCache::builder().max_capacity(1).build());
    let until = Instant::now() + soak_secs(2_000).min(Duration::from_secs(5));
    let watcher = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            let mut highest = 0;
            while Instant::now() < until {
                highest = highest.max(cache.stats().total_entries);
            }
            highest
        })
    };
    let threads: Vec<_> = (0..3u64)
        .map(|thread| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let (mut round, mut primes) = (0u64, 0u64);
                while Instant::now() < until {
                    round += 1;
                    let key = (round + thread) % 2;
                    if round % 2 == 0 {
                        cache.invalidate(&key);
                    } else {
                        cache.prime(key, round);
                        primes += 1;
                    }
                }
                primes
            })
        })
        .collect();
    let primes: u64 = threads
        .into_iter()
        .map(|thread| thread.join().expect("no insertion panics"))
        .sum();
    assert_eq!(
        watcher.join().unwrap(),
        1,
        "total_entries read above the capacity"
    );
    let stats = cache.stats();
    assert_eq!(stats.primes, primes);
    assert!(stats.total_entries <= 1, "{stats}");
    cache.clear();
    assert_eq!(cache.stats().total_entries, 0, "the gauge drifted");
}
