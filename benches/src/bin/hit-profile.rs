//! The loop of the hit benchmark (`benches/hit.rs`: a warm cache of 1,024 keys cycled through
//! in order, one task on a current-thread runtime) for a profiler: no criterion, a fixed count
//! of hits, so that two counts differenced give the instructions of one hit.
//!
//! ```text
//! cargo build --release -p smartcache-benches --bin hit-profile
//! valgrind --tool=callgrind target/release/hit-profile smartcache 2000000   # and 1000000
//! ```
//!
//! Arguments: the form (`smartcache` and `dashmap`, the contestants of `hit_u64`; `direct`,
//! `get_or_compute` called in the loop itself; `ref`, `get_or_compute_ref`; `get`;
//! `bounded`, `get_or_compute_ref` with a capacity; `macro`, a `#[smart_cached]` fn of a
//! `u64`; `macro-str`, one of a `&str`; `direct-str`, `get_or_compute_ref` of a `&str` on a
//! `String` cache), then the number of hits. Prints the wall time per hit (meaningless
//! under valgrind).

use std::hint::black_box;
use std::time::Instant;

use smartcache::AsyncSmartCache;
use smartcache_benches::{
    Contestant, FastHasher, Key, RawDashMap, SmartCache, Work, current_thread_runtime, fill,
    through_macro, through_macro_str,
};

const WARM_KEYS: u64 = 1_024;

/// `hits` calls of `get`, cycling through `keys`, after one warming pass.
fn time_hits<K>(keys: &[K], hits: u64, mut get: impl AsyncFnMut(&K) -> u64) {
    current_thread_runtime().block_on(async {
        for key in keys {
            black_box(get(key).await);
        }
        let start = Instant::now();
        for (_, key) in (0..hits).zip(keys.iter().cycle()) {
            black_box(get(black_box(key)).await);
        }
        let took = start.elapsed();
        println!("{:.1} ns per hit", took.as_nanos() as f64 / hits as f64);
    });
}

fn contestant<C: Contestant<u64>>(keys: &[u64], hits: u64) {
    let contestant = current_thread_runtime().block_on(async {
        let contestant = C::new(Work::instant()).await;
        fill(&contestant, WARM_KEYS).await;
        contestant
    });
    time_hits(keys, hits, async |key| contestant.get(key).await);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let form = args.next().unwrap_or_else(|| "smartcache".to_owned());
    let hits = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keys: Vec<u64> = (0..WARM_KEYS).collect();
    let names: Vec<String> = keys.iter().copied().map(String::nth).collect();
    let plain: AsyncSmartCache<u64, u64> = AsyncSmartCache::new();
    let bounded: AsyncSmartCache<u64, u64> = AsyncSmartCache::builder()
        .max_capacity(2 * WARM_KEYS)
        .build();
    let by_name: AsyncSmartCache<String, u64> = AsyncSmartCache::new();
    match form.as_str() {
        "smartcache" => contestant::<SmartCache<u64>>(&keys, hits),
        "dashmap" => contestant::<RawDashMap<u64, FastHasher>>(&keys, hits),
        "direct" => time_hits(&keys, hits, async |key| {
            let answer = plain.get_or_compute(*key, || async { Ok(key.value()) });
            answer.await.unwrap_or(0)
        }),
        "ref" => time_hits(&keys, hits, async |key| {
            let answer = plain.get_or_compute_ref(key, || async { Ok(key.value()) });
            answer.await.unwrap_or(0)
        }),
        "get" => time_hits(&keys, hits, async |key| {
            if let Some(value) = plain.get(key) {
                return value;
            }
            let answer = plain.get_or_compute(*key, || async { Ok(key.value()) });
            answer.await.unwrap_or(0)
        }),
        "bounded" => time_hits(&keys, hits, async |key| {
            let answer = bounded.get_or_compute_ref(key, || async { Ok(key.value()) });
            answer.await.unwrap_or(0)
        }),
        "macro" => time_hits(&keys, hits, async |key| through_macro(*key).await),
        "macro-str" => time_hits(&names, hits, async |name| through_macro_str(name).await),
        "direct-str" => time_hits(&names, hits, async |name| {
            let answer = by_name.get_or_compute_ref(name.as_str(), || async { Ok(name.value()) });
            answer.await.unwrap_or(0)
        }),
        other => eprintln!("unknown form {other}; see the file's docs"),
    }
}
