//! Hostile input: keys whose `Hash`, `Eq` or `Clone` panic, values whose `Clone` panics,
//! computations that never finish, computations that call the cache on their own key, and
//! odd panic payloads. The cache may pass a user panic on to the caller that triggered it,
//! but must never hang another caller, leave a flight behind, or stop working for other keys.

mod reliability_support;

use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use smartcache::{AsyncSmartCache, CacheError};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------
// Hostile types and helpers
// ---------------------------------------------------------------------------------------

/// Switches that make a key's trait impls panic.
#[derive(Debug, Default)]
struct Traps {
    hash: AtomicBool,
    eq: AtomicBool,
    clone: AtomicBool,
}

/// A key whose `Hash`, `Eq` (against an equal key) and `Clone` panic when armed.
#[derive(Debug)]
struct Key {
    id: u64,
    traps: Arc<Traps>,
}

impl Key {
    fn new(id: u64, traps: &Arc<Traps>) -> Self {
        Self {
            id,
            traps: Arc::clone(traps),
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert!(
            !self.traps.hash.load(SeqCst),
            "hostile hash of key {}",
            self.id
        );
        self.id.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        // Only against an equal key, so that unrelated keys never trip it by a hash collision.
        let armed = self.traps.eq.load(SeqCst) || other.traps.eq.load(SeqCst);
        assert!(
            !(self.id == other.id && armed),
            "hostile eq of key {}",
            self.id
        );
        self.id == other.id
    }
}

impl Eq for Key {}

impl Clone for Key {
    fn clone(&self) -> Self {
        assert!(
            !self.traps.clone.load(SeqCst),
            "hostile clone of key {}",
            self.id
        );
        Self::new(self.id, &self.traps)
    }
}

/// When a value's `Clone` panics: always, or at the n-th clone from now (countdown to 0).
#[derive(Debug)]
struct ValueTrap {
    always: AtomicBool,
    countdown: AtomicI64,
}

impl ValueTrap {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            always: AtomicBool::new(false),
            countdown: AtomicI64::new(-1),
        })
    }

    /// The `n`-th clone from now panics (and only that one).
    fn panic_at_clone(&self, n: i64) {
        self.countdown.store(n, SeqCst);
    }
}

#[derive(Debug)]
struct Value {
    n: u64,
    trap: Arc<ValueTrap>,
}

impl Clone for Value {
    fn clone(&self) -> Self {
        let left = self.trap.countdown.fetch_sub(1, SeqCst) - 1;
        assert!(
            !(self.trap.always.load(SeqCst) || left == 0),
            "hostile clone of value {}",
            self.n
        );
        Self {
            n: self.n,
            trap: Arc::clone(&self.trap),
        }
    }
}

type Cache = AsyncSmartCache<Key, Value, String>;
type Reply = Result<Value, CacheError<String>>;

/// Holds computations until opened (a closed semaphore lets everyone through).
#[derive(Clone)]
struct Gate(Arc<Semaphore>);

impl Gate {
    fn new() -> Self {
        Self(Arc::new(Semaphore::new(0)))
    }

    async fn pass(&self) {
        let _ = self.0.acquire().await;
    }

    fn open(&self) {
        self.0.close();
    }
}

/// Yields until `done` holds; fails instead of hanging.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

struct Fixture {
    cache: Arc<Cache>,
    /// The traps of key 1, the hostile one.
    traps: Arc<Traps>,
    /// Keys 2.. are never armed.
    calm: Arc<Traps>,
    value_trap: Arc<ValueTrap>,
    computations: Arc<AtomicUsize>,
}

impl Fixture {
    fn new() -> Self {
        reliability_support::quiet_expected_panics();
        Self {
            cache: Arc::new(Cache::new()),
            traps: Arc::default(),
            calm: Arc::default(),
            value_trap: ValueTrap::new(),
            computations: Arc::default(),
        }
    }

    fn hostile(&self) -> Key {
        Key::new(1, &self.traps)
    }

