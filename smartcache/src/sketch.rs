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
//! one, so that old popularity fades. W-TinyLFU as published (and Caffeine, moka) halves the
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

/// The most words of a sketch: 2^23 (64 MiB), for capacities of 8 million and more.
const MAX_SKETCH_WORDS: usize = 1 << 23;

/// Counts added per word of the table between two agings. Measured at 2, 3, 4, 6, 8 and 12
/// (three replays of the suite each): Zipf gained with every step up to 8 (from 0.9 points
/// behind the best peer to 0.5 ahead) and little past it; multi2 at 1,500 entries, a trace
/// whose popularity shifts, did worst at 12.
const ADDITIONS_PER_AGING: u64 = 8;

/// A count-min sketch of 4-bit counters: 16 per `u64`, four counters per key.
#[derive(Debug)]
pub(crate) struct Sketch {
    table: Vec<u64>,
    /// Counts added since the last aging.
    additions: u64,
    /// Counts after which every counter is lowered: [`ADDITIONS_PER_AGING`] per word.
    sample: u64,
}

impl Sketch {
    pub(crate) fn new() -> Self {
        Self {
            table: vec![0; 32],
            additions: 0,
            sample: ADDITIONS_PER_AGING * 32,
        }
    }

    /// Doubles the table while `entries` outgrow it, so that a cache with a huge capacity but
    /// few entries keeps a small table. Each doubling copies the table into both halves: a
    /// key's counters sit at the same index, or that index plus the old length, so every
    /// estimate is kept.
    pub(crate) fn fit(&mut self, entries: u64) {
        while entries > self.table.len() as u64 && self.table.len() < MAX_SKETCH_WORDS {
            self.table.extend_from_within(..);
            self.sample = ADDITIONS_PER_AGING * self.table.len() as u64;
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
        let slots = self.slots(hash);
        for _ in 0..count {
            let min = self.estimate_at(&slots);
            if min == 15 {
                return;
            }
            for &(word, shift) in &slots {
                if (self.table[word] >> shift) & 15 == u64::from(min) {
                    self.table[word] += 1 << shift;
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
        let counts = slots.map(|(word, shift)| (self.table[word] >> shift) & 15);
        // Four-bit counters: the minimum fits a u8.
        u8::try_from(counts.into_iter().min().unwrap_or(0)).unwrap_or(15)
    }

    /// Ages every count: lowers each counter above zero by one (one pass over the table).
    pub(crate) fn age(&mut self) {
        for word in &mut self.table {
            // One bit per nonzero 4-bit counter, at its lowest place: subtracting it borrows
            // within that counter only.
            let folded = *word | *word >> 1;
            let nonzero = (folded | folded >> 2) & 0x1111_1111_1111_1111;
            *word -= nonzero;
        }
        self.additions = 0;
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

    #[test]
    fn sketch_counts_ages_and_keeps_counts_when_it_grows() {
        let mut sketch = Sketch::new();
        let (a, b) = (0x1234_5678_9ABC_DEF0_u64, 0x0FED_CBA9_8765_4321_u64);
        sketch.increment(a, 5);
        sketch.increment(b, 1);
        assert_eq!((sketch.estimate(a), sketch.estimate(b)), (5, 1));
        sketch.increment(a, 40);
        assert_eq!(sketch.estimate(a), 15, "4-bit counters saturate");
        sketch.fit(10_000);
        assert!(sketch.table.len() >= 10_000);
        assert_eq!((sketch.estimate(a), sketch.estimate(b)), (15, 1), "kept");
        sketch.age();
        assert_eq!((sketch.estimate(a), sketch.estimate(b)), (14, 0));
        sketch.age();
        assert_eq!(
            (sketch.estimate(a), sketch.estimate(b)),
            (13, 0),
            "zero stays zero"
        );
    }

    #[test]
    fn aging_lowers_every_counter_alike_and_never_reorders_them() {
        let mut sketch = Sketch::new();
        // Every nibble of a word at once, 0 to 15: each loses one, a zero stays.
        sketch.table[0] = 0xFEDC_BA98_7654_3210;
        sketch.age();
        assert_eq!(sketch.table[0], 0xEDCB_A987_6543_2100);
        // A count from after an aging weighs what one from before did: a candidate counted
        // once more than a victim stays one ahead, and a tie stays a tie.
        let mut sketch = Sketch::new();
        sketch.fit(1 << 12); // no collisions among three keys
        let (candidate, victim, other) = (
            0x1234_5678_9ABC_DEF0_u64,
            0x0FED_CBA9_8765_4321_u64,
            0x5A5A_3C3C_0F0F_9696_u64,
        );
        sketch.increment(candidate, 3);
        sketch.increment(victim, 3);
        sketch.increment(other, 2);
        sketch.age();
        sketch.increment(candidate, 1);
        assert_eq!(
            [candidate, victim, other].map(|key| sketch.estimate(key)),
            [3, 2, 1]
        );
    }
}
