//! The enricher pipeline of the `enrichers` example, with its caches primed as stand-ins.

use serde_json::Value;
use smartcache::CacheError;
use smartcache_examples::enrich::{self, Event, Pipeline};

#[tokio::test]
async fn the_pipeline_adds_cached_fields_and_keeps_the_callers_own() {
    // Priming stands in for the operating system, as patching did in the Python tests.
    enrich::hostname_cache().prime((), "test-host".to_owned());
    let pipeline = Pipeline::new().register("host_process", enrich::host_process);

    let mut event = Event::new();
    event.insert("pid".into(), Value::from("set by the caller"));
    let failures = pipeline.enrich(&mut event).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(event["hostname"], "test-host");
    assert_eq!(event["pid"], "set by the caller");

    let mut event = Event::new();
    pipeline.enrich(&mut event).await;
    assert_eq!(event["pid"], std::process::id());

    let hostname = enrich::hostname_cache().stats();
    assert_eq!((hostname.primes, hostname.loads()), (1, 0));
    assert_eq!(hostname.hits, 2);
    let pid = enrich::pid_cache().stats();
    assert_eq!((pid.load_successes, pid.hits), (1, 1));
}

#[tokio::test]
async fn concurrent_snapshots_share_one_sample() {
    // `join!` polls all three before any can finish (sampling CPU takes 200 ms): the first
    // starts the computation, the other two join it.
    let (a, b, c) = tokio::join!(
        enrich::resource_snapshot(),
        enrich::resource_snapshot(),
        enrich::resource_snapshot()
    );
    assert!(a == b && b == c);
    assert!(a.memory_total_mib >= a.memory_used_mib);
    let stats = enrich::resource_snapshot_cache().stats();
    assert_eq!((stats.load_successes, stats.coalesced), (1, 2));
}

#[tokio::test]
async fn a_failing_enricher_is_reported_and_its_failure_cached() {
    let variable = "SMARTCACHE_EXAMPLES_TEST_SURELY_UNSET";
    let first = enrich::env_field(variable).await.unwrap_err();
    assert!(matches!(first, CacheError::Failed(_)), "{first:?}");
    assert_eq!(first.to_string(), "computation failed");
    let original = first.error().expect("the original error").to_string();
    assert!(original.contains(variable), "{original}");
    let second = enrich::env_field(variable).await.unwrap_err();
    assert!(second.is_cached(), "{second:?}");

    let pipeline = Pipeline::new().register("deployment", || -> enrich::EnrichFuture {
        Box::pin(async {
            let value = enrich::env_field("SMARTCACHE_EXAMPLES_TEST_SURELY_UNSET")
                .await
                .map_err(|error| enrich::reported(&error))?;
            Ok(vec![("deployment", value.into())])
        })
    });
    let mut event = Event::new();
    let failures = pipeline.enrich(&mut event).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "deployment");
    let reported = failures[0].1.to_string();
    assert!(
        reported.starts_with("cached error (retry in "),
        "{reported}"
    );
    assert!(reported.contains(variable), "{reported}");
    assert!(event.is_empty());
}
