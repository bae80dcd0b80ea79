//! The optional integrations: `serde`, `metrics` and `tracing` (each test runs only when its
//! feature is on; `cargo test --all-features` runs them all).

#[cfg(any(feature = "serde", feature = "metrics", feature = "tracing"))]
use smartcache::AsyncSmartCache;

#[cfg(feature = "serde")]
#[tokio::test]
async fn stats_and_registry_entries_serialize_with_derived_figures() {
    let cache: AsyncSmartCache<u8, u8> = AsyncSmartCache::builder().name("serde::stats").build();
    cache.get_or_init(1, || async { 1 }).await;
    cache.get_or_init(1, || async { 1 }).await;
    let json = serde_json::to_value(cache.stats()).unwrap();
    assert_eq!(json["hits"], 1);
    assert_eq!(json["misses"], 1);
    assert_eq!(json["requests"], 2);
    assert_eq!(json["hit_rate"], 0.5);
    assert!(json["total_load_time_secs"].is_f64());

    let listed = smartcache::registry::snapshot();
    let ours = listed.iter().find(|c| c.name == "serde::stats").unwrap();
    let json = serde_json::to_value(ours).unwrap();
    assert_eq!(json["name"], "serde::stats");
    assert_eq!(json["stats"]["load_successes"], 1);
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn publish_records_every_registered_cache_labelled_by_name() {
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let cache: AsyncSmartCache<u8, u8, String> = AsyncSmartCache::builder()
        .name("metrics::published")
        .build();
    cache.get_or_compute(1, || async { Ok(1) }).await.unwrap();
    cache.get_or_compute(1, || async { Ok(1) }).await.unwrap();
    let _ = cache
        .get_or_compute(2, || async { Err("down".to_owned()) })
        .await;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, smartcache::metrics::publish);

    // One snapshot: the debugging recorder hands out each metric once per snapshot.
    let snapshot = snapshotter.snapshot().into_vec();
    let ours = |name: &str| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let kind = key.kind();
            let key = key.key();
            let labelled = key
                .labels()
                .any(|l| l.key() == "cache" && l.value() == "metrics::published");
            (key.name() == name && labelled).then_some((kind, value))
        })
    };
    assert!(matches!(
        ours("smartcache_hits_total"),
        Some((_, &DebugValue::Counter(1)))
    ));
    assert!(matches!(
        ours("smartcache_misses_total"),
        Some((_, &DebugValue::Counter(2)))
    ));
    assert!(matches!(
        ours("smartcache_load_failures_total"),
        Some((_, &DebugValue::Counter(1)))
    ));
    match ours("smartcache_entries") {
        Some((_, &DebugValue::Gauge(entries))) => {
            assert!((entries.into_inner() - 2.0).abs() < 1e-9);
        }
        other => panic!("no entries gauge: {other:?}"),
    }
    assert!(matches!(
        ours("smartcache_in_flight"),
        Some((MetricKind::Gauge, _))
    ));
    assert!(matches!(
        ours("smartcache_load_microseconds_total"),
        Some((MetricKind::Counter, _))
    ));
    // Prometheus conventions: `_total` names a counter, and only a counter.
    for (key, _, _, _) in &snapshot {
        let name = key.key().name();
        if name.starts_with("smartcache_") {
            let counter = key.kind() == MetricKind::Counter;
            assert_eq!(
                name.ends_with("_total"),
                counter,
                "{name}: {:?}",
                key.kind()
            );
        }
    }
}

#[cfg(feature = "tracing")]
mod traced {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use smartcache::AsyncSmartCache;

