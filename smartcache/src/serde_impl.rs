//! `Serialize` for statistics (feature `serde`), for admin endpoints and logs.
//!
//! [`CacheStats`] serializes its fields, with `total_load_time` as `total_load_time_secs`
//! (a float) and the shared tier's figures as an object `shared`, plus the derived
//! `requests`, `hit_rate` and `success_ratio`.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::registry::RegisteredCache;
use crate::{CacheStats, SharedStats};

impl Serialize for CacheStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("CacheStats", 20)?;
        out.serialize_field("hits", &self.hits)?;
        out.serialize_field("misses", &self.misses)?;
        out.serialize_field("coalesced", &self.coalesced)?;
        out.serialize_field("load_successes", &self.load_successes)?;
        out.serialize_field("load_failures", &self.load_failures)?;
        out.serialize_field("cached_error_hits", &self.cached_error_hits)?;
        out.serialize_field("evictions", &self.evictions)?;
        out.serialize_field("expirations", &self.expirations)?;
        out.serialize_field("primes", &self.primes)?;
        out.serialize_field("refreshes", &self.refreshes)?;
        out.serialize_field("refresh_failures", &self.refresh_failures)?;
        out.serialize_field("stale_hits", &self.stale_hits)?;
        out.serialize_field("total_load_time_secs", &self.total_load_time.as_secs_f64())?;
        out.serialize_field("total_entries", &self.total_entries)?;
        out.serialize_field("error_entries", &self.error_entries)?;
        out.serialize_field("in_flight", &self.in_flight)?;
        out.serialize_field("shared", &self.shared)?;
        out.serialize_field("requests", &self.requests())?;
        out.serialize_field("hit_rate", &self.hit_rate())?;
        out.serialize_field("success_ratio", &self.success_ratio())?;
        out.end()
    }
}

impl Serialize for SharedStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("SharedStats", 7)?;
        out.serialize_field("hits", &self.hits)?;
        out.serialize_field("misses", &self.misses)?;
        out.serialize_field("lease_waits", &self.lease_waits)?;
        out.serialize_field("lease_timeouts", &self.lease_timeouts)?;
        out.serialize_field("redis_errors", &self.redis_errors)?;
        out.serialize_field("local_only", &self.local_only)?;
        out.serialize_field("degraded_secs", &self.degraded.as_secs_f64())?;
        out.end()
    }
}

impl Serialize for RegisteredCache {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("RegisteredCache", 2)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("stats", &self.stats)?;
        out.end()
    }
}
