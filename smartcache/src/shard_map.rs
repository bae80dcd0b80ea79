//! [`ShardMap`]: the store's hash map, split into shards that each sit behind their own
//! read-write lock, as `DashMap` does, but with any number of shards.
//!
//! # Why not `DashMap`
//!
//! `DashMap` needs a power-of-two shard count, and every shard's table holds a power-of-two
//! number of buckets, filled to at most 7/8. A cache's tables therefore hold between 1.14 and
//! 2.29 buckets per entry, depending only on where the entry count falls between two powers
//! of two: at a million entries, 2.1 (the tables reach 2^21 buckets in all, just past
//! 7/8 · 2^20), 52 bytes per `u64 → u64` entry where 29 would do.
//!
//! A cache with a capacity knows its final entry count, so it can pick a shard count that
//! fills each table close to the maximum load when the cache is full ([`bounded_layout`]).
//! That needs shard counts that are not powers of two: a shard is picked by a multiply and a
//! shift ([`ShardMap::shard_index`]), which works for any count.
//!
//! # Hash bits
//!
//! A table picks a bucket from a hash's low bits and keeps its top 7 bits as a tag, so the
//! shard is picked from the 32 bits below the tag: the three uses stay independent for
//! tables of up to 2^25 buckets per shard.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::ops::RangeInclusive;

use dashmap::{RwLock, RwLockReadGuard};
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::hasher::MapHasher;

/// One shard's table.
pub(crate) type Table<K, T> = HashTable<(K, T)>;

/// One shard: its lock and table, alone on its cache lines (two, for the adjacent-line
/// prefetcher), so that readers of neighbouring shards never share a line.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Shard<K, T>(RwLock<Table<K, T>>);

impl<K, T> Shard<K, T> {
    fn new() -> Self {
        Self(RwLock::new(HashTable::new()))
    }

    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Table<K, T>> {
        self.0.read()
    }

    pub(crate) fn write(&self) -> dashmap::RwLockWriteGuard<'_, Table<K, T>> {
        self.0.write()
    }
}

/// A sharded hash map of `K` to `T` (see the module docs).
#[derive(Debug)]
pub(crate) struct ShardMap<K, T> {
    // INVARIANT: not empty, and at most `u32::MAX` shards (`shard_index` multiplies by the
    // count as a 32-bit number).
    shards: Box<[Shard<K, T>]>,
    hasher: MapHasher,
}

impl<K: Hash + Eq, T> ShardMap<K, T> {
    /// An empty map of `shards` shards (one at least, at most 2^16).
    pub(crate) fn new(hasher: MapHasher, shards: usize) -> Self {
        let shards = shards.clamp(1, 1 << 16);
        Self {
            shards: (0..shards).map(|_| Shard::new()).collect(),
            hasher,
        }
    }

    pub(crate) fn hasher(&self) -> &MapHasher {
        &self.hasher
    }

    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn shards(&self) -> &[Shard<K, T>] {
        &self.shards
    }

