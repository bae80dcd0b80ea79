//! The frequency sketch of the eviction policy: how often each key was asked for lately.
//!
//! A count-min sketch of 4-bit counters, four per key (one per row, each row hashed its own
//! way), sixteen to a `u64` word, a word per entry of capacity. An estimate is the smallest
//! of a key's four counters; an increment raises only the counters at that minimum
//! (conservative update), which keeps collisions from inflating estimates.
//!
//! # Aging by subtraction
//!
//! Every [`ADDITIONS_PER_AGING`] increments per word, every counter above zero is lowered by
//! one, so that old popularity fades (a pass spread over the next increments, as a doubling
//! of the table is: [`UPKEEP_WORDS`]). W-TinyLFU as published (and Caffeine, moka) halves the
//! counters instead. Halving favours whatever is counted just after it: a candidate counted
//! once after a halving weighs as much as two counts of a victim from before it. On loops,
//! where every key is asked for equally often, every halving so let candidates beat victims
//! for about a lap, turning the resident set over. A subtraction lowers every count alike,
//! so a count from after it weighs what one from before did, and an order between two counts
//! is never reversed. Keys asked for more often than the aging stay at 15 and tie, and a tie
//! keeps the victim: a loop then keeps a fixed resident set.
//!
//! Measured against halving on the benchmark suite (means of five replays, hit ratio in
//! percent; `docs/benchmarks.md`): loops of 1.1 and 3 times the capacity 89.9 → 90.5 and
//! 30.7 → 32.4 (moka 90.5 and 32.5), synthetic Zipf 0.8 / 1.0 / 1.2 +0.7 / +0.8 / +0.3
//! points, Zipf with scans +0.5. The cost: a key that was hot takes up to fifteen agings
//! (120 capacities' worth of counts) to fade, where halving took four; multi2 at 568 entries
//! lost about 0.3 points and sprite 0.1 to 0.2, the window and the simulations (`minisim.rs`)
//! serving recency there.
//!
//! Forgetting faster only where popularity switched was tried too (halving the table when
//! the sampled miss share jumps, or a key's counts when it leaves protected unread): up to
//! 0.8 points gained after switches, more lost on scans, loops and Zipf. So was lowering a
//! victim's counts each time it wins a duel: 1.5–1.9 points gained after switches, but a
//! loop key that waits long between reads is worn down the same way as a stale one.

/// The most words of a sketch: 2^23 (64 MiB), for capacities of 8 million and more.
const MAX_SKETCH_WORDS: usize = 1 << 23;

/// Counts added per word of the table between two agings. Measured at 2, 3, 4, 6, 8 and 12
/// (three replays of the suite each): Zipf gained with every step up to 8 (from 0.9 points
/// behind the best peer to 0.5 ahead) and little past it; multi2 at 1,500 entries, a trace
/// whose popularity shifts, did worst at 12.
const ADDITIONS_PER_AGING: u64 = 8;

/// Words aged, or copied while the table doubles, per increment: the table's upkeep is
/// spread over the calls that count, never one pass in one caller's path. A pass over
/// 2^20 words took 0.4–0.7 ms on the 2-core machine (and up to 1.9 ms in a housekeeping
/// probe), over 2^23 words 3–7 ms; a doubling to 2^20 words, 3 ms. 1,024 words take a
/// microsecond or two.
const UPKEEP_WORDS: usize = 1024;

/// A count-min sketch of 4-bit counters: 16 per `u64`, four counters per key.
#[derive(Debug)]
pub(crate) struct Sketch {
    table: Vec<u64>,
    /// While the table doubles: the table before. Its words from `copied` on are not yet
    /// copied into both halves of `table`, and are read and written here meanwhile.
    growing: Option<Growth>,
    /// Words of `table` already aged in the current aging pass: all of them between passes.
    aged: usize,
    /// Counts added since the last aging began.
    additions: u64,
    /// Counts after which every counter is lowered: [`ADDITIONS_PER_AGING`] per word.
    sample: u64,
}

#[derive(Debug)]
struct Growth {
    old: Vec<u64>,
    copied: usize,
}

impl Growth {
    /// The old table's index of the new table's word `at`, while that word is not copied.
    fn uncopied(&self, at: usize) -> Option<usize> {
        // INVARIANT: the old length is a power of two, half the new one.
        let old = at & (self.old.len() - 1);
        (old >= self.copied).then_some(old)
    }
}

impl Sketch {
    pub(crate) fn new() -> Self {
        Self::sized(32)
    }

    /// A sketch of at least `entries` words (a power of two, within the bounds), at once: for
    /// a table that never grows (`minisim.rs`).
    pub(crate) fn sized(entries: u64) -> Self {
        let words = usize::try_from(entries)
            .unwrap_or(MAX_SKETCH_WORDS)
            .clamp(32, MAX_SKETCH_WORDS)
            .next_power_of_two();
        Self {
            table: vec![0; words],
            growing: None,
            aged: words,
            additions: 0,
            sample: ADDITIONS_PER_AGING * words as u64,
        }
    }