    fn calm(&self, id: u64) -> Key {
        assert_ne!(id, 1);
        Key::new(id, &self.calm)
    }

    fn value(&self, n: u64) -> Value {
        Value {
            n,
            trap: Arc::clone(&self.value_trap),
        }
    }

    /// Spawns a call of `key` whose computation counts itself, waits for `gate` (if any),
    /// and returns value `n`.
    fn spawn(&self, key: Key, n: u64, gate: Option<&Gate>) -> JoinHandle<Reply> {
        let (cache, gate) = (Arc::clone(&self.cache), gate.cloned());
        let (computations, value) = (Arc::clone(&self.computations), self.value(n));
        tokio::spawn(async move {
            cache
                .get_or_compute(key, || async move {
                    computations.fetch_add(1, SeqCst);
                    if let Some(gate) = gate {
                        gate.pass().await;
                    }
                    Ok(value)
                })
                .await
        })
    }

    /// A plain call that must succeed with value `n` (computed or stored).
    async fn value_of(&self, key: Key, n: u64) -> u64 {
        let reply = self
            .spawn(key, n, None)
            .await
            .expect("the call does not panic");
        reply.expect("a value").n
    }

    fn computed(&self) -> usize {
        self.computations.load(SeqCst)
    }
}

/// The message of a task that panicked.
async fn panic_of<T: std::fmt::Debug>(task: JoinHandle<T>) -> String {
    let payload = task.await.expect_err("the call panics").into_panic();
    (payload.downcast_ref::<String>().cloned())
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Other keys still compute, hit, and leave no flight behind (`stuck` flights stay).
async fn other_keys_work(f: &Fixture, stuck: u64) {
    let before = f.computed();
    assert_eq!(f.value_of(f.calm(7), 70).await, 70);
    assert_eq!(f.value_of(f.calm(7), 71).await, 70, "a hit");
    assert_eq!(f.computed(), before + 1);
    assert_eq!(f.cache.stats().in_flight, stuck);
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_key_whose_hash_panics_fails_its_own_caller_only() {
    let f = Fixture::new();
    f.traps.hash.store(true, SeqCst);
    let message = panic_of(f.spawn(f.hostile(), 1, None)).await;
    assert_eq!(message, "hostile hash of key 1");
    let hostile = f.hostile();
    let invalidate = std::panic::catch_unwind(AssertUnwindSafe(|| f.cache.invalidate(&hostile)));
    assert!(invalidate.is_err(), "invalidate hashes the key too");
    assert_eq!(f.computed(), 0, "nothing ran");
    other_keys_work(&f, 0).await;
    // The trap disarmed, the key works like any other.
    f.traps.hash.store(false, SeqCst);
    assert_eq!(f.value_of(f.hostile(), 1).await, 1);
    assert_eq!(f.cache.stats().total_entries, 2);
}

#[tokio::test]
async fn a_key_whose_eq_panics_fails_its_own_caller_and_the_stored_value_survives() {
    let f = Fixture::new();
    assert_eq!(f.value_of(f.hostile(), 1).await, 1);
    f.traps.eq.store(true, SeqCst);
    let message = panic_of(f.spawn(f.hostile(), 2, None)).await;
    assert_eq!(message, "hostile eq of key 1");
    other_keys_work(&f, 0).await;
    f.traps.eq.store(false, SeqCst);
    assert_eq!(f.value_of(f.hostile(), 3).await, 1, "still stored, a hit");
    assert_eq!(f.computed(), 2, "key 1 once, key 7 once");
}

#[tokio::test]
async fn a_key_whose_clone_panics_before_its_flight_starts_leaves_nothing_behind() {
    let f = Fixture::new();
    f.traps.clone.store(true, SeqCst);
    let message = panic_of(f.spawn(f.hostile(), 1, None)).await;
    assert_eq!(message, "hostile clone of key 1");
    assert_eq!(f.computed(), 0);
    assert_eq!(f.cache.stats().in_flight, 0);
    other_keys_work(&f, 0).await;
    f.traps.clone.store(false, SeqCst);
    assert_eq!(
        f.value_of(f.hostile(), 1).await,
        1,
        "the key computes again"
    );
}

#[tokio::test]
async fn a_key_whose_clone_panics_while_its_result_is_stored_ends_the_flight_for_everyone() {
    let f = Fixture::new();
    let gate = Gate::new();
    let leader = f.spawn(f.hostile(), 1, Some(&gate));
    until("the leader computes", || f.computed() == 1).await;
    let waiter = f.spawn(f.hostile(), 2, None);
    until("the waiter joined", || f.cache.stats().coalesced == 1).await;
    // Joining cloned the key; now storing the result clones it again, and that panics.
    f.traps.clone.store(true, SeqCst);
    gate.open();
    for caller in [leader, waiter] {
        let reply = caller.await.expect("the panic is caught");
        let Err(CacheError::Panicked { message }) = reply else {
            panic!("expected a panic answer, got {reply:?}");
        };
        assert_eq!(message, "hostile clone of key 1");
    }
    f.traps.clone.store(false, SeqCst);
    let stats = f.cache.stats();
    assert_eq!((stats.in_flight, stats.total_entries), (0, 0));
    assert_eq!(
        f.value_of(f.hostile(), 3).await,
        3,
        "no finished flight was left"
    );
    assert_eq!(f.computed(), 2);
}

/// With an `Eq` that panics only for a moment, while a finished flight leaves the map: the
/// flight stays in the map, and until `invalidate` or `clear`, every call of the key joins it
/// and is answered its old `Panicked` without computing.
#[tokio::test]
async fn a_key_whose_eq_panics_while_its_flight_ends_can_compute_again_afterwards() {
    let f = Fixture::new();
    let gate = Gate::new();
    let leader = f.spawn(f.hostile(), 1, Some(&gate));
    until("the leader computes", || f.computed() == 1).await;
    f.traps.eq.store(true, SeqCst);
    gate.open();
    let reply = leader.await.expect("the panic is caught");
    assert!(
        matches!(reply, Err(CacheError::Panicked { .. })),
        "{reply:?}"
    );
    f.traps.eq.store(false, SeqCst);
    assert_eq!(f.cache.stats().in_flight, 0);
    assert_eq!(
        f.value_of(f.hostile(), 2).await,
        2,
        "the key computes again"
    );
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_value_whose_clone_always_panics_is_answered_as_a_panic_and_not_stored() {
    let f = Fixture::new();
    f.value_trap.always.store(true, SeqCst);
    for attempt in 1..=2 {
        let reply = f.spawn(f.hostile(), 1, None).await.expect("caught");
        let Err(CacheError::Panicked { message }) = reply else {
            panic!("expected a panic answer, got {reply:?}");
        };
        assert_eq!(message, "hostile clone of value 1");
        assert_eq!(
            f.computed(),
            attempt,
            "every call computes: nothing is stored"
        );
    }
    let stats = f.cache.stats();
    assert_eq!((stats.load_failures, stats.total_entries), (2, 0));
    assert_eq!(stats.coalesced, 0, "no call joined a finished flight");
    f.value_trap.always.store(false, SeqCst);
    other_keys_work(&f, 0).await;
}

#[tokio::test]
async fn a_value_whose_clone_panics_for_the_driver_does_not_strand_its_waiters() {
    let f = Fixture::new();
    let gate = Gate::new();
    let leader = f.spawn(f.hostile(), 1, Some(&gate));
    until("the leader computes", || f.computed() == 1).await;
    let waiters: Vec<_> = (0..3).map(|n| f.spawn(f.hostile(), 10 + n, None)).collect();
    until("the waiters joined", || f.cache.stats().coalesced == 3).await;
    // Clone 1: the copy stored. Clone 2: the driver's answer, which panics.
    f.value_trap.panic_at_clone(2);
    gate.open();
    assert_eq!(panic_of(leader).await, "hostile clone of value 1");
    for waiter in waiters {
        let reply = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        let reply = reply.expect("no waiter hangs").expect("no panic");
        assert_eq!(reply.expect("the value").n, 1);
    }
    assert_eq!(f.value_of(f.hostile(), 5).await, 1, "the value was stored");
    assert_eq!(f.cache.stats().in_flight, 0);
}

#[tokio::test]
async fn a_value_whose_clone_panics_on_a_hit_releases_every_lock() {
    let f = Fixture::new();
    assert_eq!(f.value_of(f.hostile(), 1).await, 1);
    f.value_trap.always.store(true, SeqCst);
    assert_eq!(
        panic_of(f.spawn(f.hostile(), 2, None)).await,
        "hostile clone of value 1"
    );
    f.value_trap.always.store(false, SeqCst);
    // A read guard leaked by the unwinding hit would make this write wait for ever; it
    // runs on another thread so that the test fails rather than hangs.
    let (cache, key) = (Arc::clone(&f.cache), f.hostile());
    let writer = std::thread::spawn(move || cache.invalidate(&key));
    for _ in 0..1_000 {
        if writer.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        writer.is_finished(),
        "invalidate is blocked by a leaked lock"
    );
    assert!(writer.join().unwrap(), "the value was there");
    assert_eq!(f.value_of(f.hostile(), 3).await, 3);
}

// ---------------------------------------------------------------------------------------
// Computations
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_computation_that_never_finishes_holds_up_nobody_else() {
    let f = Fixture::new();
    let never = Gate::new(); // never opened
    let stuck = f.spawn(f.hostile(), 1, Some(&never));
    until("the stuck computation runs", || f.computed() == 1).await;
    other_keys_work(&f, 1).await;

    // A waiter on the stuck key can be cancelled; the flight goes on.
    let cache = Arc::clone(&f.cache);
    let waiter = cache.get_or_compute(f.hostile(), || async { unreachable!() });
    let outcome = tokio::time::timeout(Duration::from_secs(60), waiter).await;
    assert!(outcome.is_err(), "the waiter timed out");
    let stats = f.cache.stats();
    assert_eq!((stats.coalesced, stats.in_flight), (1, 1));

    // Invalidate detaches the stuck flight: the next call computes afresh.
    assert!(f.cache.invalidate(&f.hostile()), "a flight was detached");
    assert_eq!(f.value_of(f.hostile(), 2).await, 2);
    assert_eq!(f.value_of(f.hostile(), 3).await, 2, "stored, a hit");
    assert_eq!(f.cache.stats().in_flight, 1, "the stuck one still runs");

    // Cancelling its caller ends it, and it stores nothing.
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    let stats = f.cache.stats();
    assert_eq!((stats.in_flight, stats.total_entries), (0, 2));
    assert_eq!(f.value_of(f.hostile(), 4).await, 2);
}

/// A computation that calls the cache for its own key waits for its own flight: it never
/// finishes. This is the documented outcome (a computation may use the cache for *other*
/// keys). Cancelling the caller ends it cleanly.
#[tokio::test(start_paused = true)]
async fn a_computation_calling_its_own_key_is_answered_a_cycle_at_once() {
    let f = Fixture::new();
    let cache = Arc::clone(&f.cache);
    let (outer_key, inner_key) = (f.hostile(), f.hostile());
    let inner_runs = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&inner_runs);
    let (value, fallback) = (f.value(1), f.value(2));
    let reentrant = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move {
            let call = cache.get_or_compute(outer_key, || async {
                let again = cache
                    .get_or_compute(inner_key, || async {
                        inner.fetch_add(1, SeqCst);
                        Ok(value)
                    })
                    .await;
                match again {
                    Err(CacheError::Cycle) => Ok(fallback),
                    _ => Err("waiting for itself did not answer a cycle".to_owned()),
                }
            });
            tokio::time::timeout(Duration::from_secs(3_600), call).await
        }
    });
    let outcome = reentrant.await.expect("no panic");
    let answer = outcome.expect("no hang: answered before the timeout");
    assert_eq!(answer.expect("the outer computation succeeded").n, 2);
    assert_eq!(inner_runs.load(SeqCst), 0);
    other_keys_work(&f, 0).await;
    let stats = f.cache.stats();
    assert_eq!((stats.in_flight, stats.loads()), (0, 2));
    assert_eq!(
        f.value_of(f.hostile(), 5).await,
        2,
        "the key holds the outer computation's value"
    );
}

