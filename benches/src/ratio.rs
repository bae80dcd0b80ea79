//! Hit ratio with a capacity: a key stream replayed through each contestant's get-or-compute
//! path at a fixed capacity, counting computations (misses).
//!
//! Contestants: smartcache (`get_or_compute`, adaptive W-TinyLFU), `quick_cache`
//! (`sync::Cache::get_or_insert_with`, its CLOCK-Pro-like policy), moka (`future::Cache::get_with`,
//! `TinyLFU`) and an exact LRU written here. Streams: the shared public traces
//! (`../shared/traces/*.xz`, or `$SMARTCACHE_TRACES`) and synthetic ones (Zipf, Zipf with
//! scans, loops from slightly to three times larger than the capacity, a shifting working set),
//! and more of the traces' families ([`family_workloads`](crate::families::family_workloads)).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::BufReader;
use std::path::PathBuf;

use smartcache::AsyncSmartCache;

use crate::{FastHasher, Rng, Row, publish, zipf_stream};

/// The contestants, in table order.
pub const CONTESTANTS: [&str; 4] = ["smartcache", "quick_cache", "moka", "lru"];

/// A named key stream and the capacity it is replayed at.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `trace@capacity`.
    pub name: String,
    /// The keys, in request order.
    pub keys: Vec<u64>,
    /// The capacity of every contestant.
    pub capacity: u64,
}

/// Where the shared traces are.
#[must_use]
pub fn traces_dir() -> PathBuf {
    std::env::var_os("SMARTCACHE_TRACES").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces")),
        PathBuf::from,
    )
}

/// The keys of an xz-compressed trace (one signed 64-bit integer a line); `None` if the file
/// is missing or unreadable.
#[must_use]
pub fn read_trace(file: &str) -> Option<Vec<u64>> {
    let path = traces_dir().join(file);
    let mut reader = BufReader::new(std::fs::File::open(path).ok()?);
    let mut text = Vec::new();
    lzma_rs::xz_decompress(&mut reader, &mut text).ok()?;
    let text = String::from_utf8(text).ok()?;
    let keys = text
        .lines()
        .filter_map(|line| line.trim().parse::<i64>().ok())
        .map(|key| u64::from_ne_bytes(key.to_ne_bytes()))
        .collect();
    Some(keys)
}

/// The shared traces at the capacities usually reported (those whose file is present), plus
/// a second, larger capacity for each.
#[must_use]
pub fn trace_workloads(quick: bool) -> Vec<Workload> {
    let traces: &[(&str, &[u64])] = if quick {
        &[("gli", &[1000])]
    } else {
        &[
            ("gli", &[1000, 2000]),
            ("multi2", &[568, 1500]),
            ("sprite", &[707, 1500]),
            ("web07", &[2048, 8192]),
            ("scarab-recs", &[100_000, 25_000]),
        ]
    };
    let mut workloads = Vec::new();
    for (trace, capacities) in traces {
        let Some(keys) = read_trace(&format!("{trace}.txt.xz")) else {
            eprintln!("trace {trace} not found under {}", traces_dir().display());
            continue;
        };
        for &capacity in *capacities {
            workloads.push(Workload {
                name: format!("{trace}@{capacity}"),
                keys: keys.clone(),
                capacity,
            });
        }
    }
    workloads
}

/// Synthetic streams: Zipf 0.8 / 1.0 / 1.2 over 100,000 keys at 1% capacity, Zipf 0.9 with
/// a scan of 5,000 new keys every 10,000 requests, loops of 1,010, 1,100 and 3,000 keys at
/// capacity 1,000,
/// and a working set of 2,000 keys that shifts by one key every 10 requests.
#[must_use]
pub fn synthetic_workloads(quick: bool) -> Vec<Workload> {
    let len = if quick { 20_000 } else { 400_000 };
    let keys = 100_000;
    let mut workloads: Vec<Workload> = [0.8, 1.0, 1.2]
        .into_iter()
        .map(|exponent| Workload {
            name: format!("zipf-{exponent:.1}@1000"),
            keys: zipf_stream(keys, exponent, 0.0, len, 7),
            capacity: 1000,
        })
        .collect();
    let mut scans = Vec::with_capacity(len * 3 / 2);
    let mut next_scan_key = 1 << 40;
    for (i, key) in zipf_stream(keys, 0.9, 0.0, len, 11).into_iter().enumerate() {
        scans.push(key);
        if i % 10_000 == 9_999 {
            scans.extend(next_scan_key..next_scan_key + 5_000);
            next_scan_key += 5_000;
        }
    }
    workloads.push(Workload {
        name: "zipf-0.9+scans@1000".to_owned(),
        keys: scans,
        capacity: 1000,
    });
    for cycle in [1010, 1100, 3000] {
        workloads.push(Workload {
            name: format!("loop-{cycle}@1000"),
            keys: (0..len as u64).map(|i| i % cycle).collect(),
            capacity: 1000,
        });
    }
    let mut rng = Rng::new(5);
    workloads.push(Workload {
        name: "shifting-2000@1000".to_owned(),
        keys: (0..len as u64)
            .map(|i| i / 10 + rng.next_u64() % 2000)
            .collect(),
        capacity: 1000,
    });
    workloads
}