    /// Starts doubling the table when `entries` outgrow it, so that a cache with a huge
    /// capacity but few entries keeps a small table. A doubling copies each word into both
    /// halves: a key's counters sit at the same index, or that index plus the old length, so
    /// every estimate is kept. The copy goes [`UPKEEP_WORDS`] a call; entries grow by one per
    /// insertion, so each doubling ends long before the next is due.
    pub(crate) fn fit(&mut self, entries: u64) {
        let len = self.table.len();
        // One upkeep at a time: an aging pass in progress finishes first.
        if entries <= len as u64 || len >= MAX_SKETCH_WORDS || !self.idle() {
            return;
        }
        let old = std::mem::replace(&mut self.table, vec![0; 2 * len]);
        self.growing = Some(Growth { old, copied: 0 });
        self.aged = 2 * len;
        self.sample = ADDITIONS_PER_AGING * 2 * len as u64;
    }

    fn idle(&self) -> bool {
        self.growing.is_none() && self.aged == self.table.len()
    }

    /// A bounded step of the table's upkeep: copying while it doubles, else aging.
    fn upkeep(&mut self) {
        if let Some(growth) = &mut self.growing {
            let (half, start) = (growth.old.len(), growth.copied);
            let end = (start + UPKEEP_WORDS).min(half);
            let words = &growth.old[start..end];
            self.table[start..end].copy_from_slice(words);
            self.table[start + half..end + half].copy_from_slice(words);
            growth.copied = end;
            if end == half {
                // Freeing a table of megabytes hands its pages back to the kernel: 2.7–4.8 ms
                // for 32 MiB, in this call. The reclaimer thread frees it instead (a `Vec`
                // of integers runs no user code when dropped).
                let old = std::mem::take(&mut growth.old);
                self.growing = None;
                crate::reclaim::release(old, half * size_of::<u64>());
            }
            return;
        }
        let end = (self.aged + UPKEEP_WORDS).min(self.table.len());
        for word in &mut self.table[self.aged..end] {
            // One bit per nonzero 4-bit counter, at its lowest place: subtracting it borrows
            // within that counter only.
            let folded = *word | *word >> 1;
            let nonzero = (folded | folded >> 2) & 0x1111_1111_1111_1111;
            *word -= nonzero;
        }
        self.aged = end;
    }

    /// Word `at` of the table: in the table before while it doubles and that word is not
    /// yet copied.
    fn word(&self, at: usize) -> u64 {
        match &self.growing {
            Some(growth) => growth
                .uncopied(at)
                .map_or(self.table[at], |old| growth.old[old]),
            None => self.table[at],
        }
    }

    fn word_mut(&mut self, at: usize) -> &mut u64 {
        match &mut self.growing {
            Some(growth) => match growth.uncopied(at) {
                Some(old) => &mut growth.old[old],
                None => &mut self.table[at],
            },
            None => &mut self.table[at],
        }
    }

    /// The four counter positions of a hash: (word, shift) pairs.
    fn slots(&self, hash: u64) -> [(usize, u32); 4] {
        let mask = self.table.len() - 1; // INVARIANT: the length is a power of two
        let mut slots = [(0, 0); 4];
        for (i, slot) in slots.iter_mut().enumerate() {
            // A different multiplier per row spreads the rows independently.
            let mixed = hash
                .wrapping_add(i as u64)
                .wrapping_mul(ROW_SEEDS[i])
                .rotate_right(29);
            #[allow(clippy::cast_possible_truncation)] // masked to the table length
            let word = (mixed as usize) & mask;
            let nibble = u32::try_from((mixed >> 60) & 15).unwrap_or(0);
            *slot = (word, nibble * 4);
        }
        slots
    }

    /// Adds `count` to the key's counters (conservative update: only the smallest rise).
    pub(crate) fn increment(&mut self, hash: u64, count: u32) {
        if !self.idle() {
            self.upkeep();
        }
        let slots = self.slots(hash);
        for _ in 0..count {
            let min = self.estimate_at(&slots);
            if min == 15 {
                return;
            }
            for &(word, shift) in &slots {
                let word = self.word_mut(word);
                if (*word >> shift) & 15 == u64::from(min) {
                    *word += 1 << shift;
                }
            }
            self.additions += 1;
            if self.additions >= self.sample {
                self.age();
            }
        }
    }

    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        self.estimate_at(&self.slots(hash))
    }

    fn estimate_at(&self, slots: &[(usize, u32); 4]) -> u8 {
        let counts = slots.map(|(word, shift)| (self.word(word) >> shift) & 15);
        // Four-bit counters: the minimum fits a u8.
        u8::try_from(counts.into_iter().min().unwrap_or(0)).unwrap_or(15)
    }

    /// Starts aging every count: each counter above zero is lowered by one, [`UPKEEP_WORDS`]
    /// words per increment from here. INVARIANT: a pass ends before the next is due: it
    /// takes the table's length over `UPKEEP_WORDS` increments, and an increment adds at most
    /// 15 counts (then its key saturates) of the 8 per word that make the next pass due. A
    /// pass due while the table doubles waits for the copy; until it ends, keys' counters in
    /// the words aged and those not yet aged differ by one at most.
    fn age(&mut self) {
        if self.growing.is_none() {
            self.aged = 0;
            self.additions = 0;
        }
    }
}

