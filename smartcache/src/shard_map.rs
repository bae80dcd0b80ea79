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
use crate::reclaim;

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
    /// The buckets of a table in a bounded cache's layout ([`bounded_layout`]); 0 for none.
    fitted: usize,
}

impl<K: Hash + Eq, T> ShardMap<K, T> {
    /// An empty map of `shards` shards (one at least, at most 2^16).
    pub(crate) fn new(hasher: MapHasher, shards: usize) -> Self {
        Self::with_layout(hasher, shards, 0)
    }

    /// An empty map of `shards` shards whose tables are meant to end with `fitted` buckets
    /// each (see [`bounded_layout`]); one that grew past it shrinks back once it fits again.
    pub(crate) fn with_layout(hasher: MapHasher, shards: usize, fitted: usize) -> Self {
        let shards = shards.clamp(1, 1 << 16);
        Self {
            shards: (0..shards).map(|_| Shard::new()).collect(),
            hasher,
            fitted,
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
        self.read_hashed(self.hash(key), key, read)
    }

    /// [`read`](Self::read) for a caller that has hashed `key` already (`hash`).
    pub(crate) fn read_hashed<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        read: impl FnOnce(&T) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
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
    pub(crate) fn insert(&self, key: K, item: T) -> Option<T>
    where
        K: Send + 'static,
        T: Send + 'static,
    {
        let hash = self.hash(&key);
        let mut table = self.shard(hash).write();
        let old = self.rebuild_if_worn(&mut table);
        let replaced = self.insert_locked(&mut table, hash, key, item);
        drop(table);
        if let Some(old) = old {
            // INVARIANT: emptied by the rebuild, so its drop runs no user code.
            let bytes = table_bytes::<(K, T)>(old.num_buckets());
            reclaim::release(old, bytes);
        }
        replaced
    }

    fn insert_locked(&self, table: &mut Table<K, T>, hash: u64, key: K, item: T) -> Option<T> {
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

    /// Before an insertion: if removals have worn `table` out, rebuilds it at the same size,
    /// and gives the old one back (emptied) for the caller to free outside the lock.
    ///
    /// A removal at high load leaves a tombstone where probe sequences may pass, and
    /// tombstones use up the table's room for new entries. With none left, hashbrown
    /// rehashes in place only below half load; above it, it doubles the table. A bounded
    /// cache's tables sit near 7/8 ([`bounded_layout`]) and every insertion of a full cache
    /// follows an eviction, so without this every shard's table doubled within one turnover of
    /// its entries (measured: 1.18 to 2.36 buckets per entry at a million), more than the
    /// power-of-two layout it replaced. The rebuild moves the shard's entries into a fresh
    /// table of the same size, with no tombstones: a cost in the shard's size, once per
    /// exhaustion of its room, under its write lock, as hashbrown's own rehash would be.
    ///
    /// A table that is really full (room for fewer than 1/256 of its entries) is left to
    /// grow: a shard's share of the keys wanders around its mean, and a few wander past the
    /// layout's margin now and then. Such a table is rebuilt at the layout's size again once
    /// its entries fit it with room for a sixteenth more, on the next insertion (the margin
    /// keeps a table at the edge from flipping between sizes).
    fn rebuild_if_worn(&self, table: &mut Table<K, T>) -> Option<Table<K, T>> {
        let len = table.len();
        let buckets = table.num_buckets();
        let fits_layout =
            buckets > self.fitted && self.fitted > 0 && len + len / 16 < max_load(self.fitted);
        // `capacity` is the entries plus the room left: no room is what triggers a rehash.
        if len < table.capacity() && !fits_layout {
            return None;
        }
        // NOTE: room for 1/256 of the entries at least, so that rebuilds of one table are
        // some tombstones apart. At a table's usual share (some 3% of room) that is about 14
        // moves per insertion (a million entries replaced three times over, oldest first:
        // 5,858 rebuilds of some 6,900 entries, 0.26 ms at worst), more at the edge.
        if !fits_layout && len + len / 256 + 1 > max_load(buckets) {
            return None;
        }
        let hash = |(key, _): &(K, T)| self.hash(key);
        // At the layout's size, or the table's own: `len` entries fit either.
        let mut fresh = HashTable::with_capacity(if fits_layout {
            max_load(self.fitted)
        } else {
            len + 1
        });
        for item in table.drain() {
            fresh.insert_unique(hash(&item), item, hash);
        }
        Some(std::mem::replace(table, fresh))
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
/// (keys fall into shards at random), so that about one table in 700 grows once the cache is
/// full. The layout starts from the smallest table size whose shard count is in the range,
/// and doubles the tables only while that saves 1% of the buckets in all: small tables keep
/// a table's rebuild short (see [`ShardMap::insert`]), and past the first doubling or two
/// larger ones save little. The tables then hold 1.19 to 1.23 buckets per entry at large
/// capacities (a power-of-two shard count leaves 1.14 to 2.29), more at small ones, where the
/// margin weighs more.
pub(crate) fn bounded_layout(
    capacity: u64,
    shards: RangeInclusive<usize>,
) -> Option<(usize, usize)> {
    let (fewest_shards, most_shards) = (*shards.start() as u64, *shards.end() as u64);
    let mut best: Option<(u64, u64)> = None;
    let mut buckets: u64 = 16;
    // The shard count falls as the tables grow: stop below the range.
    while buckets < 1 << 40 {
        let full = buckets / 8 * 7;
        let spread = 3 * (full.isqrt() + 1);
        let per_shard = full.saturating_sub(spread).max(1);
        let shards = capacity.div_ceil(per_shard).max(1);
        if shards < fewest_shards {
            break;
        }
        if shards <= most_shards {
            let total = u128::from(shards * buckets);
            match best {
                Some((s, b)) if total * 100 > u128::from(s * b) * 99 => break,
                _ => best = Some((shards, buckets)),
            }
        }
        buckets *= 2;
    }
    let (shards, buckets) = best?;
    Some((
        usize::try_from(shards).ok()?,
        usize::try_from(buckets).ok()?,
    ))
}

/// The most entries a table of `buckets` buckets holds before it must grow (hashbrown's
/// rule: 7/8 of them, all but one below eight).
fn max_load(buckets: usize) -> usize {
    if buckets < 8 {
        buckets.saturating_sub(1)
    } else {
        buckets / 8 * 7
    }
}

/// The bytes the buffer of a shard table of `buckets` items of type `T` holds: a slot and a
/// control byte per bucket.
pub(crate) fn table_bytes<T>(buckets: usize) -> usize {
    buckets * (size_of::<T>() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(shards: usize) -> ShardMap<u64, u64> {
        ShardMap::new(MapHasher::default(), shards)
    }

    /// The `i`th of a set of distinct keys with no pattern. (Sequential keys spread over
    /// shards more evenly than at random with most seeds, and less with a few: the layout's
    /// margin is for keys at random, and a table past it grows, costing memory only.)
    fn key(i: u64) -> u64 {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
    }

    #[test]
    fn shard_indices_cover_every_shard_of_any_count() {
        for count in [1, 3, 7, 36, 100, 255] {
            let map = map(count);
            let mut seen = vec![0u32; count];
            for i in 0..100_000 {
                let index = map.shard_index(map.hash(&key(i)));
                seen[index] += 1;
            }
            // Every shard gets within 30% of its share (six standard deviations at 255).
            let share = 100_000 / u32::try_from(count).unwrap();
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
            let (shards, buckets) = bounded_layout(capacity, 8..=1024).expect("a layout");
            assert!((8..=1024).contains(&shards), "{capacity}: {shards} shards");
            let map = map(shards);
            for i in 0..capacity {
                map.insert(key(i), i);
            }
            let total: usize = map.shards().iter().map(|s| s.read().num_buckets()).sum();
            let doubled = map
                .shards()
                .iter()
                .filter(|s| s.read().num_buckets() > buckets);
            // One in some 700 is past three standard deviations.
            assert!(doubled.count() <= 2, "{capacity}: tables past their layout");
            #[allow(clippy::cast_precision_loss)]
            let per_entry = total as f64 / capacity as f64;
            // About 1.2 buckets per entry at large capacities; small ones pay for the
            // spread margin.
            let most = if capacity >= 100_000 { 1.3 } else { 1.7 };
            assert!(
                per_entry <= most,
                "{capacity}: {per_entry:.3} buckets per entry"
            );
        }
    }

    #[test]
    fn a_bounded_map_keeps_its_size_through_churn() {
        let (shards, buckets) = bounded_layout(200_000, 8..=64).expect("a layout");
        // A fixed seed: with random ones, about one map in fifty has a table past the
        // layout's margin after the fill (28 of 1,500 seeds; 29 tables of 8,192 buckets), and
        // that table alone is 3.4% of the buckets, past the check below (CI failed on one).
        let map = ShardMap::with_layout(MapHasher::fixed(0), shards, buckets);
        let total = |map: &ShardMap<u64, u64>| -> usize {
            map.shards().iter().map(|s| s.read().num_buckets()).sum()
        };
        for i in 0..200_000 {
            map.insert(key(i), i);
        }
        let filled = total(&map);
        assert!(filled <= shards * buckets * 102 / 100);
        // Four turnovers of every entry: each insertion of a new key follows the removal of
        // the oldest, as evictions do. Without the rebuild every table doubled in the first.
        for i in 0..800_000 {
            assert!(map.remove_if(&key(i), |_| true).is_some());
            map.insert(key(i + 200_000), i + 200_000);
        }
        // A table whose share lies past the layout's margin grows, and comes back later: a
        // few are grown at a time at most (three in one run of seventy, under three in all
        // the others).
        let after = total(&map);
        assert!(
            after <= filled + 5 * buckets,
            "{filled} buckets, then {after}"
        );
        for i in 800_000..1_000_000 {
            assert_eq!(map.read(&key(i), |v| *v), Some(i), "every entry kept");
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
        assert_eq!(bounded_layout(1_000_000, 8..=1024), Some((145, 1 << 13)));
        assert_eq!(bounded_layout(5_000_000, 8..=1024), Some((358, 1 << 14)));
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
}