/// The hit ratio (percent) of `contestant` on `workload`.
///
/// # Panics
///
/// On an unknown contestant name.
#[must_use]
pub fn hit_ratio(contestant: &str, workload: &Workload) -> f64 {
    let misses = match contestant {
        "smartcache" => smartcache_misses(workload),
        "quick_cache" => quick_cache_misses(workload),
        "moka" => moka_misses(workload),
        "lru" => lru_misses(workload),
        other => panic!("unknown contestant {other}"),
    };
    let requests = workload.keys.len() as f64;
    100.0 * (requests - misses as f64) / requests
}

fn smartcache_misses(workload: &Workload) -> u64 {
    let cache: AsyncSmartCache<u64, u64, Infallible> = AsyncSmartCache::builder()
        .max_capacity(workload.capacity)
        .build();
    crate::current_thread_runtime().block_on(async {
        for &key in &workload.keys {
            let value = cache.get_or_compute(key, || async move { Ok(key) }).await;
            std::hint::black_box(value.ok());
        }
    });
    cache.stats().load_successes
}

fn quick_cache_misses(workload: &Workload) -> u64 {
    let capacity = usize::try_from(workload.capacity).expect("a small capacity");
    let cache = quick_cache::sync::Cache::<u64, u64>::new(capacity);
    let mut misses = 0;
    for &key in &workload.keys {
        let value = cache.get_or_insert_with(&key, || {
            misses += 1;
            Ok::<_, Infallible>(key)
        });
        std::hint::black_box(value.ok());
    }
    misses
}

fn moka_misses(workload: &Workload) -> u64 {
    let cache = moka::future::Cache::<u64, u64>::builder()
        .max_capacity(workload.capacity)
        .build_with_hasher(FastHasher::default());
    let mut misses = 0;
    crate::current_thread_runtime().block_on(async {
        for &key in &workload.keys {
            let value = cache
                .get_with(key, async {
                    misses += 1;
                    key
                })
                .await;
            std::hint::black_box(value);
        }
    });
    misses
}

/// An exact LRU: a map from key to its last use, and the keys ordered by last use.
fn lru_misses(workload: &Workload) -> u64 {
    let capacity = usize::try_from(workload.capacity).expect("a small capacity");
    let mut last_use: HashMap<u64, u64, FastHasher> = HashMap::default();
    let mut by_use: BTreeMap<u64, u64> = BTreeMap::new();
    let mut misses = 0;
    for (now, &key) in (0_u64..).zip(&workload.keys) {
        if let Some(used) = last_use.insert(key, now) {
            by_use.remove(&used);
        } else {
            misses += 1;
            if last_use.len() > capacity
                && let Some((_, oldest)) = by_use.pop_first()
            {
                last_use.remove(&oldest);
            }
        }
        by_use.insert(now, key);
    }
    misses
}

/// How many times [`run`] replays each workload by default: each replay builds fresh caches,
/// whose hashers draw fresh seeds, and the hit ratios of the hashed policies move by a point
/// or more between seeds on some workloads (loops, multi2), more than the margins the targets
/// are judged by. Quick mode replays once.
pub const SEEDS: usize = 5;

/// The command line of the replay binaries (`hit-ratio`, `occupancy`): `quick` for the short
/// set (also on in quick mode), `seeds=N` for the number of replays averaged, and workload
/// name prefixes.
#[derive(Debug, Default)]
pub struct Args {
    /// The short set of workloads.
    pub quick: bool,
    /// Replays averaged, if given (positive).
    pub seeds: Option<usize>,
    /// Workload name prefixes; empty for all.
    pub only: Vec<String>,
}

