//! [`RedisTier`]: the connection, the breaker, the event listener, and the protocol's
//! operations for one cache's namespace ([`Namespace`]).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc};

use super::breaker::Breaker;
use super::protocol::{Event, Names, Scripts};

/// Settings of a [`RedisTier`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TierConfig {
    /// How long a lease lasts without renewal: a process killed while computing delays the
    /// others by at most this. Renewed every third of it while the computation runs.
    /// Default 10 s.
    pub lease: Duration,
    /// The longest any one command may take before it counts as a fault. Default 250 ms.
    pub command_timeout: Duration,
    /// Faults in a row that open the breaker (every call local-only). Default 3.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one call probes Redis again. Default 2 s.
    pub breaker_open_for: Duration,
    /// The longest a waiter waits for an event before it looks again (a lost event costs
    /// at most this). Default 100 ms.
    pub poll_cap: Duration,
}

impl TierConfig {
    /// Sets [`lease`](Self::lease).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets [`command_timeout`](Self::command_timeout).
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets [`breaker_threshold`](Self::breaker_threshold) and
    /// [`breaker_open_for`](Self::breaker_open_for).
    #[must_use]
    pub fn with_breaker(mut self, threshold: u32, open_for: Duration) -> Self {
        self.breaker_threshold = threshold;
        self.breaker_open_for = open_for;
        self
    }

    /// Sets [`poll_cap`](Self::poll_cap).
    #[must_use]
    pub fn with_poll_cap(mut self, cap: Duration) -> Self {
        self.poll_cap = cap;
        self
    }
}

impl Default for TierConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
            command_timeout: Duration::from_millis(250),
            breaker_threshold: 3,
            breaker_open_for: Duration::from_secs(2),
            poll_cap: Duration::from_millis(100),
        }
    }
}

/// Why [`RedisTier::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisTierError {
    /// The URL is not a Redis URL, or the client could not be set up.
    Client(redis::RedisError),
    /// No connection within the command timeout (ten times it, for the first connection).
    Unreachable,
}

impl fmt::Display for RedisTierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(_) => f.write_str("cannot set up the redis client"),
            Self::Unreachable => f.write_str("redis is unreachable"),
        }
    }
}

impl std::error::Error for RedisTierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(error) => Some(error),
            Self::Unreachable => None,
        }
    }
}

/// Counters of a tier, shared by every cache on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierStats {
    /// Commands that failed or timed out.
    pub redis_errors: u64,
    /// Times the breaker opened (the tier went local-only).
    pub breaker_opened: u64,
    /// Time spent with the breaker open.
    pub degraded: Duration,
}

/// A handle on a shared tier: cheap to clone, one connection per process however many
/// handles and caches use it.
///
/// ```no_run
/// # async fn demo() -> Result<(), smartcache::redis::RedisTierError> {
/// let tier = smartcache::redis::RedisTier::connect("redis://127.0.0.1:6379").await?;
/// smartcache::redis::install(tier);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Tier>,
}

impl fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What a namespace does with an event of its channel.
pub(crate) type Listener = dyn Fn(&Event) + Send + Sync;

struct Tier {
    connection: ConnectionManager,
    config: TierConfig,
    breaker: Breaker,
    scripts: Scripts,
    /// Waiters per channel and key, woken by that key's events.
    waiters: DashMap<(Vec<u8>, Vec<u8>), Arc<Notify>>,
    /// What each namespace does with its events (its caches' local copies), by channel.
    listeners: DashMap<Vec<u8>, Weak<Listener>>,
    redis_errors: AtomicU64,
    breaker_opened: AtomicU64,
    /// This process's name in events (random per tier): its own events are not news to it.
    origin: u64,
}

impl RedisTier {
    /// Connects to the Redis server at `url` (`redis://host:port/db`), with the default
    /// [`TierConfig`].
    ///
    /// # Errors
    ///
    /// [`RedisTierError`] if the URL is invalid or the server does not answer.
    pub async fn connect(url: &str) -> Result<Self, RedisTierError> {
        let client = Client::open(url).map_err(RedisTierError::Client)?;
        Self::from_client(client, TierConfig::default()).await
    }

