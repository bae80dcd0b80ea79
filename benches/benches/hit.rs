//! Hit latency on one task: every contestant answers from a warm cache of 1,024 keys, cycled
//! through in order, on a current-thread runtime. Keys are `u64`, then `String`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use smartcache_benches::{
    Contestant, Key, Scenario, SmartCache, Work, build, current_thread_runtime, fill,
    for_each_contestant,
};

const WARM_KEYS: u64 = 1_024;

struct HitLatency<'a, 'c, K> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    runtime: tokio::runtime::Runtime,
    keys: Vec<K>,
}

/// Times `iters` hits through `get`, cycling through `keys`.
fn time_hits<K: Key>(
    runtime: &tokio::runtime::Runtime,
    keys: &[K],
    iters: u64,
    mut get: impl AsyncFnMut(&K) -> u64,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for (_, key) in (0..iters).zip(keys.iter().cycle()) {
            black_box(get(black_box(key)).await);
        }
        start.elapsed()
    })
}

impl<K: Key> Scenario<K> for HitLatency<'_, '_, K> {
    fn run<C: Contestant<K>>(&mut self) {
        let contestant: C = build(&self.runtime, Work::instant());
        self.runtime.block_on(fill(&contestant, WARM_KEYS));
        let (runtime, keys) = (&self.runtime, &self.keys);
        self.group.bench_function(C::NAME, |b| {
            b.iter_custom(|iters| {
                time_hits(runtime, keys, iters, async |key| contestant.get(key).await)
            });
        });
    }
}

/// smartcache's `get(&Q)`, which never computes: the cost of the store alone, with a
/// borrowed key (no `String` clone).
fn smartcache_plain_get<K: Key>(scenario: &mut HitLatency<'_, '_, K>) {
    let contestant: SmartCache<K> = build(&scenario.runtime, Work::instant());
    scenario.runtime.block_on(fill(&contestant, WARM_KEYS));
    let cache = contestant.inner();
    let (runtime, keys) = (&scenario.runtime, &scenario.keys);
    scenario.group.bench_function("smartcache get(&key)", |b| {
        b.iter_custom(|iters| {
            time_hits(runtime, keys, iters, async |key| {
                cache.get(key).unwrap_or(0)
            })
        });
    });
}

fn hit_latency<K: Key>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group(name);
    let mut scenario = HitLatency {
        group: &mut group,
        runtime: current_thread_runtime(),
        keys: (0..WARM_KEYS).map(K::nth).collect(),
    };
    for_each_contestant(&mut scenario);
    smartcache_plain_get(&mut scenario);
    group.finish();
}

fn benches(c: &mut Criterion) {
    hit_latency::<u64>(c, "hit_u64");
    hit_latency::<String>(c, "hit_string");
}

criterion_group! {
    name = hit;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = benches
}
criterion_main!(hit);