impl Args {
    /// This process's arguments; exits with status 2 and a message on a bad `seeds=N`.
    #[must_use]
    pub fn from_env() -> Self {
        let mut args = Self {
            quick: crate::quick_mode(),
            ..Self::default()
        };
        for arg in std::env::args().skip(1) {
            if arg == "quick" {
                args.quick = true;
            } else if let Some(count) = arg.strip_prefix("seeds=") {
                match count.parse::<usize>() {
                    Ok(count) if count > 0 => args.seeds = Some(count),
                    _ => {
                        eprintln!("seeds=N wants a positive number, not `{count}`");
                        std::process::exit(2);
                    }
                }
            } else {
                args.only.push(arg);
            }
        }
        args
    }
}

/// The traces, synthetic streams and family workloads (the short set if `quick`) whose names start with one of
/// `only`, or all of them.
#[must_use]
pub fn selected_workloads(quick: bool, only: &[String]) -> Vec<Workload> {
    let mut workloads = trace_workloads(quick);
    workloads.extend(synthetic_workloads(quick));
    workloads.extend(crate::families::family_workloads(quick));
    workloads.retain(|w| only.is_empty() || only.iter().any(|o| w.name.starts_with(o.as_str())));
    workloads
}

/// Replays every workload (those whose name starts with one of `only`, if any) through every
/// contestant `seeds` times (fresh caches each time, so fresh hash seeds; `None`: [`SEEDS`],
/// once in quick mode); prints a markdown table of the mean hit ratios with the gap of
/// smartcache's mean to the best peer's, and the range of the per-replay gaps; publishes the
/// means as the one-shot scenario `hit-ratio`.
pub fn run(quick: bool, only: &[String], seeds: Option<usize>) {
    let seeds = seeds.unwrap_or(if quick { 1 } else { SEEDS }).max(1);
    let workloads = selected_workloads(quick, only);
    if seeds == 1 {
        println!("One replay each.\n");
    } else {
        println!("Means of {seeds} replays each (fresh hash seeds).\n");
    }
    println!(
        "| workload | requests | {} | gap to best peer | gap range |",
        CONTESTANTS.join(" | ")
    );
    println!("|---|---:|{}---:|---:|", "---:|".repeat(CONTESTANTS.len()));
    let mut rows: Vec<Row> = CONTESTANTS
        .iter()
        .map(|c| Row {
            contestant: (*c).to_owned(),
            figures: Vec::new(),
        })
        .collect();
    let mut within = 0;
    for workload in &workloads {
        let replays: Vec<Vec<f64>> = (0..seeds)
            .map(|_| CONTESTANTS.iter().map(|c| hit_ratio(c, workload)).collect())
            .collect();
        let means: Vec<f64> = (0..CONTESTANTS.len())
            .map(|i| replays.iter().map(|ratios| ratios[i]).sum::<f64>() / seeds as f64)
            .collect();
        let gaps: Vec<f64> = replays
            .iter()
            .map(|ratios| gap_to_best_peer(ratios))
            .collect();
        let (low, high) = gaps.iter().fold((f64::MAX, f64::MIN), |(low, high), &gap| {
            (low.min(gap), high.max(gap))
        });
        let cells: Vec<String> = means.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "| {} | {} | {} | {:+.2} | {low:+.2} to {high:+.2} |",
            workload.name,
            workload.keys.len(),
            cells.join(" | "),
            gap_to_best_peer(&means),
        );
        for (row, ratio) in rows.iter_mut().zip(&means) {
            row.figures.push((format!("{}_pct", workload.name), *ratio));
        }
        within += usize::from(gap_to_best_peer(&means) >= -0.5);
    }
    let count = workloads.len().max(1) as f64;
    let averages: Vec<String> = (rows.iter())
        .map(|row| {
            let mean = row.figures.iter().map(|(_, ratio)| ratio).sum::<f64>() / count;
            format!("{} {mean:.2}", row.contestant)
        })
        .collect();
    println!(
        "\nWithin 0.5 points of the best peer (or ahead) on {within} of {} workloads; mean hit \
         ratios: {}.",
        workloads.len(),
        averages.join(", ")
    );
    publish("hit-ratio", &rows);
}

/// smartcache's hit ratio (the first) minus the best of the peers' (the others).
fn gap_to_best_peer(ratios: &[f64]) -> f64 {
    ratios[0] - ratios[1..].iter().copied().fold(f64::MIN, f64::max)
}