    /// Uses an existing client (its address, database and credentials), switched to RESP3
    /// for the push messages that carry the tier's events.
    ///
    /// # Errors
    ///
    /// [`RedisTierError`] if the server does not answer.
    pub async fn from_client(client: Client, config: TierConfig) -> Result<Self, RedisTierError> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            Client::open(info.set_redis_settings(settings)).map_err(RedisTierError::Client)?;
        let (pushes, events) = mpsc::unbounded_channel();
        let manager = ConnectionManagerConfig::new()
            .set_push_sender(pushes)
            .set_automatic_resubscription()
            .set_response_timeout(Some(config.command_timeout))
            .set_connection_timeout(Some(config.command_timeout))
            .set_number_of_retries(1);
        let first = config.command_timeout.saturating_mul(10);
        let connection =
            tokio::time::timeout(first, ConnectionManager::new_with_config(client, manager))
                .await
                .map_err(|_| RedisTierError::Unreachable)?
                .map_err(RedisTierError::Client)?;
        let tier = Arc::new(Tier {
            connection,
            breaker: Breaker::new(config.breaker_threshold, config.breaker_open_for),
            config,
            scripts: Scripts::new(),
            waiters: DashMap::new(),
            listeners: DashMap::new(),
            redis_errors: AtomicU64::new(0),
            breaker_opened: AtomicU64::new(0),
            origin: random_u64(),
        });
        tokio::spawn(listen(Arc::downgrade(&tier), events));
        Ok(Self { inner: tier })
    }

    /// The longest a waiter waits before it looks again.
    pub(crate) fn poll_cap(&self) -> Duration {
        self.inner.config.poll_cap
    }

    /// How long a lease lasts without renewal.
    pub(crate) fn lease_time(&self) -> Duration {
        self.inner.config.lease
    }

    /// The tier's counters.
    #[must_use]
    pub fn stats(&self) -> TierStats {
        TierStats {
            redis_errors: self.inner.redis_errors.load(Relaxed),
            breaker_opened: self.inner.breaker_opened.load(Relaxed),
            degraded: self.inner.breaker.degraded(),
        }
    }

    /// Whether the tier runs local-only now (its breaker is open).
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// The namespace of a cache named `name` whose types have fingerprint `schema`; its
    /// events go to `on_event` (held weakly: dropping it stops them).
    pub(crate) async fn namespace(
        &self,
        name: &str,
        schema: u64,
        on_event: &Arc<Listener>,
    ) -> Namespace {
        let names = Names::new(name, schema);
        self.inner
            .listeners
            .insert(names.channel(), Arc::downgrade(on_event));
        let namespace = Namespace {
            tier: self.clone(),
            names,
            generation: Arc::new(AtomicU64::new(0)),
        };
        namespace.subscribe().await;
        namespace.refresh_generation().await;
        namespace
    }
}

/// The answer of a command: `Err(Degraded)` when Redis could not be asked or did not answer
/// in time; the caller then goes on local-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Degraded {
    /// The breaker is open: Redis was not asked.
    Open,
    /// The command failed, timed out, or got an answer this version does not understand.
    Fault,
}

impl Tier {
    /// Runs one command under the breaker and the command timeout.
    async fn run<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Degraded> {
        if !self.breaker.allow() {
            return Err(Degraded::Open);
        }
        if let Ok(Ok(answer)) = tokio::time::timeout(self.config.command_timeout, command).await {
            if self.breaker.success() {
                crate::trace::tier_recovered();
                self.reconnected();
            }
            return Ok(answer);
        }
        // An error or the timeout: either way a fault.
        self.redis_errors.fetch_add(1, Relaxed);
        if self.breaker.fault() {
            self.breaker_opened.fetch_add(1, Relaxed);
            crate::trace::tier_degraded(self.config.breaker_open_for);
        }
        Err(Degraded::Fault)
    }

    /// Tells every namespace that events may have been missed (see [`Event::Reconnected`]).
    fn reconnected(&self) {
        let listeners: Vec<_> = self.listeners.iter().filter_map(|l| l.upgrade()).collect();
        for listener in listeners {
            listener(&Event::Reconnected);
        }
    }

    fn dispatch(&self, channel: &[u8], event: &Event) {
        if let Some(key) = event.key() {
            if let Some(waiters) = self.waiters.get(&(channel.to_vec(), key.to_vec())) {
                waiters.notify_waiters();
            }
        } else {
            // A clear concerns every key: wake every waiter of the channel.
            for waiters in &self.waiters {
                if waiters.key().0 == channel {
                    waiters.notify_waiters();
                }
            }
        }
        let listener = self.listeners.get(channel).and_then(|l| l.upgrade());
        if let Some(listener) = listener {
            listener(event);
        }
    }
}

/// Reads the connection's push messages until the tier is dropped, and hands each event to
/// its namespace.
async fn listen(tier: Weak<Tier>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    while let Some(push) = pushes.recv().await {
        let Some(tier) = tier.upgrade() else { return };
        if push.kind == PushKind::Disconnection {
            tier.reconnected();
            continue;
        }
        if push.kind != PushKind::Message {
            continue;
        }
        // `message`: [channel, payload].
        if let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() {
            if let Some(event) = Event::decode(payload) {
                tier.dispatch(channel, &event);
            }
        }
    }
}

