//! An HTTP service with a `#[smart_cached]` upstream lookup (the app is in
//! `smartcache_examples::axum_app`, where its integration test starts it too).
//!
//! ```sh
//! # serve on 127.0.0.1:3000 (or $SMARTCACHE_ADDR) until interrupted
//! cargo run -p smartcache-examples --example axum_service
//! curl -i localhost:3000/users/7
//! curl localhost:3000/stats
//!
//! # serve on a free port, send a few requests to itself, print them, exit
//! cargo run -p smartcache-examples --example axum_service -- --smoke
//! ```
//!
//! The cache's `tracing` events (computations starting and ending, cached-error answers)
//! are printed as they happen.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use smartcache_examples::axum_app::{self, Upstream};
use smartcache_examples::http;
use tokio::net::TcpListener;

/// How long the simulated upstream takes to answer.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => serve().await,
        [flag] if flag == "--smoke" => smoke().await,
        _ => {
            eprintln!("usage: axum_service [--smoke]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("axum_service: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let addr = std::env::var("SMARTCACHE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let addr: SocketAddr = addr
        .parse()
        .map_err(|error| format!("bad address {addr:?} in SMARTCACHE_ADDR: {error}"))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    println!("listening on http://{addr} (try /users/7, /users/2000000, /stats)");
    axum_app::serve(listener, Upstream::with_latency(UPSTREAM_LATENCY))
        .await
        .map_err(|error| format!("server failed: {error}"))
}

async fn smoke() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("cannot listen: {error}"))?;
    let addr = listener
        .local_addr()
        .map_err(|error| format!("no local address: {error}"))?;
    let upstream = Upstream::with_latency(UPSTREAM_LATENCY);
    let server = tokio::spawn(axum_app::serve(listener, upstream.clone()));
    println!("serving on http://{addr}\n");

    println!("5 concurrent GET /users/7:");
    let requests: Vec<_> = (0..5)
        .map(|_| tokio::spawn(http::get(addr, "/users/7")))
        .collect();
    for request in requests {
        let response = request
            .await
            .map_err(|error| format!("request task failed: {error}"))?;
        show(&response.map_err(|error| format!("request failed: {error}"))?);
    }
    println!("upstream calls so far: {}\n", upstream.calls());

    for path in ["/users/7", "/users/2000000", "/users/2000000", "/users/abc"] {
        println!("GET {path}:");
        let response = http::get(addr, path)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        show(&response);
    }
    println!("upstream calls: {}\n", upstream.calls());

    println!("GET /stats:");
    let stats = http::get(addr, "/stats")
        .await
        .map_err(|error| format!("request failed: {error}"))?;
    let pretty = serde_json::from_str::<serde_json::Value>(&stats.body)
        .and_then(|json| serde_json::to_string_pretty(&json))
        .unwrap_or(stats.body);
    println!("{pretty}");
    server.abort();
    Ok(())
}

fn show(response: &http::Response) {
    println!(
        "  {} {}  (x-served-by: {}, x-process-id: {})",
        response.status,
        response.body,
        response.header("x-served-by").unwrap_or("-"),
        response.header("x-process-id").unwrap_or("-"),
    );
}
