//! The window tuner of the eviction policy: how large the window of recent arrivals should
//! be, decided from what the cache just lost.
//!
//! # What it measures
//!
//! Entries leave a bounded cache in two ways (see `policy.rs`): a *candidate* leaving the
//! window loses its duel and is dropped, or a *victim* is dropped from the main space. The
//! tuner remembers the hashes of both kinds for a while, in two **ghosts**, each stamped with
//! a clock of its own:
//!
//! - the window ghost counts in window pushes: a dropped candidate requested again within
//!   [`GHOST_PERCENT`] of the capacity in pushes would still have been in a window that much
//!   larger (the window is first in, first out);
//! - the main ghost counts in main-space evictions: a dropped victim requested again within
//!   as many evictions would still have been in a main space that much larger.
//!
//! Every miss looks its key up in both ghosts. A find is a *gain*: a hit that a window, or a
//! main space, larger by a few percent of the capacity would have had. Both kinds are counted
//! over the same requests, so comparing them needs no second sample (the hill climber this
//! replaces compared noisy hit rates of successive samples, and wandered on steady
//! workloads). After every [`EPOCH_GAINS`] gains the window moves [`STEP_PERCENT`] of the
//! capacity towards the side that gained more: a recency-heavy workload ends with a large
//! window (LRU-like), a frequency-heavy one with a small one (LFU-like), and one that shifts
//! moves the window within a few epochs.
//!
//! # Loops
//!
//! A loop slightly larger than the cache fools the window ghost: a dropped candidate comes
//! back after a few pushes, yet no window can hold it (growing the window by one entry puts
//! one more key of the loop out of the main space, and one more push into every lap). What
//! gives that case away is the window itself: in a loop nothing is read while in the window.
//! So the window ghost's gains count only in an epoch where the window had at least one
//! entry read while in it (found with hits at its head, see `Policy::take_live`); a
//! recency-heavy workload reads its window all the time. In an epoch without, the window
//! cannot grow, and any gain of the main ghost shrinks it: on a loop of 1.01 times the
//! capacity the window fell to one entry, where counting both ghosts' gains held it at 1%
//! (98.6% hits against 97.8%). The policy asks the same of the simulations' band
//! ([`Tuner::window_read_lately`]): a band above an unread window does not raise it.
//!
//! # Cost
//!
//! Each ghost is a table of 64-bit slots, two per bucket, as many slots as its depth (at
//! least 8): 7% of the capacity in words, so 1.1 bytes per entry of capacity for both
//! ghosts. Like the sketch, it grows with the entries stored, not with the capacity. A slot
//! holds 32 bits of the key's hash and 32 bits of its clock; a key whose slot was taken by a
//! later one is forgotten, which only loses a gain. A miss costs two bucket reads; a drop,
//! one bucket write.

use crate::policy::percent;

/// How far back each ghost remembers: this percentage of the capacity, in pushes or
/// evictions. Depths from 3% to 14% measured alike on the benchmark suite's traces, within
/// the seed's noise; without the read rule (see "Loops"), 12.5% already let a loop of 1.1
/// times the capacity grow the window.
const GHOST_PERCENT: u64 = 7;
/// How far the window moves per decision: this percentage of the capacity.
const STEP_PERCENT: u64 = 2;
/// Gains per decision. Fewer decide on noise; more adapt slower (8 to 32 measured alike).
const EPOCH_GAINS: u32 = 16;

/// The hashes of recently dropped entries, stamped with the clock of their drop.
#[derive(Debug)]
struct Ghost {
    /// Two slots per bucket; a slot is `fingerprint << 32 | clock`, 0 when empty.
    slots: Vec<u64>,
    buckets: u64,
    /// The most entries the table is sized for (see `fit`).
    enough_for: u64,
    depth: u32,
}

impl Ghost {
    fn new(depth: u64) -> Self {
        let mut ghost = Self {
            slots: Vec::new(),
            buckets: 0,
            enough_for: 0,
            depth: u32::try_from(depth).unwrap_or(u32::MAX),
        };
        ghost.fit(0);
        ghost
    }

    /// Sizes the table for a cache holding `entries`: as many slots as the depth would be
    /// at that capacity (a bucket index comes from 32 bits of the hash), so that a cache with
    /// a huge capacity but few entries keeps a small table. Growing doubles it at least and
    /// forgets what it held (a lost gain or two).
    fn fit(&mut self, entries: u64) {
        if entries < self.enough_for {
            return; // the common case: one comparison
        }
        let full = u64::from(self.depth).div_ceil(2).clamp(4, 1 << 31);
        let wanted = percent(entries, GHOST_PERCENT).div_ceil(2).clamp(4, full);
        if wanted > self.buckets {
            // Doubling keeps the regrowths few; the depth bounds the table.
            self.buckets = wanted.max(self.buckets * 2).min(full);
            self.slots = vec![0; usize::try_from(self.buckets * 2).unwrap_or(usize::MAX)];
        }
        // Below this, `wanted` stays within the buckets; at the depth, it never grows again.
        self.enough_for = if self.buckets * 2 >= u64::from(self.depth) {
            u64::MAX
        } else {
            self.buckets * 2 * 100 / GHOST_PERCENT
        };
    }