/// What [`Namespace::lookup_or_lease`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// A usable entry (its envelope) and its age on Redis's clock.
    Entry { envelope: Vec<u8>, age: Duration },
    /// No usable entry, and the lease is ours; the old entry, if there is one, comes along.
    Leased { old: Option<(Vec<u8>, Duration)> },
    /// Another process holds the lease, for this much longer at most.
    Held { for_at_most: Duration },
}

/// One cache's view of the tier.
#[derive(Clone)]
pub(crate) struct Namespace {
    tier: RedisTier,
    names: Names,
    /// The generation this process believes current; a clear event moves it on.
    generation: Arc<AtomicU64>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn duration_ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl Namespace {
    fn tier(&self) -> &Tier {
        &self.tier.inner
    }

    fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Whether an event was caused by this process.
    pub(crate) fn is_own(&self, event: &Event) -> bool {
        event.origin() == Some(self.tier().origin)
    }

    fn event_set(&self, key: &[u8]) -> Vec<u8> {
        let (origin, key) = (self.tier().origin, key.to_vec());
        Event::Set { origin, key }.encode()
    }

    fn event_released(&self, key: &[u8]) -> Vec<u8> {
        let (origin, key) = (self.tier().origin, key.to_vec());
        Event::Released { origin, key }.encode()
    }

    fn event_deleted(&self, key: &[u8]) -> Vec<u8> {
        let (origin, key) = (self.tier().origin, key.to_vec());
        Event::Deleted { origin, key }.encode()
    }

    async fn subscribe(&self) {
        let mut connection = self.tier().connection.clone();
        let channel = self.names.channel();
        let _ = self.tier().run(connection.subscribe(channel)).await;
    }

    /// Reads the current generation (after connecting, and after a clear event).
    pub(crate) async fn refresh_generation(&self) {
        let mut connection = self.tier().connection.clone();
        let key = self.names.generation();
        let mut get = redis::cmd("GET");
        get.arg(key);
        let read = self
            .tier()
            .run(get.query_async::<Option<u64>>(&mut connection))
            .await;
        if let Ok(generation) = read {
            self.generation.fetch_max(generation.unwrap_or(0), Relaxed);
        }
    }

    /// Moves the generation on after a clear event (no round trip).
    pub(crate) fn cleared(&self, generation: u64) {
        self.generation.fetch_max(generation, Relaxed);
    }

    /// Looks `key` up; without a usable entry, tries to take its lease with `token`.
    pub(crate) async fn lookup_or_lease(&self, key: &[u8], token: &str) -> Result<Found, Degraded> {
        let generation = self.generation();
        let mut connection = self.tier().connection.clone();
        let mut invocation = self.tier().scripts.lookup_or_lease.prepare_invoke();
        invocation
            .key(self.names.data(generation, key))
            .key(self.names.lease(generation, key))
            .arg(token)
            .arg(millis(self.tier().config.lease));
        let reply: Vec<Value> = self
            .tier()
            .run(invocation.invoke_async(&mut connection))
            .await?;
        Ok(match reply.as_slice() {
            [Value::Int(1), Value::BulkString(envelope), Value::Int(age)] => Found::Entry {
                envelope: envelope.clone(),
                age: duration_ms(*age),
            },
            [Value::Int(2), Value::BulkString(old), Value::Int(age)] => Found::Leased {
                old: Some((old.clone(), duration_ms(*age))),
            },
            [Value::Int(2), ..] => Found::Leased { old: None },
            [Value::Int(3), Value::Int(ttl)] => Found::Held {
                for_at_most: duration_ms(*ttl),
            },
            // An answer this version does not understand: treat Redis as unusable for it.
            _ => return Err(Degraded::Fault),
        })
    }

    /// Stores `envelope` if `token` still holds the key's lease: usable for `usable` (`None`:
    /// for ever), kept for `keep` (`None`: no expiry). `Ok(false)`: the lease was lost.
    pub(crate) async fn commit(
        &self,
        key: &[u8],
        token: &str,
        envelope: &[u8],
        usable: Option<Duration>,
        keep: Option<Duration>,
    ) -> Result<bool, Degraded> {
        let generation = self.generation();
        let mut connection = self.tier().connection.clone();
        let mut invocation = self.tier().scripts.commit.prepare_invoke();
        invocation
            .key(self.names.data(generation, key))
            .key(self.names.lease(generation, key))
            .arg(token)
            .arg(envelope)
            .arg(usable.map_or(-1, |d| i64::try_from(millis(d)).unwrap_or(i64::MAX)))
            .arg(keep.map_or(0, millis))
            .arg(self.names.channel())
            .arg(self.event_set(key));
        let stored: i64 = self
            .tier()
            .run(invocation.invoke_async(&mut connection))
            .await?;
        Ok(stored == 1)
    }

    /// Extends the lease while `token` holds it; `Ok(false)` if it was lost.
    pub(crate) async fn renew(&self, key: &[u8], token: &str) -> Result<bool, Degraded> {
        let generation = self.generation();
        let mut connection = self.tier().connection.clone();
        let mut invocation = self.tier().scripts.renew.prepare_invoke();
        invocation
            .key(self.names.lease(generation, key))
            .arg(token)
            .arg(millis(self.tier().config.lease));
        let renewed: i64 = self
            .tier()
            .run(invocation.invoke_async(&mut connection))
            .await?;
        Ok(renewed == 1)
    }

    /// Frees the lease without a result, waking the waiters.
    pub(crate) async fn release(&self, key: &[u8], token: &str) -> Result<bool, Degraded> {
        let generation = self.generation();
        let mut connection = self.tier().connection.clone();
        let mut invocation = self.tier().scripts.release.prepare_invoke();
        invocation
            .key(self.names.lease(generation, key))
            .arg(token)
            .arg(self.names.channel())
            .arg(self.event_released(key));
        let released: i64 = self
            .tier()
            .run(invocation.invoke_async(&mut connection))
            .await?;
        Ok(released == 1)
    }

    /// Removes the key's entry and lease everywhere, and tells every process.
    pub(crate) async fn invalidate(&self, key: &[u8]) -> Result<(), Degraded> {
        let generation = self.generation();
        let mut connection = self.tier().connection.clone();
        let mut invocation = self.tier().scripts.invalidate.prepare_invoke();
        invocation
            .key(self.names.data(generation, key))
            .key(self.names.lease(generation, key))
            .arg(self.names.channel())
            .arg(self.event_deleted(key));
        self.tier()
            .run(invocation.invoke_async::<i64>(&mut connection))
            .await
            .map(drop)
    }

    /// Starts a new generation (every entry of the old one is gone for every process at
    /// once) and tells every process; the old generation's keys are then deleted in the
    /// background, a batch at a time.
    pub(crate) async fn clear(&self) -> Result<(), Degraded> {
        let mut connection = self.tier().connection.clone();
        let mut invocation = self.tier().scripts.clear.prepare_invoke();
        invocation
            .key(self.names.generation())
            .arg(self.names.channel());
        let generation: u64 = self
            .tier()
            .run(invocation.invoke_async(&mut connection))
            .await?;
        self.cleared(generation);
        let namespace = self.clone();
        tokio::spawn(async move { namespace.delete_older_than(generation).await });
        Ok(())
    }

    /// Deletes the keys of generations before `current`, a `SCAN` batch at a time.
    async fn delete_older_than(&self, current: u64) {
        let mut connection = self.tier().connection.clone();
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(self.names.all_keys())
                .arg("COUNT")
                .arg(500);
            let scanned = scan.query_async::<(u64, Vec<Vec<u8>>)>(&mut connection);
            let Ok((next, keys)) = self.tier().run(scanned).await else {
                return; // Redis went away: the keys expire or go with the next clear
            };
            let old: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|key| self.names.is_older_than(key, current))
                .collect();
            if !old.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(old);
                let _ = self
                    .tier()
                    .run(unlink.query_async::<i64>(&mut connection))
                    .await;
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }

