//! How many entries the peers hold while they replay a hit-ratio workload, against their
//! capacity, and smartcache's hit ratio when it may hold as many as moka does on average.
//!
//! ```text
//! cargo run --release -p smartcache-benches --bin occupancy -- [quick] [seeds=N] [workload prefix...]
//! ```
//!
//! moka admits new entries in batches (once 64 reads or writes are logged), so between two
//! batches it holds entries beyond its capacity; `quick_cache` and smartcache never do. The
//! counts are taken every 1/4000 of the requests over the second half of each replay (the
//! cache full). The last column replays smartcache at its capacity plus moka's mean excess
//! (rounded), averaged over `seeds` replays ([`SEEDS`](smartcache_benches::ratio::SEEDS) unless told), next to moka's hit ratio at its
//! own capacity: what the hit-ratio table's gap to moka is worth at equal occupancy.

use smartcache_benches::{FastHasher, ratio};

fn main() {
    let args = ratio::Args::from_env();
    let seeds = args.seeds.unwrap_or(ratio::SEEDS);
    println!(
        "| workload | capacity | moka held, mean / max | quick_cache held, mean / max | \
         moka hit % | smartcache hit % at capacity + moka's excess |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for workload in ratio::selected_workloads(args.quick, &args.only) {
        let ([moka_held, quick_held], samples) = held(&workload);
        let samples = samples.max(1);
        let mean = |(sum, _): (u64, u64)| sum as f64 / samples as f64;
        // moka's mean occupancy, rounded, less its capacity.
        let excess = ((moka_held.0 + samples / 2) / samples).saturating_sub(workload.capacity);
        let mut roomier = workload.clone();
        roomier.capacity += excess;
        let mean_ratio = |contestant: &str, workload: &ratio::Workload| {
            (0..seeds)
                .map(|_| ratio::hit_ratio(contestant, workload))
                .sum::<f64>()
                / seeds as f64
        };
        let ours = mean_ratio("smartcache", &roomier);
        let theirs = mean_ratio("moka", &workload);
        println!(
            "| {} | {} | {:.1} / {} | {:.1} / {} | {theirs:.2} | {ours:.2} (+{excess}) |",
            workload.name,
            workload.capacity,
            mean(moka_held),
            moka_held.1,
            mean(quick_held),
            quick_held.1
        );
    }
}

/// Entries held by moka and by `quick_cache` over the second half of a replay: the sum and the
/// most of each one's counts, and how many counts were taken.
fn held(workload: &ratio::Workload) -> ([(u64, u64); 2], u64) {
    let capacity = workload.capacity;
    let moka = moka::future::Cache::<u64, u64>::builder()
        .max_capacity(capacity)
        .build_with_hasher(FastHasher::default());
    let quick = quick_cache::sync::Cache::<u64, u64>::new(
        usize::try_from(capacity).expect("a small capacity"),
    );
    let step = (workload.keys.len() / 4000).max(1);
    let half = workload.keys.len() / 2;
    let mut counts = [(0_u64, 0_u64); 2];
    let mut samples = 0_u64;
    let runtime = smartcache_benches::current_thread_runtime();
    runtime.block_on(async {
        for (i, &key) in workload.keys.iter().enumerate() {
            moka.get_with(key, async { key }).await;
            let _ = quick.get_or_insert_with(&key, || Ok::<_, ()>(key));
            if i >= half && i % step == 0 {
                // `iter` walks the map: entries not yet through admission count too.
                let now = [moka.iter().count() as u64, quick.len() as u64];
                for (count, now) in counts.iter_mut().zip(now) {
                    *count = (count.0 + now, count.1.max(now));
                }
                samples += 1;
            }
        }
    });
    (counts, samples)
}
