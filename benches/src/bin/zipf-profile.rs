//! One contestant replaying the Zipf workload of the throughput benchmark, for a profiler
//! (`valgrind --tool=callgrind`): no criterion, a fixed request count.
//!
//! ```text
//! cargo build --release -p smartcache-benches --bin zipf-profile
//! valgrind --tool=callgrind target/release/zipf-profile smartcache 0.05 2000000
//! ```
//!
//! Arguments: contestant (`smartcache`, `dashmap`, `quick_cache`, `moka`; also
//! `smartcache-get`, smartcache's `get` with a `get_or_compute` on a miss, and
//! `smartcache-bounded`, `get_or_compute` with a capacity of twice the stored keys, so that
//! every stored key stays and a hit is a hit; `smartcache-10k` and `quick_cache-10k`, the
//! throughput benchmark's bounded contestants, capacity 10,000), miss share,
//! requests, tasks (0, the default: one task on a current-thread runtime; otherwise that many
//! tasks on a 2-worker runtime). Prints the wall time per request (meaningless under
//! valgrind).

use std::sync::Arc;
use std::time::Instant;

use smartcache::AsyncSmartCache;

use smartcache_benches::{
    BoundedQuickCache, BoundedSmartCache, Contestant, FastHasher, Moka, QuickCache, RawDashMap,
    SmartCache, Work, current_thread_runtime, fill, multi_thread_runtime, replay, zipf_stream,
};

const STORED_KEYS: u64 = 100_000;

/// smartcache's `get` (a hit's cost without the get-or-compute future); a miss computes
/// through `get_or_compute`.
struct PlainGet(SmartCache<u64>);

impl Contestant<u64> for PlainGet {
    const NAME: &'static str = "smartcache get";

    async fn new(work: Arc<Work>) -> Self {
        Self(SmartCache::new(work).await)
    }

    async fn get(&self, key: &u64) -> u64 {
        match self.0.inner().get(key) {
            Some(value) => value,
            None => self.0.get(key).await,
        }
    }
}

/// smartcache's `get_or_compute` with a capacity that holds every stored key.
struct Bounded(SmartCache<u64>);

impl Contestant<u64> for Bounded {
    const NAME: &'static str = "smartcache bounded";

    async fn new(work: Arc<Work>) -> Self {
        let cache = AsyncSmartCache::builder()
            .max_capacity(2 * STORED_KEYS)
            .build();
        Self(SmartCache::with_cache(cache, work))
    }

    async fn get(&self, key: &u64) -> u64 {
        self.0.get(key).await
    }
}

fn profile<C: Contestant<u64>>(miss_share: f64, requests: u64, tasks: u64) {
    let runtime = if tasks == 0 {
        current_thread_runtime()
    } else {
        multi_thread_runtime(2)
    };
    runtime.block_on(async {
        let contestant = Arc::new(C::new(Work::instant()).await);
        fill(contestant.as_ref(), STORED_KEYS).await;
        contestant.settle().await;
        let start = Instant::now();
        if tasks == 0 {
            let stream = zipf_stream(STORED_KEYS, 1.0, miss_share, 1 << 16, 17);
            replay(contestant.as_ref(), &stream, 0, requests).await;
        } else {
            let replays: Vec<_> = (0..tasks)
                .map(|task| {
                    let contestant = Arc::clone(&contestant);
                    let stream = zipf_stream(STORED_KEYS, 1.0, miss_share, 1 << 16, 17 + task);
                    tokio::spawn(async move {
                        replay(contestant.as_ref(), &stream, task, requests / tasks).await;
                    })
                })
                .collect();
            for replay in replays {
                replay.await.expect("a replaying task");
            }
        }
        let took = start.elapsed();
        println!(
            "{}: {:.1} ns per request",
            C::NAME,
            took.as_nanos() as f64 / requests as f64
        );
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let contestant = args.next().unwrap_or_else(|| "smartcache".to_owned());
    let miss_share = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.05);
    let requests = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let tasks = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    match contestant.as_str() {
        "smartcache" => profile::<SmartCache<u64>>(miss_share, requests, tasks),
        "dashmap" => profile::<RawDashMap<u64, FastHasher>>(miss_share, requests, tasks),
        "quick_cache" => profile::<QuickCache<u64>>(miss_share, requests, tasks),
        "moka" => profile::<Moka<u64>>(miss_share, requests, tasks),
        "smartcache-get" => profile::<PlainGet>(miss_share, requests, tasks),
        "smartcache-bounded" => profile::<Bounded>(miss_share, requests, tasks),
        "smartcache-10k" => profile::<BoundedSmartCache<u64>>(miss_share, requests, tasks),
        "quick_cache-10k" => profile::<BoundedQuickCache<u64>>(miss_share, requests, tasks),
        other => eprintln!("unknown contestant {other}; see the file's docs"),
    }
}
