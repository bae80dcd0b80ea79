//! Hit latency on one task: every contestant answers from a warm cache of 1,024 keys, cycled
//! through in order, on a current-thread runtime. Keys are `u64`, then `String`; smartcache
//! also by a borrowed key (`get_or_compute_ref`, no `String` clone) and with a capacity. Last,
//! a hit through a `#[smart_cached]` function, and through `#[smart_cached]` methods (the
//! attribute on the method alone), against the same hit through `get_or_compute` (and, for
//! the `&str` argument, through the `_ref` forms the attribute calls).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use smartcache::{AsyncSmartCache, smart_cached};
use smartcache_benches::{
    Contestant, Key, Scenario, SmartCache, Work, build, current_thread_runtime, fill,
    for_each_contestant, through_macro, through_macro_str,
};

const WARM_KEYS: u64 = 1_024;

struct HitLatency<'a, 'c, K> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    runtime: tokio::runtime::Runtime,
    keys: Vec<K>,
}

/// Times `iters` hits through `get`, cycling through `keys`.
fn time_hits<K>(
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

/// smartcache's `get_or_compute_ref(&key)`: a get-or-compute hit by a borrowed key, so a
/// `String` key is not cloned (the entry point the attribute uses for `&str` arguments).
fn smartcache_borrowed<K: Key>(scenario: &mut HitLatency<'_, '_, K>) {
    let contestant: SmartCache<K> = build(&scenario.runtime, Work::instant());
    scenario.runtime.block_on(fill(&contestant, WARM_KEYS));
    let cache = contestant.inner();
    let (runtime, keys) = (&scenario.runtime, &scenario.keys);
    scenario
        .group
        .bench_function("smartcache get_or_compute_ref(&key)", |b| {
            b.iter_custom(|iters| {
                time_hits(runtime, keys, iters, async |key| {
                    let answer = cache
                        .get_or_compute_ref(key, || async { Ok(key.value()) })
                        .await;
                    answer.unwrap_or(0)
                })
            });
        });
}

/// smartcache with a capacity (the eviction policy's hit bookkeeping on every hit).
fn smartcache_bounded<K: Key>(scenario: &mut HitLatency<'_, '_, K>) {
    let cache: AsyncSmartCache<K, u64> = AsyncSmartCache::builder()
        .max_capacity(2 * WARM_KEYS)
        .build();
    let (runtime, keys) = (&scenario.runtime, &scenario.keys);
    runtime.block_on(async {
        for key in keys {
            let _ = cache
                .get_or_compute_ref(key, || async { Ok(key.value()) })
                .await;
        }
    });
    scenario
        .group
        .bench_function("smartcache bounded get_or_compute_ref(&key)", |b| {
            b.iter_custom(|iters| {
                time_hits(runtime, keys, iters, async |key| {
                    let answer = cache
                        .get_or_compute_ref(key, || async { Ok(key.value()) })
                        .await;
                    answer.unwrap_or(0)
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
    smartcache_borrowed(&mut scenario);
    smartcache_bounded(&mut scenario);
    group.finish();
}

/// A service whose cached methods carry the attribute alone (no `#[smart_cached]` on the
/// `impl` block).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Sku(u64);

impl Sku {
    /// The receiver is part of the key: the cache type names `Self`, so its static is
    /// type-erased (one downcast per call).
    #[smart_cached]
    async fn price(&self) -> u64 {
        self.0.value()
    }

    /// The receiver is skipped: a typed static, as for a free fn.
    #[smart_cached(skip(self))]
    async fn price_of(&self, key: u64) -> u64 {
        key.value()
    }
}

/// A hit through a `#[smart_cached]` function against the same hit through a direct
/// `get_or_compute` call on an `AsyncSmartCache` of the same types.
fn macro_vs_direct(c: &mut Criterion) {
    let runtime = current_thread_runtime();
    let keys: Vec<u64> = (0..WARM_KEYS).collect();
    let direct: AsyncSmartCache<u64, u64> = AsyncSmartCache::new();
    let direct_get = async |key: &u64| {
        let answer = direct
            .get_or_compute(*key, || async { Ok(key.value()) })
            .await;
        answer.unwrap_or(0)
    };
    let mut group = c.benchmark_group("hit_macro");
    let skus: Vec<Sku> = keys.iter().copied().map(Sku).collect();
    runtime.block_on(async {
        for (key, sku) in keys.iter().zip(&skus) {
            direct_get(key).await;
            through_macro(*key).await;
            sku.price().await;
            sku.price_of(*key).await;
        }
    });
    group.bench_function("direct get_or_compute", |b| {
        b.iter_custom(|iters| time_hits(&runtime, &keys, iters, direct_get));
    });
    group.bench_function("#[smart_cached] fn", |b| {
        b.iter_custom(|iters| {
            time_hits(&runtime, &keys, iters, async |key| {
                through_macro(*key).await
            })
        });
    });
    group.bench_function("#[smart_cached] method, receiver in the key", |b| {
        b.iter_custom(|iters| time_hits(&runtime, &skus, iters, async |sku| sku.price().await));
    });
    group.bench_function("#[smart_cached] method, receiver skipped", |b| {
        let sku = Sku(0);
        b.iter_custom(|iters| {
            time_hits(&runtime, &keys, iters, async |key| sku.price_of(*key).await)
        });
    });

    let names: Vec<String> = keys.iter().copied().map(String::nth).collect();
    let direct: AsyncSmartCache<String, u64> = AsyncSmartCache::new();
    let direct_get = async |key: &String| {
        let answer = direct
            .get_or_compute(key.clone(), || async { Ok(key.value()) })
            .await;
        answer.unwrap_or(0)
    };
    runtime.block_on(async {
        for name in &names {
            direct_get(name).await;
            through_macro_str(name).await;
        }
    });
    group.bench_function("direct get_or_compute, String key", |b| {
        b.iter_custom(|iters| time_hits(&runtime, &names, iters, direct_get));
    });
    // What the attribute calls since it looks the key up borrowed, without the cached fn
    // around it: the floor of its `&str` row.
    let borrowed = async |key: &String| {
        let answer = direct
            .get_or_compute_ref(key.as_str(), || async { Ok(key.value()) })
            .await;
        answer.unwrap_or(0)
    };
    group.bench_function("direct get_or_compute_ref, &str key", |b| {
        b.iter_custom(|iters| time_hits(&runtime, &names, iters, borrowed));
    });
    let shared = async |key: &String| {
        let value = key.value();
        let answer = direct
            .get_or_compute_shared_ref(key.as_str(), || async move { Ok(value) })
            .await;
        answer.unwrap_or(0)
    };
    group.bench_function("direct get_or_compute_shared_ref, &str key", |b| {
        b.iter_custom(|iters| time_hits(&runtime, &names, iters, shared));
    });
    group.bench_function("#[smart_cached] fn, &str argument", |b| {
        b.iter_custom(|iters| {
            time_hits(&runtime, &names, iters, async |name| {
                through_macro_str(name).await
            })
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    hit_latency::<u64>(c, "hit_u64");
    hit_latency::<String>(c, "hit_string");
    macro_vs_direct(c);
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