const ROW_SEEDS: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x27D4_EB2F_1656_67C5,
];

#[cfg(test)]
mod tests {
    use super::*;

    impl Sketch {
        /// Runs the upkeep in progress (a doubling, an aging pass) to its end.
        fn settle(&mut self) {
            while !self.idle() {
                self.upkeep();
            }
        }

        /// One whole aging pass, at once.
        fn age_now(&mut self) {
            self.settle();
            self.age();
            self.settle();
        }
    }

    #[test]
    fn sketch_counts_ages_and_keeps_counts_when_it_grows() {
        let mut sketch = Sketch::new();
        let (a, b) = (0x1234_5678_9ABC_DEF0_u64, 0x0FED_CBA9_8765_4321_u64);
        sketch.increment(a, 5);
        sketch.increment(b, 1);
        assert_eq!((sketch.estimate(a), sketch.estimate(b)), (5, 1));
        sketch.increment(a, 40);
        assert_eq!(sketch.estimate(a), 15, "4-bit counters saturate");
        while sketch.table.len() < 10_000 {
            sketch.fit(10_000);
            assert_eq!((sketch.estimate(a), sketch.estimate(b)), (15, 1), "kept");
            sketch.settle();
        }
        assert_eq!((sketch.estimate(a), sketch.estimate(b)), (15, 1), "kept");
        sketch.age_now();
        assert_eq!((sketch.estimate(a), sketch.estimate(b)), (14, 0));
        sketch.age_now();
        assert_eq!(
            (sketch.estimate(a), sketch.estimate(b)),
            (13, 0),
            "zero stays zero"
        );
    }

    #[test]
    fn doubling_and_aging_go_a_bounded_step_per_increment_and_keep_the_estimates() {
        let mut sketch = Sketch::new();
        let keys: Vec<u64> = (1..=200_u64)
            .map(|key| key.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for (key, count) in keys.iter().zip(1..) {
            sketch.increment(*key, count % 15);
        }
        let before: Vec<u8> = keys.iter().map(|&key| sketch.estimate(key)).collect();
        let unrelated = 0x5A5A_3C3C_0F0F_9696_u64; // its increments drive the upkeep
        while sketch.table.len() < 1 << 14 {
            sketch.fit(1 << 14);
            let half = sketch.table.len() / 2;
            let mut calls = 0;
            while let Some(growth) = &sketch.growing {
                assert_eq!(growth.copied, (calls * UPKEEP_WORDS).min(half));
                let now: Vec<u8> = keys.iter().map(|&key| sketch.estimate(key)).collect();
                assert_eq!(now, before, "kept while copying");
                sketch.increment(unrelated, 0);
                calls += 1;
            }
            assert_eq!(calls, half.div_ceil(UPKEEP_WORDS), "a step per increment");
        }
        assert_eq!(
            keys.iter()
                .map(|&key| sketch.estimate(key))
                .collect::<Vec<_>>(),
            before
        );
        // An aging pass: UPKEEP_WORDS words per increment, one lower per counter at its end.
        sketch.age();
        for step in 1..=sketch.table.len() / UPKEEP_WORDS {
            sketch.increment(unrelated, 0);
            assert_eq!(sketch.aged, step * UPKEEP_WORDS);
        }
        assert!(sketch.idle());
        let after: Vec<u8> = keys.iter().map(|&key| sketch.estimate(key)).collect();
        let lowered: Vec<u8> = before
            .iter()
            .map(|&count| count.saturating_sub(1))
            .collect();
        assert_eq!(after, lowered);
    }

    #[test]
    fn aging_lowers_every_counter_alike_and_never_reorders_them() {
        let mut sketch = Sketch::new();
        // Every nibble of a word at once, 0 to 15: each loses one, a zero stays.
        sketch.table[0] = 0xFEDC_BA98_7654_3210;
        sketch.age_now();
        assert_eq!(sketch.table[0], 0xEDCB_A987_6543_2100);
        // A count from after an aging weighs what one from before did: a candidate counted
        // once more than a victim stays one ahead, and a tie stays a tie.
        let mut sketch = Sketch::sized(1 << 12); // no collisions among three keys
        let (candidate, victim, other) = (
            0x1234_5678_9ABC_DEF0_u64,
            0x0FED_CBA9_8765_4321_u64,
            0x5A5A_3C3C_0F0F_9696_u64,
        );
        sketch.increment(candidate, 3);
        sketch.increment(victim, 3);
        sketch.increment(other, 2);
        sketch.age_now();
        sketch.increment(candidate, 1);
        assert_eq!(
            [candidate, victim, other].map(|key| sketch.estimate(key)),
            [3, 2, 1]
        );
    }
}
