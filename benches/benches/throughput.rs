//! Throughput on a multi-thread runtime (2 workers) with Zipf-distributed `u64` keys: 95% of
//! requests hit one of 100,000 stored keys (exponent 1.0, so a few keys are very hot), 5%
//! ask for a key never seen (a miss with a trivial computation). 1, 2, 4 and 8 tasks share
//! the work; every contestant replays the same key streams. A second group replays the same
//! streams with no misses, to tell the hit path from the miss path. A third runs the bounded
//! caches (capacity 10,000) on the first group's streams, against the unbounded floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use smartcache_benches::{
    BoundedMoka, BoundedQuickCache, BoundedSmartCache, Contestant, FastHasher, RawDashMap,
    Scenario, Work, build, fill, for_each_contestant, multi_thread_runtime, quick_mode, replay,
    zipf_stream,
};

const WORKERS: usize = 2;
const TASK_COUNTS: [usize; 4] = [1, 2, 4, 8];
const STREAM_LEN: usize = 1 << 16;
const ZIPF_EXPONENT: f64 = 1.0;
const MISS_SHARE: f64 = 0.05;
/// Requests per criterion iteration, shared out among the tasks: large enough (about a
/// millisecond for the fastest contestant) that spawning and joining the tasks is noise.
const BATCH: u64 = 1 << 16;

struct ZipfThroughput<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    workload: Workload,
}

struct Workload {
    runtime: tokio::runtime::Runtime,
    /// One key stream per task.
    streams: Arc<Vec<Vec<u64>>>,
    stored_keys: u64,
}

impl Workload {
    /// A warm contestant (not timed), then the time for `iters` batches of requests spread
    /// over `tasks`.
    fn time<C: Contestant<u64>>(&self, tasks: usize, iters: u64) -> Duration {
        let contestant: Arc<C> = Arc::new(build(&self.runtime, Work::instant()));
        self.runtime.block_on(async {
            fill(contestant.as_ref(), self.stored_keys).await;
            contestant.settle().await; // moka: apply the fill's writes now, not while timed
        });
        let per_task = (iters * BATCH).div_ceil(tasks as u64);
        let took = self.runtime.block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|task| {
                    let (contestant, streams) =
                        (Arc::clone(&contestant), Arc::clone(&self.streams));
                    tokio::spawn(async move {
                        replay(contestant.as_ref(), &streams[task], task as u64, per_task).await;
                    })
                })
                .collect();
            for handle in handles {
                handle.await.expect("a replaying task");
            }
            start.elapsed()
        });
        drop(contestant);
        took
    }
}

impl Scenario<u64> for ZipfThroughput<'_, '_> {
    fn run<C: Contestant<u64>>(&mut self) {
        for tasks in TASK_COUNTS {
            let workload = &self.workload;
            self.group
                .bench_function(BenchmarkId::new(C::NAME, tasks), |b| {
                    b.iter_custom(|iters| workload.time::<C>(tasks, iters));
                });
        }
    }
}

/// The contestants of the bounded group: the capacity-bounded caches, and the unbounded floor.
fn for_each_bounded(scenario: &mut ZipfThroughput<'_, '_>) {
    scenario.run::<BoundedSmartCache<u64>>();
    scenario.run::<RawDashMap<u64, FastHasher>>();
    scenario.run::<BoundedMoka<u64>>();
    scenario.run::<BoundedQuickCache<u64>>();
}

/// One group: every contestant (or the bounded ones) at every task count, with
/// `miss_share` of the requests for keys never seen.
fn zipf_group(c: &mut Criterion, name: &str, miss_share: f64) {
    zipf_group_of(c, name, miss_share, |scenario| {
        for_each_contestant(scenario);
    });
}

fn zipf_group_of(
    c: &mut Criterion,
    name: &str,
    miss_share: f64,
    contestants: impl FnOnce(&mut ZipfThroughput<'_, '_>),
) {
    let stored_keys = if quick_mode() { 10_000 } else { 100_000 };
    let streams = (0..*TASK_COUNTS.iter().max().unwrap_or(&1))
        .map(|task| {
            zipf_stream(
                stored_keys,
                ZIPF_EXPONENT,
                miss_share,
                STREAM_LEN,
                17 + task as u64,
            )
        })
        .collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH));
    // Equal samples: each iteration is long, and each sample builds a fresh cache.
    group.sampling_mode(SamplingMode::Flat);
    contestants(&mut ZipfThroughput {
        group: &mut group,
        workload: Workload {
            runtime: multi_thread_runtime(WORKERS),
            streams: Arc::new(streams),
            stored_keys,
        },
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    zipf_group(c, "zipf_throughput", MISS_SHARE);
    // The same streams without misses: the hit path alone, under contention on hot keys.
    zipf_group(c, "zipf_throughput_all_hits", 0.0);
    // With a capacity of a tenth of the stored keys: the eviction policy at work on every
    // miss (the key space's tail misses), and its bookkeeping on every hit.
    zipf_group_of(c, "zipf_throughput_bounded", MISS_SHARE, for_each_bounded);
}

criterion_group! {
    name = throughput;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = benches
}
criterion_main!(throughput);
