//! Hits by borrowed keys allocate nothing, and memory comes back after `clear` and after
//! expiry. Measured with a counting global allocator; the scenarios run one after the other
//! in a single test, since the allocator counts every thread.

use std::future::Future;
use std::hash::Hash;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use smartcache::{AsyncSmartCache, BorrowedKey, KeyHasher, KeyRef};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    INSTRUMENTED_SYSTEM.stats().allocations + INSTRUMENTED_SYSTEM.stats().reallocations
}

/// The fewest allocations (process-wide, so another thread of the harness may add some to a
/// round) that one of five rounds of `round` made: a real allocation per call shows in every
/// round.
fn fewest_allocations(mut round: impl FnMut()) -> usize {
    (0..5)
        .map(|_| {
            let before = allocations();
            round();
            allocations() - before
        })
        .min()
        .unwrap_or(usize::MAX)
}

fn live_bytes() -> i128 {
    let stats = INSTRUMENTED_SYSTEM.stats();
    i128::try_from(stats.bytes_allocated).unwrap()
        - i128::try_from(stats.bytes_deallocated).unwrap()
}

/// Polls a future that must finish at once (a hit never waits), with no runtime.
fn now<T>(future: impl Future<Output = T>) -> T {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a hit was pending"),
    }
}

/// `(&str, u32)` for the key `(String, u32)`.
#[derive(Hash)]
struct PairRef<'a>(&'a str, u32);

impl BorrowedKey<(String, u32)> for PairRef<'_> {
    fn equivalent(&self, key: &(String, u32)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
    fn to_key(&self) -> (String, u32) {
        (self.0.to_owned(), self.1)
    }
}

fn string_hits_allocate_nothing(hasher: KeyHasher, capacity: Option<u64>) {
    let mut builder = AsyncSmartCache::<String, u64>::builder().key_hasher(hasher);
    if let Some(capacity) = capacity {
        builder = builder.max_capacity(capacity);
    }
    let cache = builder.build();
    let miss = now(cache.get_or_compute_ref("user:42", || async { Ok(42) }));
    assert_eq!(miss.unwrap(), 42);
    let allocated = fewest_allocations(|| {
        for _ in 0..1_000 {
            let hit = now(cache.get_or_compute_ref("user:42", || async { Ok(0) }));
            assert_eq!(hit.unwrap(), 42);
        }
    });
    assert_eq!(allocated, 0, "{hasher:?}, capacity {capacity:?}");
    assert_eq!(cache.stats().hits, 5_000);
    // Any other key is a miss that builds its owned key and stores it.
    let other = now(cache.get_or_compute_ref("user:7", || async { Ok(7) }));
    assert_eq!(other.unwrap(), 7);
    assert_eq!(cache.get("user:7"), Some(7));
}

fn tuple_hits_allocate_nothing() {
    let cache: AsyncSmartCache<(String, u32), u64> = AsyncSmartCache::new();
    let key = PairRef("ada", 1);
    assert_eq!(
        now(cache.get_or_compute_ref(&key, || async { Ok(1) })).unwrap(),
        1
    );
    let allocated = fewest_allocations(|| {
        for _ in 0..100 {
            let hit = now(cache.get_or_compute_ref(&key, || async { Ok(0) }));
            assert_eq!(hit.unwrap(), 1);
            let shared = now(cache.get_or_compute_shared_ref(&key, || async { Ok(0) }));
            assert_eq!(shared.unwrap(), 1);
        }
    });
    assert_eq!(allocated, 0);
    // A different second field is another key.
    let other = now(cache.get_or_compute_ref(&PairRef("ada", 2), || async { Ok(2) }));
    assert_eq!(other.unwrap(), 2);
    assert_eq!(cache.entry_count(), 2);
}

