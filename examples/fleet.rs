//! A fleet of processes on one Redis: a herd across all of them makes one backend call, and
//! one failure is shared by all of them.
//!
//! `cargo run -p smartcache-examples --example fleet [-- redis://127.0.0.1:6379/]`
//!
//! Without a URL it starts a `redis-server` of its own on a free loopback port (Debian's
//! `redis-server` package; `scripts/install-redis.sh` installs it) and stops it at the end.
//! The example runs three copies of itself as worker processes; each has a cache named
//! `fleet::price` on the shared tier and sends ten concurrent callers after one cold key,
//! then asks three times for a key whose backend fails. The backend counts its calls in
//! Redis, where every process sees them.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use smartcache::AsyncSmartCache;
use smartcache::redis::RedisTier;

const WORKERS: i64 = 3;
const CALLERS: i64 = 10;

type Prices = AsyncSmartCache<String, u64, String>;

fn main() {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--worker"), Some(url)) => worker(&url),
        (url, _) => coordinator(url.map(str::to_owned)),
    }
}

/// Starts the workers (and, without a URL, a Redis), then reports what the fleet did.
fn coordinator(url: Option<String>) {
    let mut own_server = None;
    let url = url.unwrap_or_else(|| {
        let (server, url) = start_redis();
        own_server = Some(server);
        url
    });
    println!("a fleet of {WORKERS} processes on {url}, {CALLERS} callers each\n");
    let exe = std::env::current_exe().expect("this example's binary");
    let workers: Vec<Child> = (0..WORKERS)
        .map(|_| {
            Command::new(&exe)
                .args(["--worker", &url])
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker process")
        })
        .collect();
    for (n, worker) in workers.into_iter().enumerate() {
        let output = worker.wait_with_output().expect("the worker ends");
        print!(
            "worker {}:\n{}",
            n + 1,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (price_calls, failing_calls) = runtime.block_on(async {
        let mut redis = connection(&url).await;
        (
            count(&mut redis, "fleet:calls:ACME").await,
            count(&mut redis, "fleet:calls:GONE").await,
        )
    });
    println!(
        "\nbackend calls for ACME, fleet-wide: {price_calls} (for {} callers)",
        WORKERS * CALLERS
    );
    println!(
        "backend calls for GONE, fleet-wide: {failing_calls} (its failure was shared by every process)"
    );
    if let Some(mut server) = own_server {
        let _ = server.kill();
        let _ = server.wait();
    }
}

fn worker(url: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let tier = RedisTier::connect(url).await.expect("redis is up");
        let prices: Arc<Prices> = Arc::new(
            AsyncSmartCache::builder()
                .name("fleet::price")
                .retry_interval(Duration::from_secs(60))
                .shared(tier)
                .build(),
        );
        // Every worker is up before anyone asks (a count in Redis).
        let mut redis = connection(url).await;
        let _: i64 = redis::cmd("INCR")
            .arg("fleet:ready")
            .query_async(&mut redis)
            .await
            .unwrap();
        while count(&mut redis, "fleet:ready").await < WORKERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (prices, url) = (Arc::clone(&prices), url.to_owned());
                tokio::spawn(async move {
                    prices
                        .get_or_compute_shared("ACME".to_owned(), move || backend(url, "ACME"))
                        .await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for caller in callers {
            answers.push(caller.await.expect("a caller").expect("a price"));
        }
        answers.dedup();
        println!("  ACME: {CALLERS} callers got {answers:?}");
        for _ in 0..3 {
            let url = url.to_owned();
            let answer = prices
                .get_or_compute_shared("GONE".to_owned(), move || backend(url, "GONE"))
                .await;
            println!(
                "  GONE: {}",
                answer.map_or_else(|e| e.to_string(), |p| p.to_string())
            );
        }
        let shared = prices.stats().shared;
        println!(
            "  on the shared tier: {} computed here, {} answered by the fleet, {} lease waits",
            shared.misses, shared.hits, shared.lease_waits
        );
    });
}

/// The backend: slow, counted in Redis; `GONE` has no price.
async fn backend(url: String, item: &'static str) -> Result<u64, String> {
    let mut redis = connection(&url).await;
    let _: i64 = redis::cmd("INCR")
        .arg(format!("fleet:calls:{item}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    if item == "GONE" {
        return Err(format!("no price for {item}"));
    }
    Ok(101)
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("redis is up")
}

async fn count(redis: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("GET")
        .arg(key)
        .query_async::<Option<i64>>(redis)
        .await
        .unwrap()
        .unwrap_or(0)
}

/// A `redis-server` on a free loopback port, without persistence.
fn start_redis() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect(
            "redis-server (Debian's redis-server package; scripts/install-redis.sh installs it)",
        );
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, format!("redis://127.0.0.1:{port}/"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut server = server;
    let _ = server.kill();
    let _ = server.wait();
    panic!("redis-server did not listen on port {port}");
}