    /// The bucket's first slot and the key's fingerprint (never 0, so 0 means empty).
    fn place(&self, hash: u64) -> (usize, u64) {
        // The low half picks the bucket (scaled to the bucket count), the high half is the
        // fingerprint: independent bits of the hash.
        let bucket = ((hash & 0xFFFF_FFFF) * self.buckets) >> 32;
        #[allow(clippy::cast_possible_truncation)] // below the bucket count, a usize
        (bucket as usize * 2, (hash >> 32) | 1)
    }

    /// Remembers a dropped key at `now`, in its bucket's slot that holds it already, or else
    /// the emptier or older one.
    fn record(&mut self, hash: u64, now: u32) {
        let (first, print) = self.place(hash);
        #[allow(clippy::cast_possible_truncation)] // the clock half of the slot
        let age = |slot: u64| now.wrapping_sub(slot as u32);
        let pair = &mut self.slots[first..first + 2];
        let second = pair[0] >> 32 != print
            && (pair[1] >> 32 == print
                || pair[0] != 0 && (pair[1] == 0 || age(pair[1]) > age(pair[0])));
        let index = usize::from(second);
        pair[index] = print << 32 | u64::from(now);
    }

    /// Whether the key was dropped within the depth before `now`; forgets it either way.
    fn find(&mut self, hash: u64, now: u32) -> bool {
        let (first, print) = self.place(hash);
        for slot in &mut self.slots[first..first + 2] {
            if *slot >> 32 == print {
                // NOTE: the clocks are 32 bits: a key dropped 2^32 ticks ago reads as recent,
                // which can only add one gain.
                #[allow(clippy::cast_possible_truncation)] // the clock half of the slot
                let recent = now.wrapping_sub(*slot as u32) <= self.depth;
                *slot = 0;
                return recent;
            }
        }
        false
    }
}

/// The window tuner of one cache (behind the upkeep lock, with the policy).
#[derive(Debug)]
pub(crate) struct Tuner {
    window_ghost: Ghost,
    main_ghost: Ghost,
    /// Entries pushed onto the window (new ones, and read ones given a second chance).
    window_clock: u32,
    /// Entries evicted from the main space.
    main_clock: u32,
    window_gains: u32,
    main_gains: u32,
    /// Window entries found read at the window's head this epoch.
    window_reads: u32,
    /// The window clock when a window entry was last found read.
    window_read_at: u32,
    step: i64,
}

impl Tuner {
    pub(crate) fn new(capacity: u64) -> Self {
        let depth = percent(capacity, GHOST_PERCENT).max(4);
        Self {
            window_ghost: Ghost::new(depth),
            main_ghost: Ghost::new(depth),
            window_clock: 0,
            main_clock: 0,
            window_gains: 0,
            main_gains: 0,
            window_reads: 0,
            window_read_at: 0,
            step: i64::try_from(percent(capacity, STEP_PERCENT))
                .unwrap_or(i64::MAX)
                .max(1),
        }
    }

    /// An entry was pushed onto the window; `read` if it is a window entry read since it got
    /// there (a second chance), not a new one.
    pub(crate) fn pushed(&mut self, read: bool) {
        self.window_clock = self.window_clock.wrapping_add(1);
        if read {
            self.window_reads = self.window_reads.saturating_add(1);
            self.window_read_at = self.window_clock;
        }
    }

    /// Whether a window entry was found read within the last `pushes` window pushes (or
    /// none has been pushed yet for that long).
    pub(crate) fn window_read_lately(&self, pushes: u64) -> bool {
        // NOTE: 32-bit clocks: a window unread for 2^32 pushes may read as read lately once,
        // which only lets the band raise it.
        u64::from(self.window_clock.wrapping_sub(self.window_read_at)) <= pushes
    }

    /// A candidate leaving the window lost its duel and was dropped.
    pub(crate) fn candidate_dropped(&mut self, hash: u64) {
        self.window_ghost.record(hash, self.window_clock);
    }

    /// An entry was evicted from the main space.
    pub(crate) fn victim_dropped(&mut self, hash: u64) {
        self.main_clock = self.main_clock.wrapping_add(1);
        self.main_ghost.record(hash, self.main_clock);
    }

    /// Sizes the ghosts for a cache holding `entries` (see `Ghost::fit`).
    pub(crate) fn fit(&mut self, entries: u64) {
        self.window_ghost.fit(entries);
        self.main_ghost.fit(entries);
    }