/// The keys `#[smart_cached]` builds: tuples of the arguments, looked up by `KeyRef`.
fn key_ref_hits_allocate_nothing() {
    let single: AsyncSmartCache<(String,), u64> = AsyncSmartCache::new();
    let name: &str = "ada";
    let first = now(single.get_or_compute_ref(&KeyRef((name,)), || async { Ok(3) }));
    assert_eq!(first.unwrap(), 3);
    let pair: AsyncSmartCache<(String, u64), u64> = AsyncSmartCache::new();
    let id = 7_u64;
    let first = now(pair.get_or_compute_ref(&KeyRef((name, &id)), || async { Ok(4) }));
    assert_eq!(first.unwrap(), 4);
    let allocated = fewest_allocations(|| {
        for _ in 0..100 {
            let hit = now(single.get_or_compute_ref(&KeyRef((name,)), || async { Ok(0) }));
            assert_eq!(hit.unwrap(), 3);
            let hit = now(pair.get_or_compute_ref(&KeyRef((name, &id)), || async { Ok(0) }));
            assert_eq!(hit.unwrap(), 4);
        }
    });
    assert_eq!(allocated, 0);
    assert_eq!(single.get(&("ada".to_owned(),)), Some(3));
    assert_eq!(pair.get(&("ada".to_owned(), 7)), Some(4));
    assert_eq!(pair.stats().hits, 501);
}

/// Bytes held now, once the reclaimer thread has freed what was handed to it (the tables of
/// 64 KiB and more that `clear` swapped out and that shard shrinks emptied).
fn settled_live_bytes() -> i128 {
    smartcache::__private::flush_reclaimer();
    live_bytes()
}

/// `entries` values, cleared: at 100,000 the old tables are freed by `clear` itself, at
/// 400,000 (tables of 200 KiB) by the reclaimer thread.
fn clear_gives_memory_back(entries: u64) {
    let cache: AsyncSmartCache<u64, u64> = AsyncSmartCache::new();
    let baseline = settled_live_bytes();
    for key in 0..entries {
        cache.prime(key, key);
    }
    let full = live_bytes() - baseline;
    assert!(full > 1_000_000, "{entries} entries take {full} bytes?");
    cache.clear();
    let left = settled_live_bytes() - baseline;
    assert!(
        left < 64 * 1024,
        "{left} of {full} bytes still held after clear"
    );
}

/// `entries` values expire while writes store 100 others; as above, at 400,000 the shrunk
/// shards' old tables are freed by the reclaimer thread. The 100 live values survive the
/// shrinks (their entries move into the new tables).
fn expiry_gives_memory_back(entries: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache: AsyncSmartCache<u64, u64> = AsyncSmartCache::builder()
            .time_to_live(Duration::from_secs(1))
            .build();
        let baseline = settled_live_bytes();
        for key in 0..entries {
            cache.prime(key, key);
        }
        let full = live_bytes() - baseline;
        tokio::time::advance(Duration::from_secs(2)).await;
        // Writes for 100 keys: each removes up to 64 expired entries and may shrink a shard.
        let rounds = entries / 64 + 2_000;
        for round in 0..rounds {
            cache.prime(1_000_000 + round % 100, round);
        }
        assert_eq!(cache.entry_count(), 100);
        for key in 0..100 {
            // The last round that wrote `key`.
            let last = rounds - 1 - (rounds - 1 - key) % 100;
            assert_eq!(cache.get(&(1_000_000 + key)), Some(last));
        }
        // What stays is the shards' smallest tables (one shrinks only when its table is over
        // four times too large) and a queue block holding the few live items.
        let left = settled_live_bytes() - baseline;
        assert!(
            left * 16 < full,
            "{left} of {full} bytes still held after expiry"
        );
    });
}

fn assert_hash_compatible<K: Hash, Q: Hash + ?Sized>(key: &K, borrowed: &Q) {
    use std::hash::BuildHasher;
    let state = std::hash::RandomState::new();
    assert_eq!(state.hash_one(key), state.hash_one(borrowed));
}

#[test]
fn borrowed_keys_and_memory() {
    assert_hash_compatible(&("ada".to_owned(), 1_u32), &PairRef("ada", 1));
    assert_hash_compatible(&("ada".to_owned(), 1_u32), &KeyRef(("ada", &1_u32)));
    assert_hash_compatible(&("ada".to_owned(),), &KeyRef(("ada",)));
    for hasher in [KeyHasher::Foldhash, KeyHasher::SipHash] {
        for capacity in [None, Some(100)] {
            string_hits_allocate_nothing(hasher, capacity);
        }
    }
    tuple_hits_allocate_nothing();
    key_ref_hits_allocate_nothing();
    clear_gives_memory_back(100_000);
    clear_gives_memory_back(400_000);
    expiry_gives_memory_back(50_000);
    expiry_gives_memory_back(400_000);
}