    /// Waits until an event about `key` arrives, or `at_most` (capped by the tier's
    /// `poll_cap`) has passed: the caller then looks again. Whether an event came.
    pub(crate) async fn wait_for(&self, key: &[u8], at_most: Duration) -> bool {
        let slot = (self.names.channel(), key.to_vec());
        let notify = Arc::clone(self.tier().waiters.entry(slot.clone()).or_default().value());
        let notified = notify.notified();
        let wait = at_most.min(self.tier().config.poll_cap);
        let woken = tokio::time::timeout(wait, notified).await.is_ok();
        drop(notify);
        // The last waiter of a key takes its slot away (the map's entry holds one handle).
        self.tier()
            .waiters
            .remove_if(&slot, |_, notify| Arc::strong_count(notify) == 1);
        woken
    }
}

/// A random number, from the process's randomly seeded hasher and the clock: for lease
/// tokens and origins, which only need to differ between processes and calls.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

static INSTALLED: OnceLock<RedisTier> = OnceLock::new();

/// Installs `tier` as the process-wide tier of the caches generated by `#[smart_cached]`
/// with the `shared` option. Returns `false` (and keeps the first) if one was installed
/// already.
pub fn install(tier: RedisTier) -> bool {
    INSTALLED.set(tier).is_ok()
}

/// The tier installed with [`install`], if any.
#[must_use]
pub fn installed() -> Option<RedisTier> {
    INSTALLED.get().cloned()
}