    /// The index of the shard that holds the keys hashed to `hash`: below the shard count.
    #[inline]
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        // The 32 bits below the table's 7-bit tag (see the module docs), scaled to the
        // count: `(x * n) >> 32 < n` for every 32-bit `x`.
        let bits = (hash << 7) >> 32;
        #[allow(clippy::cast_possible_truncation)] // below the count, itself a usize
        let index = ((bits * self.shards.len() as u64) >> 32) as usize;
        index
    }

    /// The shard of the keys hashed to `hash`.
    #[inline]
    pub(crate) fn shard(&self, hash: u64) -> &Shard<K, T> {
        &self.shards[self.shard_index(hash)]
    }

    /// `read` of the item stored under `key`, under its shard's read lock.
    pub(crate) fn read<Q, R>(&self, key: &Q, read: impl FnOnce(&T) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let table = self.shard(hash).read();
        let (_, item) = table.find(hash, |(stored, _)| stored.borrow() == key)?;
        Some(read(item))
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(key, |_| ()).is_some()
    }

    /// Stores `item` under `key`; the item it replaced, if any.
    pub(crate) fn insert(&self, key: K, item: T) -> Option<T> {
        let hash = self.hash(&key);
        let mut table = self.shard(hash).write();
        let entry = table.entry(
            hash,
            |(stored, _)| *stored == key,
            |(stored, _)| self.hasher.hash_one(stored),
        );
        match entry {
            Entry::Occupied(mut occupied) => {
                Some(std::mem::replace(&mut occupied.get_mut().1, item))
            }
            Entry::Vacant(vacant) => {
                vacant.insert((key, item));
                None
            }
        }
    }

    /// Replaces the item stored under `key` with `item`; `item` back if there is none.
    pub(crate) fn replace(&self, key: &K, item: T) -> Result<(), T> {
        let hash = self.hash(key);
        let mut table = self.shard(hash).write();
        match table.find_mut(hash, |(stored, _)| stored == key) {
            Some((_, stored)) => {
                *stored = item;
                Ok(())
            }
            None => Err(item),
        }
    }

    /// Removes the entry of `key` if `remove` holds for its item (called under the shard's
    /// write lock, once at most); the entry removed.
    pub(crate) fn remove_if<Q>(&self, key: &Q, remove: impl FnOnce(&T) -> bool) -> Option<(K, T)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let mut table = self.shard(hash).write();
        let found = table
            .find_entry(hash, |(stored, _)| stored.borrow() == key)
            .ok()?;
        if !remove(&found.get().1) {
            return None;
        }
        Some(found.remove().0)
    }
}

/// The layout of a bounded cache's map: `(shards, buckets)`, a shard count within `shards`
/// and the buckets each shard's table ends with, for `capacity` entries; `None` if no count
/// in that range suits.
///
/// A table of `b` buckets (a power of two) holds a shard's share of the capacity if that
/// share stays within 7/8 of `b` less three standard deviations of a shard's entry count
/// (keys fall into shards at random), so that at most one table in hundreds doubles once the
/// cache is full. Of the table sizes whose shard count is in the range, the layout takes the
/// smallest whose buckets in all are within 5% of the fewest: as many shards as the memory
/// allows. The tables then hold about 1.2 buckets per entry at large capacities (a
/// power-of-two shard count leaves 1.14 to 2.29), more at small ones, where the margin
/// weighs more.
pub(crate) fn bounded_layout(
    capacity: u64,
    shards: RangeInclusive<usize>,
) -> Option<(usize, usize)> {
    let (fewest_shards, most_shards) = (*shards.start() as u64, *shards.end() as u64);
    // (shards, buckets per shard) of each table size whose count is in range, smallest
    // table first; the count falls as the table grows.
    let mut layouts = Vec::new();
    let mut buckets: u64 = 16;
    loop {
        let full = buckets / 8 * 7;
        let spread = 3 * (integer_sqrt(full) + 1);
        let per_shard = full.saturating_sub(spread).max(1);
        let shards = capacity.div_ceil(per_shard).max(1);
        if shards < fewest_shards || buckets >= 1 << 40 {
            break;
        }
        if shards <= most_shards {
            layouts.push((shards, buckets));
        }
        buckets *= 2;
    }
    let fewest = layouts.iter().map(|&(s, b)| u128::from(s * b)).min()?;
    let (shards, buckets) = layouts
        .into_iter()
        .find(|&(s, b)| u128::from(s * b) * 100 <= fewest * 105)?;
    Some((
        usize::try_from(shards).ok()?,
        usize::try_from(buckets).ok()?,
    ))
}

