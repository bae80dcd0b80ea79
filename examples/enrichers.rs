//! The Python original's enrichers, done right: host name, pid and a resource snapshot as
//! `#[smart_cached]` functions, run by a small pipeline over structured log events.
//!
//! ```sh
//! cargo run -p smartcache-examples --example enrichers
//! ```
//!
//! It enriches a burst of events concurrently, then one that sets a field itself, and prints
//! the enriched events and what each cache did. Set `DEPLOYMENT` to see that field filled;
//! unset, its enricher fails once and the failure is cached (and reported) after that.

use std::sync::Arc;

use serde_json::Value;
use smartcache::registry;
use smartcache_examples::enrich::{self, Event, Pipeline};

#[tokio::main]
async fn main() {
    let pipeline = Arc::new(
        Pipeline::new()
            .register("host_process", enrich::host_process)
            .register("resources", enrich::resources)
            .register("deployment", enrich::deployment),
    );

    println!("a burst of 5 events, enriched concurrently:");
    let burst: Vec<_> = (0..5)
        .map(|n| {
            let pipeline = Arc::clone(&pipeline);
            tokio::spawn(async move {
                let mut event = event(&format!("request {n} handled"));
                let failures = pipeline.enrich(&mut event).await;
                (event, failures)
            })
        })
        .collect();
    for task in burst {
        match task.await {
            Ok((event, failures)) => print_event(&event, &failures),
            Err(error) => println!("  an enrichment task failed: {error}"),
        }
    }

    println!("\nan event that sets its own hostname keeps it:");
    let mut event = event("custom host");
    event.insert("hostname".into(), "from-the-caller".into());
    let failures = pipeline.enrich(&mut event).await;
    print_event(&event, &failures);

    println!("\nwhat the caches did:");
    for cache in registry::snapshot()
        .iter()
        .filter(|cache| cache.name.contains("enrich"))
    {
        println!("  {:<48} {}", cache.name, cache.stats);
    }
    let snapshot = enrich::resource_snapshot_cache().stats();
    println!(
        "\n5 concurrent events took {} resource snapshot(s): the others joined it or hit it",
        snapshot.load_successes
    );
}

fn event(message: &str) -> Event {
    let mut event = Event::new();
    event.insert("level".into(), "info".into());
    event.insert("message".into(), message.into());
    event
}

fn print_event(event: &Event, failures: &[(&'static str, enrich::EnrichError)]) {
    println!("  {}", Value::Object(event.clone()));
    for (enricher, error) in failures {
        println!("    (enricher {enricher} failed: {error})");
    }
}
