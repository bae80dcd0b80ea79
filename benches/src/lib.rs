//! Shared pieces of the smartcache benchmarks: the contestants behind one trait, the work
//! they memoize, the Zipf key streams, and where results are written.
//!
//! Every contestant answers the same question, "the value for this key, computing it with
//! [`Work`] if it is missing", through its own idiomatic get-or-compute API:
//!
//! | contestant | call on every request | single-flight |
//! |---|---|---|
//! | [`SmartCache`] | `AsyncSmartCache::get_or_compute` | yes |
//! | [`RawDashMap`] (the floor) | `DashMap::get` + clone, `insert` on a miss | no |
//! | [`Moka`] | `moka::future::Cache::get_with_by_ref` | yes |
//! | [`QuickCache`] | `quick_cache::sync::Cache::get_or_insert_async` | yes |
//! | [`Cached`] | a `#[cached(sync_writes = "by_key")] async fn` | yes (bucketed key locks) |
//! | [`Naive`] | `Mutex<HashMap>`: look, unlock, compute, lock, insert | no |
//!
//! All are unbounded, without TTL, except `quick_cache`, which is always bounded: it gets a
//! capacity ([`QUICK_CACHE_CAPACITY`]) that no scenario reaches.

// The contestant wrappers hold caches whose `Debug` needs bounds the structs do not carry;
// nothing here is ever debug-printed.
#![allow(missing_debug_implementations)]
// A benchmark harness: a failure to set up (a runtime, a results file) ends the run.
#![allow(clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cached::Cached as _;
use cached::proc_macro::cached;
use dashmap::DashMap;
use smartcache::{AsyncSmartCache, smart_cached};

pub mod families;
pub mod probes;
pub mod ratio;

/// The hasher smartcache uses for its maps; the floor and moka use it too.
pub type FastHasher = foldhash::fast::RandomState;

/// The std default hasher (SipHash-1-3), for the second floor figure.
pub type StdHasher = std::collections::hash_map::RandomState;

/// `quick_cache` is always bounded; this bound is never reached by any scenario.
pub const QUICK_CACHE_CAPACITY: usize = 1 << 24;

/// What every contestant runs on a miss: counts itself, optionally sleeps, and derives the
/// value from the key.
#[derive(Debug, Default)]
pub struct Work {
    runs: AtomicU64,
    delay_nanos: AtomicU64,
}

impl Work {
    /// Work that answers at once.
    #[must_use]
    pub fn instant() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// From now on, every computation sleeps `delay` (tokio's timer) before answering.
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.delay_nanos.store(nanos, Relaxed);
    }

    /// How many computations have started.
    #[must_use]
    pub fn runs(&self) -> u64 {
        self.runs.load(Relaxed)
    }

    /// One computation.
    pub async fn compute<K: Key>(&self, key: &K) -> u64 {
        self.runs.fetch_add(1, Relaxed);
        let delay = self.delay_nanos.load(Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_nanos(delay)).await;
        }
        key.value()
    }
}

/// A key type the benchmarks use: `u64`, or a `String` such as `"user:00000042"`.
///
/// `cached` generates one static cache per function, so each key type has its own
/// `#[cached]` function, reached through this trait.
pub trait Key: Hash + Eq + Clone + Debug + Send + Sync + 'static {
    /// The `i`-th key of a key space.
    fn nth(i: u64) -> Self;

    /// The value a computation returns for this key.
    fn value(&self) -> u64;

    /// The value through this key type's `#[cached]` function.
    fn through_cached(&self, work: &Work) -> impl Future<Output = u64> + Send;

    /// Empties this key type's `#[cached]` static.
    fn clear_cached() -> impl Future<Output = ()> + Send;
}

impl Key for u64 {
    fn nth(i: u64) -> Self {
        i
    }

    fn value(&self) -> u64 {
        self ^ 0x5555_5555
    }

    fn through_cached(&self, work: &Work) -> impl Future<Output = u64> + Send {
        cached_u64(*self, work)
    }

    async fn clear_cached() {
        CACHED_U64.write().await.cache_clear();
    }
}

impl Key for String {
    fn nth(i: u64) -> Self {
        format!("user:{i:08}")
    }

    fn value(&self) -> u64 {
        self.len() as u64
    }

    fn through_cached(&self, work: &Work) -> impl Future<Output = u64> + Send {
        cached_string(self.clone(), work)
    }

    async fn clear_cached() {
        CACHED_STRING.write().await.cache_clear();
    }
}

