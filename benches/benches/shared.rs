//! The shared tier's cost: a call answered by the fleet (a local miss that Redis answers)
//! and a miss computed for the fleet (lease, computation, commit), against the same calls on
//! a local cache. Runs its own `redis-server` on a free loopback port (Debian's
//! `redis-server`; `scripts/install-redis.sh` installs it). One task, trivial computations:
//! what is measured is the tier's round trips.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use smartcache::AsyncSmartCache;
use smartcache::redis::RedisTier;

type Cache = AsyncSmartCache<u64, u64, String>;

/// A `redis-server` without persistence; stopped when dropped.
struct Server(Child, String);

impl Server {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-redis.sh installs it)");
        let server = Self(child, format!("redis://127.0.0.1:{port}/"));
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not listen on port {port}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `iters` calls for keys never seen (numbered on from `next_key`), timed.
fn time_misses(
    runtime: &tokio::runtime::Runtime,
    cache: &Cache,
    next_key: &mut u64,
    iters: u64,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            *next_key += 1;
            let key = *next_key;
            let answer = cache.get_or_compute_shared(key, move || async move { Ok(key) });
            black_box(answer.await.ok());
        }
        start.elapsed()
    })
}

fn benches(c: &mut Criterion) {
    let server = Server::start();
    // Network and timers: the tier's connection runs on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let tier = runtime
        .block_on(RedisTier::connect(&server.1))
        .expect("redis is up");
    let mut group = c.benchmark_group("shared_tier");
    let mut next_key = 0u64;

    // Misses: a key never seen, each call.
    let local: Cache = AsyncSmartCache::new();
    group.bench_function("local miss", |b| {
        b.iter_custom(|iters| time_misses(&runtime, &local, &mut next_key, iters));
    });
    let shared: Cache = AsyncSmartCache::builder()
        .name("bench::miss")
        .shared(tier.clone())
        .build();
    group.bench_function("shared miss (lease, compute, commit)", |b| {
        b.iter_custom(|iters| time_misses(&runtime, &shared, &mut next_key, iters));
    });

    // Hits: one warm key. A shared cache without local room asks Redis every time.
    let local_hit: Cache = AsyncSmartCache::new();
    group.bench_function("local hit", |b| {
        b.iter(|| {
            runtime.block_on(async {
                black_box(
                    local_hit
                        .get_or_compute_shared(1, || async { Ok(1) })
                        .await
                        .ok(),
                )
            })
        });
    });
    let fleet_hit: Cache = AsyncSmartCache::builder()
        .name("bench::hit")
        .max_capacity(0)
        .shared(tier)
        .build();
    group.bench_function("fleet hit (a Redis round trip)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                black_box(
                    fleet_hit
                        .get_or_compute_shared(1, || async { Ok(1) })
                        .await
                        .ok(),
                )
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = shared;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(shared);