#[tokio::test]
async fn a_computation_may_call_the_cache_for_other_keys() {
    let f = Fixture::new();
    let cache = Arc::clone(&f.cache);
    let (calm, value) = (f.calm(2), f.value(20));
    let reply = cache
        .get_or_compute(f.hostile(), || async {
            let inner = cache.get_or_compute(calm, || async { Ok(value) }).await;
            let inner = inner.map_err(|e| e.to_string())?;
            Ok(Value {
                n: inner.n + 1,
                trap: inner.trap,
            })
        })
        .await;
    assert_eq!(reply.unwrap().n, 21);
    assert_eq!(f.cache.stats().total_entries, 2);
}

#[tokio::test]
async fn a_computation_that_primes_or_invalidates_its_own_key_stores_nothing() {
    let f = Fixture::new();
    let cache = Arc::clone(&f.cache);
    let (key, primed, computed) = (f.hostile(), f.value(100), f.value(1));
    let reply = cache
        .get_or_compute(f.hostile(), || async {
            cache.prime(key, primed);
            Ok(computed)
        })
        .await;
    assert_eq!(
        reply.unwrap().n,
        1,
        "its callers still get the computed value"
    );
    assert_eq!(f.value_of(f.hostile(), 2).await, 100, "the prime stays");

    let key = f.calm(3);
    let reply = cache
        .get_or_compute(f.calm(3), || async {
            assert!(cache.invalidate(&key), "its own flight is detached");
            Ok(f.value(30))
        })
        .await;
    assert_eq!(reply.unwrap().n, 30);
    assert_eq!(f.value_of(f.calm(3), 31).await, 31, "nothing was stored");
}