/// ⌊√n⌋.
fn integer_sqrt(n: u64) -> u64 {
    // Newton's method from above; every step is a u64 operation that cannot overflow.
    if n < 2 {
        return n;
    }
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = x.midpoint(n / x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(shards: usize) -> ShardMap<u64, u64> {
        ShardMap::new(MapHasher::default(), shards)
    }

    #[test]
    fn shard_indices_cover_every_shard_of_any_count() {
        for count in [1, 3, 7, 36, 100, 255] {
            let map = map(count);
            let mut seen = vec![0u32; count];
            for key in 0..20_000u64 {
                let index = map.shard_index(map.hash(&key));
                seen[index] += 1;
            }
            // Every shard gets within 30% of its share.
            let share = 20_000 / u32::try_from(count).unwrap();
            for (index, hits) in seen.iter().enumerate() {
                assert!(
                    hits.abs_diff(share) * 10 <= share * 3,
                    "shard {index} of {count}: {hits} keys, share {share}"
                );
            }
        }
    }

    #[test]
    fn insert_replace_read_and_remove_if() {
        let map = map(5);
        assert_eq!(map.insert(1, 10), None);
        assert_eq!(map.insert(1, 11), Some(10));
        assert_eq!(map.replace(&2, 20), Err(20));
        assert_eq!(map.replace(&1, 12), Ok(()));
        assert_eq!(map.read(&1, |v| *v), Some(12));
        assert!(!map.contains_key(&2));
        assert_eq!(map.remove_if(&1, |v| *v == 99), None);
        assert_eq!(map.remove_if(&1, |v| *v == 12), Some((1, 12)));
        assert_eq!(map.read(&1, |v| *v), None);
        assert_eq!(map.remove_if(&1, |_| true), None);
    }

    #[test]
    fn a_full_bounded_map_holds_at_most_1_3_buckets_per_entry() {
        for capacity in [1_000u64, 10_000, 100_000, 1 << 20, 1_000_000] {
            let (shards, buckets) = bounded_layout(capacity, 8..=128).expect("a layout");
            assert!((8..=128).contains(&shards), "{capacity}: {shards} shards");
            let map = map(shards);
            for key in 0..capacity {
                map.insert(key, key);
            }
            let total: usize = map.shards().iter().map(|s| s.read().num_buckets()).sum();
            let doubled = map
                .shards()
                .iter()
                .filter(|s| s.read().num_buckets() > buckets);
            assert!(doubled.count() <= 1, "{capacity}: a table past its layout");
            #[allow(clippy::cast_precision_loss)]
            let per_entry = total as f64 / capacity as f64;
            // Within 5% of the fewest buckets (1.2 per entry at large capacities); small
            // capacities pay for the spread margin.
            let most = if capacity >= 100_000 { 1.3 } else { 1.7 };
            assert!(
                per_entry <= most,
                "{capacity}: {per_entry:.3} buckets per entry"
            );
        }
    }

    #[test]
    fn layouts_keep_to_the_shard_range() {
        assert_eq!(
            bounded_layout(10, 8..=16),
            None,
            "too small for eight shards"
        );
        assert_eq!(bounded_layout(0, 1..=8), Some((1, 16)));
        assert_eq!(bounded_layout(1_000_000, 8..=128), Some((72, 1 << 14)));
        for capacity in [1, 13, 14, 15, 100, 5_000, 77_777, 3_000_000] {
            for range in [1..=1, 1..=8, 8..=64, 64..=256] {
                let Some((shards, buckets)) = bounded_layout(capacity, range.clone()) else {
                    continue;
                };
                assert!(range.contains(&shards), "{capacity} / {range:?}: {shards}");
                assert!(buckets.is_power_of_two());
                assert!(shards as u64 * (buckets as u64 / 8 * 7) >= capacity);
            }
        }
    }

    #[test]
    fn integer_square_roots() {
        for n in (0..10_000u64).chain([u64::MAX, u64::MAX - 1, 1 << 62]) {
            let r = integer_sqrt(n);
            assert!(r.checked_mul(r).is_some_and(|sq| sq <= n), "{n}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|sq| sq > n), "{n}");
        }
    }
}