#[cached(key = "u64", convert = "{ key }", sync_writes = "by_key")]
async fn cached_u64(key: u64, work: &Work) -> u64 {
    work.compute(&key).await
}

#[cached(key = "String", convert = "{ key.clone() }", sync_writes = "by_key")]
async fn cached_string(key: String, work: &Work) -> u64 {
    work.compute(&key).await
}

/// A memoizing cache under test.
pub trait Contestant<K: Key>: Send + Sync + Sized + 'static {
    /// The name in tables and plots.
    const NAME: &'static str;

    /// An empty cache whose misses run `work`.
    ///
    /// NOTE: [`Cached`] stores in a `static`, so only one `Cached` per key type may be in use
    /// at a time; the benchmarks run contestants one after the other.
    fn new(work: Arc<Work>) -> impl Future<Output = Self> + Send;

    /// The value for `key`: a stored one, or a computed one (then stored).
    fn get(&self, key: &K) -> impl Future<Output = u64> + Send;

    /// Finishes deferred bookkeeping (moka applies writes in batches), before memory is
    /// measured.
    fn settle(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// smartcache's `AsyncSmartCache::get_or_compute`.
pub struct SmartCache<K> {
    cache: AsyncSmartCache<K, u64, Infallible>,
    work: Arc<Work>,
}

impl<K: Key> SmartCache<K> {
    /// The contestant over a cache built otherwise (a capacity, say).
    #[must_use]
    pub fn with_cache(cache: AsyncSmartCache<K, u64, Infallible>, work: Arc<Work>) -> Self {
        Self { cache, work }
    }

    /// The cache itself, for calls outside the common trait.
    #[must_use]
    pub fn inner(&self) -> &AsyncSmartCache<K, u64, Infallible> {
        &self.cache
    }
}

impl<K: Key> Contestant<K> for SmartCache<K> {
    const NAME: &'static str = "smartcache";

    async fn new(work: Arc<Work>) -> Self {
        Self {
            cache: AsyncSmartCache::new(),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        // The API takes the key by value: a `String` key is cloned on every call.
        let answer = self
            .cache
            .get_or_compute(key.clone(), || async { Ok(self.work.compute(key).await) })
            .await;
        answer.expect("the computation cannot fail")
    }
}

/// The hit benchmarks' `#[smart_cached]` function of a `u64` (its generated cache is a
/// static: every caller shares it).
#[smart_cached]
pub async fn through_macro(key: u64) -> u64 {
    key.value()
}

/// The hit benchmarks' `#[smart_cached]` function of a `&str` argument.
#[smart_cached]
pub async fn through_macro_str(key: &str) -> u64 {
    key.len() as u64
}

/// The floor: a `DashMap` get and clone; on a miss, compute and insert (no single-flight).
pub struct RawDashMap<K, S> {
    map: DashMap<K, u64, S>,
    work: Arc<Work>,
}

/// Names a hasher in contestant names.
pub trait HasherName: BuildHasher + Default + Clone + Send + Sync + 'static {
    /// The floor contestant's name with this hasher.
    const FLOOR_NAME: &'static str;
}

impl HasherName for FastHasher {
    const FLOOR_NAME: &'static str = "dashmap (foldhash)";
}

impl HasherName for StdHasher {
    const FLOOR_NAME: &'static str = "dashmap (SipHash)";
}

impl<K: Key, S: HasherName> Contestant<K> for RawDashMap<K, S> {
    const NAME: &'static str = S::FLOOR_NAME;

    async fn new(work: Arc<Work>) -> Self {
        Self {
            map: DashMap::with_hasher(S::default()),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        if let Some(value) = self.map.get(key) {
            return *value;
        }
        let value = self.work.compute(key).await;
        self.map.insert(key.clone(), value);
        value
    }
}

/// moka's `future::Cache::get_with_by_ref`, unbounded, with smartcache's hasher.
pub struct Moka<K> {
    cache: moka::future::Cache<K, u64, FastHasher>,
    work: Arc<Work>,
}

impl<K: Key> Contestant<K> for Moka<K> {
    const NAME: &'static str = "moka";

    async fn new(work: Arc<Work>) -> Self {
        Self {
            cache: moka::future::Cache::builder().build_with_hasher(FastHasher::default()),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        self.cache
            .get_with_by_ref(key, self.work.compute(key))
            .await
    }

    async fn settle(&self) {
        self.cache.run_pending_tasks().await;
    }
}

/// `quick_cache`'s `sync::Cache::get_or_insert_async` (its default hasher is foldhash).
pub struct QuickCache<K> {
    cache: quick_cache::sync::Cache<K, u64>,
    work: Arc<Work>,
}

impl<K: Key> Contestant<K> for QuickCache<K> {
    const NAME: &'static str = "quick_cache";

    async fn new(work: Arc<Work>) -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(QUICK_CACHE_CAPACITY),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        let computed = async { Ok::<_, Infallible>(self.work.compute(key).await) };
        match self.cache.get_or_insert_async(key, computed).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// The capacity of the bounded contestants ([`BoundedSmartCache`], [`BoundedMoka`],
/// [`BoundedQuickCache`]): a tenth of the throughput benchmark's key space.
pub const BOUNDED_CAPACITY: u64 = 10_000;

/// smartcache's `get_or_compute` with a capacity of [`BOUNDED_CAPACITY`].
pub struct BoundedSmartCache<K> {
    cache: AsyncSmartCache<K, u64, Infallible>,
    work: Arc<Work>,
}

impl<K: Key> Contestant<K> for BoundedSmartCache<K> {
    const NAME: &'static str = "smartcache (bounded)";

    async fn new(work: Arc<Work>) -> Self {
        Self {
            cache: AsyncSmartCache::builder()
                .max_capacity(BOUNDED_CAPACITY)
                .build(),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        let answer = self
            .cache
            .get_or_compute_ref(key, || async { Ok(self.work.compute(key).await) })
            .await;
        match answer {
            Ok(value) => value,
            Err(error) => panic!("an infallible computation failed: {error}"),
        }
    }
}

/// moka's `future::Cache::get_with_by_ref` with a capacity of [`BOUNDED_CAPACITY`].
pub struct BoundedMoka<K> {
    cache: moka::future::Cache<K, u64, FastHasher>,
    work: Arc<Work>,
}

impl<K: Key> Contestant<K> for BoundedMoka<K> {
    const NAME: &'static str = "moka (bounded)";

    async fn new(work: Arc<Work>) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(BOUNDED_CAPACITY)
                .build_with_hasher(FastHasher::default()),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        self.cache
            .get_with_by_ref(key, self.work.compute(key))
            .await
    }

    async fn settle(&self) {
        self.cache.run_pending_tasks().await;
    }
}

/// `quick_cache`'s `sync::Cache::get_or_insert_async` with a capacity of
/// [`BOUNDED_CAPACITY`].
pub struct BoundedQuickCache<K> {
    cache: quick_cache::sync::Cache<K, u64>,
    work: Arc<Work>,
}

impl<K: Key> Contestant<K> for BoundedQuickCache<K> {
    const NAME: &'static str = "quick_cache (bounded)";

    async fn new(work: Arc<Work>) -> Self {
        let capacity = usize::try_from(BOUNDED_CAPACITY).expect("a small capacity");
        Self {
            cache: quick_cache::sync::Cache::new(capacity),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        let computed = async { Ok::<_, Infallible>(self.work.compute(key).await) };
        match self.cache.get_or_insert_async(key, computed).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// cached 4's `#[cached(sync_writes = "by_key")] async fn` (an unbounded store).
#[derive(Debug)]
pub struct Cached {
    work: Arc<Work>,
}

impl<K: Key> Contestant<K> for Cached {
    const NAME: &'static str = "cached";

    async fn new(work: Arc<Work>) -> Self {
        K::clear_cached().await;
        Self { work }
    }

    async fn get(&self, key: &K) -> u64 {
        key.through_cached(&self.work).await
    }
}

/// The "legacy" cache: a `Mutex<HashMap>` (std hasher), unlocked while computing, without
/// single-flight.
pub struct Naive<K> {
    map: Mutex<HashMap<K, u64>>,
    work: Arc<Work>,
}

impl<K: Key> Naive<K> {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Key> Contestant<K> for Naive<K> {
    const NAME: &'static str = "naive Mutex<HashMap>";

    async fn new(work: Arc<Work>) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            work,
        }
    }

    async fn get(&self, key: &K) -> u64 {
        let stored = self.map().get(key).copied();
        if let Some(value) = stored {
            return value;
        }
        let value = self.work.compute(key).await;
        self.map().insert(key.clone(), value);
        value
    }
}

/// Runs one scenario for every contestant.
pub trait Scenario<K: Key> {
    /// Runs the scenario for `C`.
    fn run<C: Contestant<K>>(&mut self);
}

/// Runs `scenario` for each contestant, smartcache first, the floors next.
pub fn for_each_contestant<K: Key>(scenario: &mut impl Scenario<K>) {
    scenario.run::<SmartCache<K>>();
    scenario.run::<RawDashMap<K, FastHasher>>();
    scenario.run::<RawDashMap<K, StdHasher>>();
    scenario.run::<Moka<K>>();
    scenario.run::<QuickCache<K>>();
    scenario.run::<Cached>();
    scenario.run::<Naive<K>>();
}

/// A fresh contestant, built on `runtime`.
pub fn build<K: Key, C: Contestant<K>>(runtime: &tokio::runtime::Runtime, work: Arc<Work>) -> C {
    runtime.block_on(C::new(work))
}

/// Stores keys `0..count`.
pub async fn fill<K: Key, C: Contestant<K>>(contestant: &C, count: u64) {
    for i in 0..count {
        contestant.get(&K::nth(i)).await;
    }
}

/// A current-thread tokio runtime with timers.
#[must_use]
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// A multi-thread tokio runtime with `workers` worker threads and timers.
#[must_use]
pub fn multi_thread_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// A seeded xorshift64* generator: deterministic streams, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; any seed works (zero is replaced).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A stream of key indices in `0..keys`, Zipf-distributed with exponent `exponent` (rank 0
/// the most frequent), with a share `miss_share` of [`MISS`] markers for keys never seen.
#[must_use]
pub fn zipf_stream(keys: u64, exponent: f64, miss_share: f64, len: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(usize::try_from(keys).unwrap_or(0));
    let mut total = 0.0;
    for rank in 1..=keys {
        total += 1.0 / (rank as f64).powf(exponent);
        cdf.push(total);
    }
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| {
            if rng.next_f64() < miss_share {
                return MISS;
            }
            let target = rng.next_f64() * total;
            cdf.partition_point(|&c| c < target) as u64
        })
        .collect()
}

/// The marker of a miss in a [`zipf_stream`].
pub const MISS: u64 = u64::MAX;

/// Replays `ops` requests of a [`zipf_stream`] (cycling through it) as task number `task`: a
/// [`MISS`] marker becomes a key of its own, never asked for before.
pub async fn replay<C: Contestant<u64>>(contestant: &C, stream: &[u64], task: u64, ops: u64) {
    for (op, &key) in (0..ops).zip(stream.iter().cycle()) {
        let key = if key == MISS {
            (1 << 62) | (task << 40) | op
        } else {
            key
        };
        std::hint::black_box(contestant.get(&key).await);
    }
}

/// Where the suite writes its results: criterion's directory, found as criterion finds it
/// (`$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the workspace's
/// `target/criterion`).
#[must_use]
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/criterion")),
        |dir| PathBuf::from(dir).join("criterion"),
    )
}

/// The file a one-shot scenario (not measured by criterion) writes its rows to, under a
/// criterion directory.
#[must_use]
pub fn one_shot_file(criterion_dir: &Path, scenario: &str) -> PathBuf {
    criterion_dir
        .join("smartcache-one-shot")
        .join(format!("{scenario}.json"))
}

/// One row of a one-shot scenario: a contestant and its named figures.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// The contestant.
    pub contestant: String,
    /// Figure name to value, in the unit the name states (`_ms`, `_bytes`, ...).
    pub figures: Vec<(String, f64)>,
}

impl Row {
    /// A figure by name.
    #[must_use]
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// Prints a one-shot scenario's rows as a table and, unless in [`quick_mode`], writes them
/// (JSON) for the report.
///
/// # Panics
///
/// If the results directory cannot be written.
pub fn publish(scenario: &str, rows: &[Row]) {
    if quick_mode() {
        println!("\n{scenario} (quick mode: not written)");
    } else {
        let path = one_shot_file(&criterion_dir(), scenario);
        std::fs::create_dir_all(path.parent().expect("a parent directory")).expect("results dir");
        let json = serde_json::to_string_pretty(rows).expect("rows serialize");
        std::fs::write(&path, json).expect("results file");
        println!("\n{scenario} (written to {})", path.display());
    }
    for row in rows {
        let figures: Vec<String> = row
            .figures
            .iter()
            .map(|(name, value)| format!("{name} = {value:.3}"))
            .collect();
        println!("  {:<22} {}", row.contestant, figures.join(", "));
    }
}

/// Whether the suite runs in its quick mode (`SMARTCACHE_BENCH_QUICK=1`, or criterion's
/// `--test`): fewer repetitions and smaller sizes, for CI.
#[must_use]
pub fn quick_mode() -> bool {
    std::env::var_os("SMARTCACHE_BENCH_QUICK").is_some_and(|v| v != "0")
        || std::env::args().any(|arg| arg == "--test")
}
