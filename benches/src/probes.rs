//! Worst single call under housekeeping: each probe times every call of a scenario where a
//! naive store would do O(n) upkeep in one caller's path, and reports the slowest call in
//! CPU time of the calling thread (`max_call_cpu_us`, the figure the target is about), the
//! slowest in wall time (which adds any preemption by other processes), and the mean.
//!
//! | probe | scenario |
//! |---|---|
//! | `evict_hot_set` | capacity N, full; every entry read, then one miss (5 rounds) |
//! | `first_insert_after_reads` | the first of those misses |
//! | `churn` | capacity N, full; 2N misses on new keys (evictions, queue upkeep) |
//! | `expire_values` | N values past their TTL; writes of new keys until they are gone |
//! | `expire_errors` | N cached errors past their retry window; writes until they are gone |
//! | `clear` | `clear()` of N entries |
//! | `expire_values (moka)` | the same with moka's `sync::Cache`, as many writes as smartcache's probe made |
//! | `noise_floor` | no cache work: as many calls as `churn`, each spinning for `churn`'s mean call time |
//!
//! `noise_floor` is the machine's own worst call: on a virtual machine the thread's CPU clock
//! also counts time the host took the core away, or interrupts served meanwhile, so one call
//! of a fixed few microseconds can read a millisecond. A probe's worst call is read against
//! it; `calls_over_1ms_cpu` counts the calls past the target, in each probe and in the floor.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use smartcache::AsyncSmartCache;

use crate::Row;

type Cache = AsyncSmartCache<u64, u64, Infallible>;
type FallibleCache = AsyncSmartCache<u64, u64, String>;

/// The slowest and the mean call of a probe.
#[derive(Debug, Default, Clone, Copy)]
struct Calls {
    max: Duration,
    max_cpu: Duration,
    total: Duration,
    count: u32,
    /// Calls that took over a millisecond of CPU time.
    over_1ms: u32,
}

impl Calls {
    fn time<T>(&mut self, call: impl FnOnce() -> T) -> T {
        let (start, cpu) = (Instant::now(), cpu_time::ThreadTime::now());
        let answer = call();
        let (took, took_cpu) = (start.elapsed(), cpu.elapsed());
        self.max = self.max.max(took);
        self.max_cpu = self.max_cpu.max(took_cpu);
        self.over_1ms += u32::from(took_cpu > Duration::from_millis(1));
        self.total += took;
        self.count += 1;
        answer
    }

    fn row(self, probe: &str, entries: u64) -> Row {
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        Row {
            contestant: format!("{probe} @{entries}"),
            figures: vec![
                ("max_call_cpu_us".to_owned(), micros(self.max_cpu)),
                ("max_call_us".to_owned(), micros(self.max)),
                (
                    "mean_call_us".to_owned(),
                    micros(self.total) / f64::from(self.count.max(1)),
                ),
                ("calls".to_owned(), f64::from(self.count)),
                ("calls_over_1ms_cpu".to_owned(), f64::from(self.over_1ms)),
            ],
        }
    }
}

/// Every probe at `entries` entries.
#[must_use]
pub fn run_all(entries: u64) -> Vec<Row> {
    let runtime = crate::current_thread_runtime();
    let miss = |cache: &Cache, key: u64| {
        runtime.block_on(async {
            let value = cache.get_or_compute(key, || async move { Ok(key) }).await;
            std::hint::black_box(value.ok());
        });
    };
    let mut rows = Vec::new();

    let cache = Cache::builder().max_capacity(entries).build();
    for key in 0..entries {
        cache.prime(key, key);
    }
    let (mut first, mut hot) = (Calls::default(), Calls::default());
    for round in 0..5 {
        for key in 0..entries {
            std::hint::black_box(cache.get(&key));
        }
        let key = entries + round;
        if round == 0 {
            first.time(|| miss(&cache, key));
        } else {
            hot.time(|| miss(&cache, key));
        }
    }
    rows.push(first.row("first_insert_after_reads", entries));
    rows.push(hot.row("evict_hot_set", entries));

    let mut churn = Calls::default();
    for key in 0..2 * entries {
        churn.time(|| miss(&cache, 10 * entries + key));
    }
    rows.push(churn.row("churn", entries));
    let mut clear = Calls::default();
    clear.time(|| cache.clear());
    rows.push(clear.row("clear", entries));
    drop(cache);

    let ttl = Duration::from_millis(500);
    let cache = Cache::builder().time_to_live(ttl).build();
    for key in 0..entries {
        cache.prime(key, key);
    }
    std::thread::sleep(ttl + Duration::from_millis(50));
    let mut expire = Calls::default();
    let mut key = entries;
    while cache.entry_count() > key - entries + 1 {
        expire.time(|| cache.prime(key, key));
        key += 1;
    }
    rows.push(expire.row("expire_values", entries));
    drop(cache);
    rows.push(moka_expire_values(entries, ttl, expire.count).row("expire_values (moka)", entries));

    let cache = FallibleCache::builder()
        .retry_interval(ttl)
        .max_cached_errors(entries)
        .build();
    runtime.block_on(async {
        for key in 0..entries {
            let failed = cache
                .get_or_compute(key, || async { Err("down".to_owned()) })
                .await;
            std::hint::black_box(failed.is_err());
        }
    });
    std::thread::sleep(ttl + Duration::from_millis(50));
    let mut expire = Calls::default();
    let mut key = entries;
    while cache.stats().error_entries > 0 {
        expire.time(|| cache.prime(key, key));
        key += 1;
    }
    rows.push(expire.row("expire_errors", entries));
    drop(cache);
    // Last: five seconds of spinning before a probe would leave its memory idle, which on a
    // virtual machine makes touching it again slower (see docs/benchmarks.md).
    rows.push(noise_floor(churn).row("noise_floor", entries));
    rows
}

/// As many calls as `like` made, each spinning (no cache work, no allocation) for its mean
/// call time.
fn noise_floor(like: Calls) -> Calls {
    let spin = like.total / like.count.max(1);
    let mut floor = Calls::default();
    for _ in 0..like.count {
        floor.time(|| {
            let start = Instant::now();
            while start.elapsed() < spin {
                std::hint::spin_loop();
            }
        });
    }
    floor
}

/// `expire_values` on moka (`sync::Cache` with the same time to live): `entries` values
/// stored and their time to live let pass, then `writes` writes of new keys, each timed.
fn moka_expire_values(entries: u64, ttl: Duration, writes: u32) -> Calls {
    let cache = moka::sync::Cache::<u64, u64>::builder()
        .time_to_live(ttl)
        .build();
    for key in 0..entries {
        cache.insert(key, key);
    }
    cache.run_pending_tasks(); // its admission batches done, so the probe times expiry
    std::thread::sleep(ttl + Duration::from_millis(50));
    let mut expire = Calls::default();
    for key in entries..entries + u64::from(writes) {
        expire.time(|| cache.insert(key, key));
    }
    expire
}