#[tokio::test]
async fn odd_panics_are_answered_as_panics() {
    let f = Fixture::new();
    let cache = &f.cache;
    // A panic payload that is not a string.
    let reply = cache
        .get_or_compute(f.calm(2), || async { std::panic::panic_any(42_u8) })
        .await;
    let Err(CacheError::Panicked { message }) = reply else {
        panic!("expected a panic answer, got {reply:?}");
    };
    assert_eq!(message, "panic with a non-string payload");
    // A panic in the closure itself, before any future exists.
    let reply = cache
        .get_or_compute(
            f.calm(3),
            || -> std::future::Ready<Result<Value, String>> {
                panic!("injected panic in the closure")
            },
        )
        .await;
    assert!(
        matches!(reply, Err(CacheError::Panicked { message }) if message == "injected panic in the closure")
    );
    // In the shared form too.
    let reply = cache
        .get_or_compute_shared(
            f.calm(4),
            || -> std::future::Ready<Result<Value, String>> {
                panic!("injected panic in the shared closure")
            },
        )
        .await;
    assert!(reply.is_err_and(|e| e.is_panic()));
    // In the blocking form, off the runtime.
    let blocking = Arc::clone(cache);
    let key = f.calm(5);
    let reply = tokio::task::spawn_blocking(move || {
        blocking.get_or_compute_blocking(key, || panic!("injected panic in a blocking call"))
    })
    .await
    .expect("caught");
    assert!(reply.is_err_and(|e| e.is_panic()));
    let stats = f.cache.stats();
    assert_eq!(
        (stats.load_failures, stats.in_flight, stats.total_entries),
        (4, 0, 0)
    );
    other_keys_work(&f, 0).await;
}
