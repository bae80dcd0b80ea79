//! Concurrency scenarios, measured in real wall time on a multi-thread runtime (2 workers),
//! each run a few times on a fresh cache; the table shows the median run (and the worst).
//!
//! - **herd**: 10,000 tasks ask for one cold key whose computation takes 10 ms.
//! - **hit during a computation**: key A computes for 100 ms; meanwhile 64 stored keys are
//!   read one by one, each timed.
//! - **cold keys in parallel**: 100 tasks ask for 100 distinct cold keys, 10 ms each.
//!
//! These are one-shot measurements, not criterion benchmarks: the rows are printed and
//! written as JSON next to criterion's results (see `smartcache_benches::publish`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use smartcache_benches::{
    Contestant, Row, Scenario, Work, for_each_contestant, multi_thread_runtime, publish, quick_mode,
};

const WORKERS: usize = 2;

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The median and the maximum of some figures.
fn median_max(mut figures: Vec<f64>) -> (f64, f64) {
    figures.sort_by(f64::total_cmp);
    let median = figures.get(figures.len() / 2).copied().unwrap_or(f64::NAN);
    (median, figures.last().copied().unwrap_or(f64::NAN))
}

/// Every scenario's rows, one per contestant.
struct Concurrency {
    runtime: tokio::runtime::Runtime,
    runs: usize,
    herd: Vec<Row>,
    hit_during: Vec<Row>,
    cold_keys: Vec<Row>,
}

const HERD_CALLERS: u64 = 10_000;
const HERD_COMPUTE: Duration = Duration::from_millis(10);

/// One herd: wall time from the first spawn to the last answer, and computations run.
async fn herd<C: Contestant<u64>>() -> (Duration, u64) {
    let work = Work::instant();
    work.set_delay(HERD_COMPUTE);
    let contestant = Arc::new(C::new(Arc::clone(&work)).await);
    let start = Instant::now();
    let callers: Vec<_> = (0..HERD_CALLERS)
        .map(|_| {
            let contestant = Arc::clone(&contestant);
            tokio::spawn(async move { contestant.get(&7).await })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a herd caller");
    }
    (start.elapsed(), work.runs())
}

const SLOW_COMPUTE: Duration = Duration::from_millis(100);
const READ_KEYS: u64 = 64;

/// Reads of 64 stored keys while another key computes for 100 ms: the latency of each read.
///
/// Whenever the slow computation has finished, a new one starts (on a new key) before the
/// next read, so every read overlaps a computation.
async fn hits_during_computation<C: Contestant<u64>>() -> Vec<Duration> {
    let work = Work::instant();
    let contestant = Arc::new(C::new(Arc::clone(&work)).await);
    smartcache_benches::fill(contestant.as_ref(), READ_KEYS).await;
    work.set_delay(SLOW_COMPUTE);
    let mut slow = None;
    let mut slow_key = 1_000_000;
    let mut latencies = Vec::new();
    for key in 0..READ_KEYS {
        if slow
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            slow_key += 1;
            let runs = work.runs();
            let contestant = Arc::clone(&contestant);
            slow = Some(tokio::spawn(async move { contestant.get(&slow_key).await }));
            // Until the slow computation has started (or, should it not compute at all,
            // has answered).
            while work.runs() == runs && slow.as_ref().is_some_and(|slow| !slow.is_finished()) {
                tokio::task::yield_now().await;
            }
        }
        let start = Instant::now();
        std::hint::black_box(contestant.get(&key).await);
        latencies.push(start.elapsed());
    }
    // NOTE: wait for the last slow computation: `cached` stores in a static, so a flight left
    // running would answer the next run's slow call from the cache.
    if let Some(slow) = slow {
        slow.await.expect("the slow computation");
    }
    latencies
}

const COLD_KEYS: u64 = 100;
const COLD_COMPUTE: Duration = Duration::from_millis(10);

/// 100 tasks, 100 distinct cold keys, 10 ms each: wall time until all have answered.
async fn cold_keys<C: Contestant<u64>>() -> Duration {
    let work = Work::instant();
    work.set_delay(COLD_COMPUTE);
    let contestant = Arc::new(C::new(work).await);
    let start = Instant::now();
    let callers: Vec<_> = (0..COLD_KEYS)
        .map(|key| {
            let contestant = Arc::clone(&contestant);
            tokio::spawn(async move { contestant.get(&key).await })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a cold-key caller");
    }
    start.elapsed()
}

impl Scenario<u64> for Concurrency {
    fn run<C: Contestant<u64>>(&mut self) {
        let name = C::NAME.to_owned();
        eprintln!("{name}: herd");

        let herds: Vec<_> = (0..self.runs)
            .map(|_| self.runtime.block_on(herd::<C>()))
            .collect();
        let (wall, worst) = median_max(herds.iter().map(|(took, _)| millis(*took)).collect());
        let computations = herds.iter().map(|(_, runs)| *runs).max().unwrap_or(0);
        self.herd.push(Row {
            contestant: name.clone(),
            figures: vec![
                ("wall_ms".into(), wall),
                ("worst_wall_ms".into(), worst),
                ("max_computations".into(), computations as f64),
            ],
        });

        eprintln!("{}: hits during a computation", C::NAME);
        let mut reads = Vec::new();
        for _ in 0..self.runs {
            reads.extend(self.runtime.block_on(hits_during_computation::<C>()));
        }
        let blocked = reads
            .iter()
            .filter(|took| **took >= Duration::from_millis(1))
            .count();
        let total = reads.len();
        let (median, worst) =
            median_max(reads.into_iter().map(|took| millis(took) * 1e3).collect());
        self.hit_during.push(Row {
            contestant: name.clone(),
            figures: vec![
                ("median_us".into(), median),
                ("worst_us".into(), worst),
                ("reads_over_1ms".into(), blocked as f64),
                ("reads".into(), total as f64),
            ],
        });

        eprintln!("{}: cold keys", C::NAME);
        let walls = (0..self.runs)
            .map(|_| millis(self.runtime.block_on(cold_keys::<C>())))
            .collect();
        let (wall, worst) = median_max(walls);
        self.cold_keys.push(Row {
            contestant: name,
            figures: vec![("wall_ms".into(), wall), ("worst_wall_ms".into(), worst)],
        });
    }
}

fn main() {
    let mut scenarios = Concurrency {
        runtime: multi_thread_runtime(WORKERS),
        runs: if quick_mode() { 1 } else { 7 },
        herd: Vec::new(),
        hit_during: Vec::new(),
        cold_keys: Vec::new(),
    };
    for_each_contestant(&mut scenarios);
    publish("herd", &scenarios.herd);
    publish("hit_during_computation", &scenarios.hit_during);
    publish("cold_keys", &scenarios.cold_keys);
}