    /// Collects formatted events in memory.
    #[derive(Clone, Default)]
    pub(super) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub(super) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A scoped subscriber that writes to `out`.
    ///
    /// NOTE: also keeps a second dispatcher alive for the rest of the process. `tracing`
    /// caches each callsite's interest globally, and while only one dispatcher exists it asks
    /// the default of whichever thread reaches the callsite first: a sibling test's thread,
    /// with no subscriber, cached "never" and this one's events were lost (a flaky test).
    /// With two, the interest is the union of all dispatchers', and each event still goes
    /// to its own thread's default only.
    pub(super) fn subscriber(out: &Captured) -> impl tracing::Subscriber + Send + Sync {
        static ANCHOR: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(|| {
            let sink = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(std::io::sink)
                .finish();
            tracing::Dispatch::new(sink)
        });
        let out = out.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn slow_path_events_carry_the_cache_name_but_not_the_key() {
        let out = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(&out));
        let cache: AsyncSmartCache<&str, u8, String> =
            AsyncSmartCache::builder().name("traced::users").build();
        cache
            .get_or_compute("secret-user", || async { Ok(1) })
            .await
            .unwrap();
        let _ = cache
            .get_or_compute("other", || async { Err("down".to_owned()) })
            .await;
        let _ = cache.get_or_compute("other", || async { Ok(2) }).await;
        let _ = cache
            .get_or_compute("boom", || async { panic!("kaboom") })
            .await;

        let text = out.text();
        for expected in [
            "computation started",
            "computation finished",
            "computation failed",
            "answered with a cached error",
            "computation panicked",
            "kaboom",
            "traced::users",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(
            !text.contains("secret-user"),
            "keys are private by default:\n{text}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn trace_keys_opts_in_to_logging_keys() {
        let out = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(&out));
        let cache: AsyncSmartCache<&str, u8> = AsyncSmartCache::builder()
            .name("traced::keys")
            .trace_keys()
            .build();
        cache.get_or_init("visible-key", || async { 1 }).await;
        assert!(out.text().contains("visible-key"), "{}", out.text());
    }
}

/// A cache that went through a refresh-ahead that failed and a stale answer: one refresh,
/// one refresh failure, one stale hit.
#[cfg(any(feature = "serde", feature = "metrics", feature = "tracing"))]
async fn resilient_cache(name: &str) -> AsyncSmartCache<u8, u8, String> {
    use std::time::Duration;
    let cache = AsyncSmartCache::builder()
        .name(name)
        .time_to_live(Duration::from_secs(60))
        .refresh_after(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(60))
        .retry_interval(Duration::from_secs(5))
        .build();
    let down = || async { Err::<u8, _>("down".to_owned()) };
    cache
        .get_or_compute_shared(1, || async { Ok(1) })
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(cache.get_or_compute_shared(1, down).await.unwrap(), 1);
    for _ in 0..100 {
        if cache.stats().refresh_failures == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(cache.get_or_compute_shared(1, down).await.unwrap(), 1);
    let stats = cache.stats();
    assert_eq!(
        (stats.refreshes, stats.refresh_failures, stats.stale_hits),
        (1, 1, 1)
    );
    assert!(
        stats
            .to_string()
            .contains("refreshes 1 (1 failed), stale hits 1"),
        "{stats}"
    );
    cache
}

#[cfg(feature = "serde")]
#[tokio::test(start_paused = true)]
async fn the_resilience_figures_serialize() {
    let cache = resilient_cache("serde::resilient").await;
    let json = serde_json::to_value(cache.stats()).unwrap();
    assert_eq!(
        (
            &json["refreshes"],
            &json["refresh_failures"],
            &json["stale_hits"]
        ),
        (&1.into(), &1.into(), &1.into())
    );
}

#[cfg(feature = "metrics")]
#[tokio::test(start_paused = true)]
async fn the_resilience_figures_are_published() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let _cache = resilient_cache("metrics::resilient").await;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, smartcache::metrics::publish);
    let snapshot = snapshotter.snapshot().into_vec();
    for name in [
        "smartcache_refreshes_total",
        "smartcache_refresh_failures_total",
        "smartcache_stale_hits_total",
    ] {
        let value = snapshot.iter().find_map(|(key, _, _, value)| {
            let key = key.key();
            let ours = key
                .labels()
                .any(|l| l.key() == "cache" && l.value() == "metrics::resilient");
            (key.name() == name && ours).then_some(value)
        });
        assert!(
            matches!(value, Some(&DebugValue::Counter(1))),
            "{name}: {value:?}"
        );
    }
}

#[cfg(feature = "tracing")]
#[tokio::test(start_paused = true)]
async fn refreshes_and_stale_answers_are_traced() {
    let out = traced::Captured::default();
    let _guard = tracing::subscriber::set_default(traced::subscriber(&out));
    let _cache = resilient_cache("traced::resilient").await;
    let text = out.text();
    for expected in [
        "refresh-ahead started",
        "recompute failed; answered with the stale value",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
