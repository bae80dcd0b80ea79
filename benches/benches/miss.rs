//! Miss cost with a trivial computation: each call is for a key never seen, on one task, so
//! each one runs the miss path of the contestant (flight bookkeeping, insertion, growth).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use smartcache_benches::{
    Contestant, Key, Scenario, Work, build, current_thread_runtime, for_each_contestant,
};

struct MissCost<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    runtime: tokio::runtime::Runtime,
}

impl Scenario<u64> for MissCost<'_, '_> {
    fn run<C: Contestant<u64>>(&mut self) {
        let runtime = &self.runtime;
        self.group.bench_function(C::NAME, |b| {
            b.iter_custom(|iters| {
                // A fresh, empty cache per batch; building and dropping it are not timed.
                let contestant: C = build(runtime, Work::instant());
                let took = runtime.block_on(async {
                    let start = Instant::now();
                    for key in 0..iters {
                        black_box(contestant.get(&u64::nth(key)).await);
                    }
                    start.elapsed()
                });
                drop(contestant);
                took
            });
        });
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("miss_u64");
    for_each_contestant(&mut MissCost {
        group: &mut group,
        runtime: current_thread_runtime(),
    });
    group.finish();
}

criterion_group! {
    name = miss;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(miss);
