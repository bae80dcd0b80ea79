//! Publishing statistics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`).
//!
//! Caches do not talk to the metrics recorder on the request path: a hit costs the same with
//! the feature as without it. Instead, [`publish`] reads every registered cache's statistics
//! and records them as absolute counters and gauges, labelled `cache = <name>`. Call it where
//! the figures are read: in a Prometheus scrape handler, or from a periodic task.
//!
//! Names follow the Prometheus conventions: a counter (a total that only grows, until the
//! process restarts or [`reset_stats`](crate::AsyncSmartCache::reset_stats) is called) ends
//! in `_total`, a gauge (a level that goes up and down) does not, and the unit is in the
//! name. The load time is a counter in microseconds rather than seconds because the facade's
//! counters are integers: whole seconds would read 0 for a cache whose loads take
//! milliseconds. Divide by 1e6 for seconds, e.g. the mean load time over 5 minutes is
//! `rate(smartcache_load_microseconds_total[5m]) / 1e6 / (rate(smartcache_load_successes_total[5m]) + rate(smartcache_load_failures_total[5m]))`.
//!
//! | metric | kind | from [`CacheStats`](crate::CacheStats) |
//! |---|---|---|
//! | `smartcache_hits_total` | counter | `hits` |
//! | `smartcache_misses_total` | counter | `misses` |
//! | `smartcache_coalesced_total` | counter | `coalesced` |
//! | `smartcache_load_successes_total` | counter | `load_successes` |
//! | `smartcache_load_failures_total` | counter | `load_failures` |
//! | `smartcache_cached_error_hits_total` | counter | `cached_error_hits` |
//! | `smartcache_evictions_total` | counter | `evictions` |
//! | `smartcache_expirations_total` | counter | `expirations` |
//! | `smartcache_primes_total` | counter | `primes` |
//! | `smartcache_refreshes_total` | counter | `refreshes` |
//! | `smartcache_refresh_failures_total` | counter | `refresh_failures` |
//! | `smartcache_stale_hits_total` | counter | `stale_hits` |
//! | `smartcache_load_microseconds_total` | counter | `total_load_time` (in µs) |
//! | `smartcache_entries` | gauge | `total_entries` |
//! | `smartcache_error_entries` | gauge | `error_entries` |
//! | `smartcache_in_flight` | gauge | `in_flight` |
//!
//! ```
//! // In a scrape handler, before rendering the recorder's output:
//! smartcache::metrics::publish();
//! ```

use crate::registry;

/// Records every registered cache's statistics through the `metrics` facade.
#[allow(clippy::cast_precision_loss)] // gauges are f64 by the facade's design
pub fn publish() {
    for cache in registry::snapshot() {
        let (name, stats) = (cache.name, cache.stats);
        let counters = [
            ("smartcache_hits_total", stats.hits),
            ("smartcache_misses_total", stats.misses),
            ("smartcache_coalesced_total", stats.coalesced),
            ("smartcache_load_successes_total", stats.load_successes),
            ("smartcache_load_failures_total", stats.load_failures),
            (
                "smartcache_cached_error_hits_total",
                stats.cached_error_hits,
            ),
            ("smartcache_evictions_total", stats.evictions),
            ("smartcache_expirations_total", stats.expirations),
            ("smartcache_primes_total", stats.primes),
            ("smartcache_refreshes_total", stats.refreshes),
            ("smartcache_refresh_failures_total", stats.refresh_failures),
            ("smartcache_stale_hits_total", stats.stale_hits),
            ("smartcache_shared_hits_total", stats.shared.hits),
            ("smartcache_shared_misses_total", stats.shared.misses),
            (
                "smartcache_shared_lease_waits_total",
                stats.shared.lease_waits,
            ),
            (
                "smartcache_shared_lease_timeouts_total",
                stats.shared.lease_timeouts,
            ),
            (
                "smartcache_shared_redis_errors_total",
                stats.shared.redis_errors,
            ),
            (
                "smartcache_shared_local_only_total",
                stats.shared.local_only,
            ),
            (
                "smartcache_load_microseconds_total",
                u64::try_from(stats.total_load_time.as_micros()).unwrap_or(u64::MAX),
            ),
        ];
        for (metric, value) in counters {
            ::metrics::counter!(metric, "cache" => name.clone()).absolute(value);
        }
        let gauges = [
            ("smartcache_entries", stats.total_entries as f64),
            ("smartcache_error_entries", stats.error_entries as f64),
            ("smartcache_in_flight", stats.in_flight as f64),
        ];
        for (metric, value) in gauges {
            ::metrics::gauge!(metric, "cache" => name.clone()).set(value);
        }
    }
}