    /// A miss on `hash`: the change of the window size to make, once an epoch is complete.
    pub(crate) fn missed(&mut self, hash: u64) -> Option<i64> {
        self.window_gains += u32::from(self.window_ghost.find(hash, self.window_clock));
        self.main_gains += u32::from(self.main_ghost.find(hash, self.main_clock));
        if self.window_gains + self.main_gains < EPOCH_GAINS {
            return None;
        }
        let window = std::mem::take(&mut self.window_gains);
        let main = std::mem::take(&mut self.main_gains);
        // An unread window's gains are a loop's (see "Loops"): they count for nothing.
        let window = if std::mem::take(&mut self.window_reads) > 0 {
            window
        } else {
            0
        };
        match window.cmp(&main) {
            std::cmp::Ordering::Greater => Some(self.step),
            std::cmp::Ordering::Less => Some(-self.step),
            std::cmp::Ordering::Equal => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    #[test]
    fn a_ghost_finds_a_key_within_its_depth_once() {
        let mut ghost = Ghost::new(100);
        ghost.record(hash(1), 10);
        ghost.record(hash(2), 20);
        assert!(
            ghost.find(hash(1), 110),
            "100 ticks later: within the depth"
        );
        assert!(!ghost.find(hash(1), 110), "a find forgets the key");
        assert!(!ghost.find(hash(2), 121), "101 ticks later: too old");
        assert!(!ghost.find(hash(3), 30), "never dropped");
    }

    #[test]
    fn a_ghost_keeps_the_newer_of_two_keys_in_a_full_bucket() {
        let mut ghost = Ghost::new(8);
        // Three keys of one bucket (same low bits, different fingerprints).
        let [a, b, c] = [2_u64 << 32, 4 << 32, 6 << 32];
        ghost.record(a, 1);
        ghost.record(b, 2);
        ghost.record(c, 3);
        assert!(!ghost.find(a, 4), "the oldest made room");
        assert!(ghost.find(b, 4) && ghost.find(c, 4));
    }

    #[test]
    fn the_ghosts_grow_with_the_entries_not_the_capacity() {
        let mut huge = Tuner::new(u64::MAX);
        assert_eq!(
            huge.window_ghost.slots.len(),
            8,
            "no table sized for the capacity"
        );
        huge.fit(1_000_000);
        assert_eq!(huge.window_ghost.slots.len(), 70_000, "7% of the entries");
        let mut bounded = Tuner::new(1_000_000);
        for entries in (0..=1_000_000).step_by(1_000) {
            bounded.fit(entries);
        }
        assert_eq!(
            bounded.main_ghost.slots.len(),
            70_000,
            "grown to the depth, not past it"
        );
        bounded.fit(u64::MAX);
        assert_eq!(bounded.main_ghost.slots.len(), 70_000, "the depth at most");
        assert_eq!(bounded.main_ghost.enough_for, u64::MAX);
    }

    /// Feeds `epochs` epochs of gains: `window` of every 16 from the window ghost, the rest
    /// from the main ghost; the window moves it asked for, summed.
    fn drive(tuner: &mut Tuner, window: u32, reads: bool, epochs: u32) -> i64 {
        let mut moved = 0;
        let mut key = 0;
        for _ in 0..epochs {
            for i in 0..EPOCH_GAINS {
                key += 1;
                if i < window {
                    tuner.candidate_dropped(hash(key));
                } else {
                    tuner.victim_dropped(hash(key));
                }
                tuner.pushed(reads);
                moved += tuner.missed(hash(key)).unwrap_or(0);
            }
        }
        moved
    }

    #[test]
    fn the_window_moves_towards_the_side_that_gained_more() {
        let mut tuner = Tuner::new(1_000);
        assert_eq!(
            drive(&mut tuner, 12, true, 5),
            5 * 20,
            "window gains: grows 2% a time"
        );
        assert_eq!(
            drive(&mut tuner, 4, true, 3),
            -3 * 20,
            "main gains: shrinks"
        );
        assert_eq!(drive(&mut tuner, 8, true, 3), 0, "a tie: stays");
    }

    #[test]
    fn an_unread_window_never_grows() {
        let mut tuner = Tuner::new(1_000);
        assert_eq!(drive(&mut tuner, 16, false, 5), 0, "the loop case");
        assert_eq!(drive(&mut tuner, 0, false, 2), -2 * 20, "it still shrinks");
        assert_eq!(
            drive(&mut tuner, 12, false, 3),
            -3 * 20,
            "unread, the window ghost's gains count for nothing: main's few shrink it"
        );
        assert_eq!(drive(&mut tuner, 12, true, 1), 20, "read, they count again");
    }

    #[test]
    fn the_window_is_read_lately_until_a_capacity_of_pushes_passes_unread() {
        let mut tuner = Tuner::new(1_000);
        assert!(tuner.window_read_lately(100), "nothing pushed yet");
        for _ in 0..100 {
            tuner.pushed(false);
        }
        assert!(tuner.window_read_lately(100));
        tuner.pushed(false);
        assert!(!tuner.window_read_lately(100), "101 pushes unread");
        tuner.pushed(true);
        assert!(tuner.window_read_lately(0), "just read");
    }
}
