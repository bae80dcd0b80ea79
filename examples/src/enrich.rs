//! Log-event enrichers, the Python original's use case done with smartcache.
//!
//! Each enricher adds fields to a structured log event (a JSON object). What they look up
//! changes rarely or never, so the lookups are `#[smart_cached]` functions:
//!
//! | function | form | cached for |
//! |---|---|---|
//! | [`hostname`] | transparent `Result<String, EnrichError>`: a failure is cached for 30 s | ever |
//! | [`pid`] | infallible: returns `u32` | ever |
//! | [`resource_snapshot`] | infallible, with a time to live | 5 s |
//!
//! [`env_field`] shows the other route: an explicit cache whose computation is a plain
//! synchronous function ([`AsyncSmartCache::get_or_compute_sync`]).
//!
//! A [`Pipeline`] runs registered enrichers in order. Fields the event already has are kept
//! (the caller knows best), and an enricher that fails is reported, never fatal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use smartcache::{AsyncSmartCache, CacheError, smart_cached};

/// A structured log event: field name to value.
pub type Event = Map<String, Value>;

/// Fields an enricher wants to add, in order.
pub type Fields = Vec<(&'static str, Value)>;

/// What an enricher returns: boxed, so enrichers of different shapes fit one pipeline.
pub type EnrichFuture = Pin<Box<dyn Future<Output = Result<Fields, EnrichError>> + Send>>;

/// An enricher: starts the work of producing its fields.
pub type Enricher = fn() -> EnrichFuture;

/// Why an enricher could not produce its fields.
///
/// `Clone`, so that [`hostname`] can use the transparent form of `#[smart_cached]`: a cached
/// failure comes back as a clone of the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichError(String);

impl EnrichError {
    /// An error with this description.
    pub fn new(description: impl Into<String>) -> Self {
        Self(description.into())
    }
}

impl fmt::Display for EnrichError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EnrichError {}

/// The host's name, asked of the operating system once; a failure is remembered for 30 s.
///
/// # Errors
///
/// When the operating system does not say (a clone of that first error, while it is cached).
#[smart_cached(retry = "30s")]
pub async fn hostname() -> Result<String, EnrichError> {
    sysinfo::System::host_name().ok_or_else(|| EnrichError::new("the host name is unavailable"))
}

/// This process's id: cannot fail, computed once.
#[smart_cached]
pub async fn pid() -> u32 {
    std::process::id()
}

/// Memory and CPU use of the host at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSnapshot {
    /// Memory in use, in MiB.
    pub memory_used_mib: u64,
    /// All memory, in MiB.
    pub memory_total_mib: u64,
    /// CPU use over the sampling interval, all cores, in percent.
    pub cpu_percent: f32,
}

/// A resource snapshot, taken at most every 5 seconds however often events are logged.
///
/// Taking one costs about 200 ms (CPU use is the difference between two samples), which is
/// exactly why it is cached: a burst of events shares one snapshot, and concurrent callers
/// share the one sample in progress.
#[smart_cached(ttl = "5s")]
pub async fn resource_snapshot() -> ResourceSnapshot {
    let mut system = sysinfo::System::new();
    system.refresh_cpu_usage();
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    system.refresh_cpu_usage();
    system.refresh_memory();
    ResourceSnapshot {
        memory_used_mib: system.used_memory() / 1024 / 1024,
        memory_total_mib: system.total_memory() / 1024 / 1024,
        cpu_percent: system.global_cpu_usage(),
    }
}

/// The cache behind [`env_field`]: environment variables, read with a plain function.
static ENVIRONMENT: LazyLock<AsyncSmartCache<&'static str, String, EnrichError>> =
    LazyLock::new(|| {
        AsyncSmartCache::builder()
            .name("enrich::environment")
            .build()
    });

/// The value of the environment variable `name`, read once: the sync-compute form.
///
/// # Errors
///
/// [`CacheError::Failed`] when the variable is unset or not Unicode, then
/// [`CacheError::Cached`] for the next 5 minutes (the default retry interval).
pub async fn env_field(name: &'static str) -> Result<String, CacheError<EnrichError>> {
    ENVIRONMENT
        .get_or_compute_sync(name, || {
            std::env::var(name).map_err(|error| EnrichError::new(format!("${name}: {error}")))
        })
        .await
}

/// The cache of [`env_field`], for its statistics.
#[must_use]
pub fn environment_cache() -> &'static AsyncSmartCache<&'static str, String, EnrichError> {
    &ENVIRONMENT
}

/// Enricher: `hostname` and `pid`.
#[must_use]
pub fn host_process() -> EnrichFuture {
    Box::pin(async {
        let hostname = hostname().await?;
        Ok(vec![
            ("hostname", hostname.into()),
            ("pid", pid().await.into()),
        ])
    })
}

/// Enricher: `resources`, the latest [`resource_snapshot`].
#[must_use]
pub fn resources() -> EnrichFuture {
    Box::pin(async {
        let snapshot = resource_snapshot().await;
        let resources = json!({
            "memory_used_mib": snapshot.memory_used_mib,
            "memory_total_mib": snapshot.memory_total_mib,
            "cpu_percent": snapshot.cpu_percent,
        });
        Ok(vec![("resources", resources)])
    })
}

/// Enricher: `deployment`, from the `DEPLOYMENT` environment variable.
#[must_use]
pub fn deployment() -> EnrichFuture {
    Box::pin(async {
        let deployment = env_field("DEPLOYMENT")
            .await
            .map_err(|error| reported(&error))?;
        Ok(vec![("deployment", deployment.into())])
    })
}

/// A cache's error as one [`EnrichError`], as an error reporter prints it: what the cache
/// did, then the original error (`cached error (retry in 5m): $DEPLOYMENT: ..`).
/// `CacheError`'s own `Display` is the first part only; the original is its `source`.
#[must_use]
pub fn reported(error: &CacheError<EnrichError>) -> EnrichError {
    match error.error() {
        Some(original) => EnrichError::new(format!("{error}: {original}")),
        None => EnrichError::new(error.to_string()),
    }
}

/// Enrichers run in the order they were registered.
#[derive(Debug, Default)]
pub struct Pipeline {
    enrichers: Vec<(&'static str, Enricher)>,
}

impl Pipeline {
    /// An empty pipeline.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an enricher under a name (used when reporting its failures).
    #[must_use]
    pub fn register(mut self, name: &'static str, enricher: Enricher) -> Self {
        self.enrichers.push((name, enricher));
        self
    }

    /// Runs every enricher on `event`, adding the fields the event does not have yet.
    ///
    /// Returns the enrichers that failed, by name, with their errors; the others' fields
    /// are added all the same.
    pub async fn enrich(&self, event: &mut Event) -> Vec<(&'static str, EnrichError)> {
        let mut failures = Vec::new();
        for (name, enricher) in &self.enrichers {
            match enricher().await {
                Ok(fields) => {
                    for (field, value) in fields {
                        event.entry(field).or_insert(value);
                    }
                }
                Err(error) => failures.push((*name, error)),
            }
        }
        failures
    }
}
