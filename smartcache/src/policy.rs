//! The eviction policy of a cache with a capacity: an adaptive W-TinyLFU whose three
//! segments are second-chance (CLOCK) queues.
//!
//! # What it does
//!
//! - A new entry enters the **window**, a small queue of recent arrivals (1% of the capacity
//!   at first). An entry leaving the window is a *candidate* for the **main** space, which is
//!   split into **probation** (entries admitted but not read since) and **protected** (entries
//!   read while on probation; at most 80% of the main space).
//! - When the main space is full, the candidate meets the *victim* (the oldest entry on
//!   probation): whichever a **frequency sketch** (a count-min sketch of 4-bit counters, each
//!   lowered by one every eight capacities' worth of counts so that old popularity fades)
//!   rates higher stays, the other is evicted. A tie keeps the victim, which is what makes
//!   loops and scans harmless: a one-hit wonder never pushes out an entry that has been asked
//!   for as often. A candidate rated 6 or more that loses is still admitted once in 128
//!   duels, so an attacker who pumps up a victim's counters cannot pin it in place for ever.
//! - A **tuner** (`tuner.rs`) moves the window size. It remembers the hashes of recently
//!   dropped candidates and victims in two small ghost tables; a miss on a key dropped a
//!   moment ago is a hit that a larger window (or a larger main space) would have had. Every
//!   sixteen such finds it moves the window by 2% of the capacity towards the side that
//!   would have gained more, growing it only if something in the window was read lately
//!   (a loop just larger than the cache fools the window ghost otherwise).
//! - **Miniature simulations** (`minisim.rs`) bound where the tuner may go. A sample of the
//!   keys is replayed through seven small exact W-TinyLFU caches with windows from 1% to 99%;
//!   once one of them hits significantly more often than the one followed so far, the
//!   window is kept within a band around its size. The tuner's view is local, and on
//!   recency-heavy traces it settled at a small or half-sized window when the whole cache
//!   was best. A recency-heavy workload ends up with a large window (LRU-like), a
//!   frequency-heavy one with a small window (LFU-like).
//!
//! # How reads reach it without slowing hits
//!
//! A hit never takes the policy lock. It marks its entry's two "hit" bits in the entry's meta
//! word (see `store::Entry`), and only while they are not both set, so that a hot entry's
//! cache line stays shared between cores. The policy collects those bits when an entry reaches
//! the head of its queue: the hits it finds are counted into the sketch, and a read entry gets
//! a second chance (window, protected) or a promotion (probation to protected). Misses are
//! counted into the sketch when their value is stored. A hit on one of the keys the
//! simulations sample also writes its hash to a per-stripe ring, which the next miss replays
//! (`minisim.rs`).
//!
//! # Bounded work
//!
//! Queues hold `(key, stamp)` nodes, keys and 32-bit stamps in two block queues ([`Stamp`],
//! [`NodeQueue`]: 12 bytes a node with `u64` keys); a node whose entry has since been removed
//! or replaced is *stale* (its stamp no longer matches) and is dropped when met. Making room
//! for one entry looks at a bounded number of nodes ([`SECOND_CHANCES`], [`MAX_LOOKS`]): once
//! the second chances are used up, the next live node is taken as it is, so a hot working set
//! (every entry read) costs a few map reads per insertion, never a lap of the queue. Stale
//! nodes are cleared a few at a time per insertion once they make up half the nodes
//! ([`Policy::tidy`]).
//! The sketch (8 bytes per entry of capacity) ages its counters and doubles its table while
//! the cache fills; both passes go a bounded number of words per increment (`sketch.rs`),
//! where one pass over 8 MB took 0.4–0.7 ms of one caller's time.
//!
//! # Known weak spots
//!
//! - Hits are counted into the sketch lazily and at most fifteen per visit of the entry to its
//!   queue head, so the sketch under-rates very hot entries; it only has to rank the candidate
//!   against the victim, where coarse counts do.
//! - The queues are CLOCK approximations of LRU: order among entries read between two visits
//!   is lost, which costs a little on workloads where exact recency matters.
//! - The simulations are a sample: on a short trace they decide late (after a mini capacity
//!   and an epoch of sampled requests, up to 2,560), and the band's bounds are halfway
//!   between simulated sizes, so a best window between two of them is reached only as the
//!   tuner finds it. They cost the misses of a small bounded cache some 1,500 instructions
//!   per sampled request (see `minisim.rs`).
//! - Growing the window by the tuner's steps evicts from the main space (one entry per
//!   insertion, in place of a candidate's duel), and every turn of the tuner costs those
//!   entries. A jump of the simulations' band moves the main space's oldest nodes into the
//!   window instead, a few per insertion, evicting nothing extra.
//! - The sketch forgets slowly: a key that was hot takes up to fifteen agings to fade
//!   (`sketch.rs` says why it subtracts rather than halves), which costs a few tenths of a
//!   point on traces whose popularity shifts (multi2, sprite), and more where it switches
//!   at once: a Zipf whose key set changes every 50,000 requests at a capacity of 1,000
//!   trails `quick_cache` by 3.3 points, where the same Zipf without the switches leads by 1.1
//!   (`phases-50k`, `docs/benchmarks.md`). Most of the old set's keys sit in protected then,
//!   which demotes its oldest only when a promotion overflows it, so they leave at the rate
//!   new keys are read on probation, out of the duels' reach.
//! - Stale nodes cost memory until tidied: a cache that replaces or invalidates entries much
//!   faster than it inserts new ones holds up to about twice as many nodes as entries.

use crate::blocks::BlockQueue;
use crate::minisim::{HitSamples, MiniSims, WINDOWS};
use crate::sketch::Sketch;
use crate::tuner::Tuner;

/// Second chances (of read entries) given while making room for one entry: past them, the
/// next live node goes as it is. Each chance is one look at a live node; every other look
/// at a live node evicts, demotes or returns it, so live looks stay within a few times this.
pub(crate) const SECOND_CHANCES: u32 = 512;

/// Stale nodes dropped while making room for one entry before giving up (nothing is stored
/// then: see `Store::insert_locked`).
pub(crate) const MAX_LOOKS: u32 = 2048;

/// Window nodes moved to the main space without a duel, at most, per insertion or eviction.
const WINDOW_MOVES: u32 = 4;
/// A window of 1% of the capacity to start with, as W-TinyLFU's authors recommend.
const INITIAL_WINDOW_PERCENT: u64 = 1;
/// At most this share of the main space is protected.
const PROTECTED_PERCENT: u64 = 80;
/// A losing candidate rated at least this often is admitted once in 128 duels.
const FLOOD_GUARD_FREQUENCY: u8 = 6;

/// `share` percent of `n`, rounded down (no overflow for any capacity).
pub(crate) fn percent(n: u64, share: u64) -> u64 {
    // At most n, as share is at most 100.
    u64::try_from(u128::from(n) * u128::from(share) / 100).unwrap_or(n)
}

/// A queued entry: its key and the stamp that tells it from an earlier entry of the same key.
#[derive(Debug)]
pub(crate) struct Node<K> {
    pub(crate) key: K,
    pub(crate) stamp: Stamp,
}

/// Which entry of its key a node stands for, in 32 bits: the entry's storing time in 16 ns
/// ticks (clock readings are multiples of 16 ns), modulo 2^31, and whether it is a cached
/// error. Queued apart from the keys ([`NodeQueue`]), a node of a `u64` key takes 12 bytes,
/// where a 64-bit stamp beside the key took 16.
///
/// NOTE: entries of one key stored 2^31 ticks (34.4 s) apart, to the tick, share a stamp. A
/// node whose entry was replaced by such a one passes for live: that entry then has two
/// nodes, and whichever the policy reaches first decides its fate, the other going stale.
/// No count or bound depends on nodes (the store counts entries), so the cost of that rare
/// coincidence is one entry ordered as if it had been stored twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(u32);

impl Stamp {
    /// The stamp of a value stored at `at` (a clock reading).
    pub(crate) fn value(at: u64) -> Self {
        Self::new(at, 0)
    }

    /// The stamp of an error cached at `at` (a clock reading).
    pub(crate) fn error(at: u64) -> Self {
        Self::new(at, 1)
    }

    fn new(at: u64, error: u64) -> Self {
        #[allow(clippy::cast_possible_truncation)] // modulo 2^32 on purpose: see the NOTE
        let bits = (((at >> 4) << 1) | error) as u32;
        Self(bits)
    }

    pub(crate) fn is_error(self) -> bool {
        self.0 & 1 != 0
    }
}

/// A FIFO of nodes, kept as two block queues (keys, stamps) in step, so that a node takes
/// the size of its key plus four bytes, with no padding.
#[derive(Debug)]
pub(crate) struct NodeQueue<K> {
    // INVARIANT: both hold the same number of items; the node at position `i` is
    // `(keys[i], stamps[i])`.
    keys: BlockQueue<K>,
    stamps: BlockQueue<Stamp>,
}

impl<K> Default for NodeQueue<K> {
    fn default() -> Self {
        Self {
            keys: BlockQueue::default(),
            stamps: BlockQueue::default(),
        }
    }
}

impl<K> NodeQueue<K> {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The bytes its blocks take.
    pub(crate) fn footprint(&self) -> usize {
        self.keys.footprint() + self.stamps.footprint()
    }

    fn push_back(&mut self, node: Node<K>) {
        self.keys.push_back(node.key);
        self.stamps.push_back(node.stamp);
    }

    fn push_front(&mut self, node: Node<K>) {
        self.keys.push_front(node.key);
        self.stamps.push_front(node.stamp);
    }

    fn pop_front(&mut self) -> Option<Node<K>> {
        let key = self.keys.pop_front()?;
        let stamp = self.stamps.pop_front().expect("a stamp per key");
        Some(Node { key, stamp })
    }
}

/// What the policy asks of the store about the entries it orders.
pub(crate) trait Residents<K> {
    /// The hits the node's entry had since last asked (0 to 15), clearing them; `None` if the
    /// node is stale.
    fn take_hits(&self, node: &Node<K>) -> Option<u32>;
    /// Evicts the node's entry if it is still there; whether it was.
    fn evict(&self, node: &Node<K>) -> bool;
    /// Whether the node's entry is still stored, leaving its hit bits alone.
    fn is_live(&self, node: &Node<K>) -> bool;
    /// The hash of a key, for the sketch.
    fn hash(&self, key: &K) -> u64;
}

/// The outcome of [`Policy::evict_one`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evicted {
    /// One entry was evicted (or, racing with a removal, was already gone: room either way).
    One,
    /// The look budget ran out, or no live node is left.
    Nothing,
}

/// The three segments of a W-TinyLFU cache: which queue a node is taken from, and which list
/// a simulated entry is on (`minisim.rs`, which indexes its lists by the discriminant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment {
    Window = 0,
    Probation = 1,
    Protected = 2,
}

/// The policy state of one cache, behind the store's upkeep lock.
#[derive(Debug)]
pub(crate) struct Policy<K> {
    capacity: u64,
    window: NodeQueue<K>,
    probation: NodeQueue<K>,
    protected: NodeQueue<K>,
    /// How many entries the window should hold; the main space gets the rest.
    window_target: u64,
    sketch: Sketch,
    tuner: Tuner,
    /// Where the tuner may move the window (see `minisim.rs`).
    sims: MiniSims,
    /// xorshift state, for the flood guard.
    random: u64,
    /// The low end of the simulations' band, in entries, as last applied to the target.
    window_floor: u64,
}

impl<K> Policy<K> {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            capacity,
            window: NodeQueue::default(),
            probation: NodeQueue::default(),
            protected: NodeQueue::default(),
            window_target: percent(capacity, INITIAL_WINDOW_PERCENT).clamp(1, capacity.max(1)),
            sketch: Sketch::new(),
            tuner: Tuner::new(capacity),
            sims: MiniSims::new(capacity),
            random: 0x9E37_79B9_7F4A_7C15,
            window_floor: 0,
        }
    }

    /// Nodes queued, live or stale.
    pub(crate) fn nodes(&self) -> usize {
        self.window.len() + self.probation.len() + self.protected.len()
    }

    /// The window size the tuner has settled on.
    #[cfg(test)]
    pub(crate) fn window_target(&self) -> u64 {
        self.window_target
    }

    fn main_target(&self) -> u64 {
        self.capacity - self.window_target
    }

    fn protected_target(&self) -> u64 {
        percent(self.main_target(), PROTECTED_PERCENT)
    }

    fn main_len(&self) -> u64 {
        (self.probation.len() + self.protected.len()) as u64
    }

    /// Queues a newly stored entry (a miss, counted in the sketch). `live` is the number of
    /// entries stored, for sizing the sketch.
    pub(crate) fn admit(&mut self, node: Node<K>, hash: u64, live: u64) {
        let entries = live.min(self.capacity);
        self.sketch.fit(entries);
        self.tuner.fit(entries);
        self.sketch.increment(hash, 1);
        if self.sims.missed(hash) {
            self.band_jumped();
        }
        if let Some(step) = self.tuner.missed(hash) {
            self.window_target = self.window_target.saturating_add_signed(step);
            self.keep_window_in_band();
        }
        self.tuner.pushed(false);
        self.window.push_back(node);
        // While the main space has room (the cache is filling, or the window just shrank),
        // the window's surplus moves on a few nodes per insertion, so that no later call has
        // to move it all at once. Their hit bits stay with the entries.
        for _ in 0..WINDOW_MOVES {
            if (self.window.len() as u64) <= self.window_target
                || self.main_len() >= self.main_target()
            {
                break;
            }
            if let Some(node) = self.window.pop_front() {
                self.probation.push_back(node);
            }
        }
        // While the window is below the simulations' band (it just rose), the main space's
        // oldest nodes join the window's head, `WINDOW_MOVES` per insertion as when it
        // shrinks, so that the window grows as fast. Growing by evictions alone (one per insertion) took
        // 93,000 insertions to reach the band on scarab@100k, of some 300,000 in the trace.
        // Only the band's jumps move nodes: the tuner's steps within it grow by evictions,
        // since an oscillating target otherwise flushed protected entries into the window
        // (scarab@25k lost 0.3 points). Pushed to the head one by one, each few moved nodes
        // are in reverse order; a read one still gets its second chance there.
        for _ in 0..WINDOW_MOVES {
            if (self.window.len() as u64) >= self.window_floor
                || self.main_len() <= self.main_target()
            {
                break;
            }
            let Some(node) = self
                .probation
                .pop_front()
                .or_else(|| self.protected.pop_front())
            else {
                break;
            };
            self.window.push_front(node);
        }
    }

    /// Replays the sampled hits since the last call into the simulations (before a miss is
    /// admitted, so that they see the requests in order).
    pub(crate) fn replay_hits(&mut self, samples: &HitSamples) {
        if self.sims.replay_hits(samples) {
            self.band_jumped();
        }
    }

    /// The simulations named another band. The smallest window's band is the whole range
    /// (the tuner is free there), so a jump to it would leave the window wherever the band
    /// before had held it: after a popularity switch, where the simulations follow a
    /// window of 99% until the new set is learnt, the window then stayed at 96–100% (and
    /// the hit ratio at LRU's) for the 150,000 requests measured after the first switch
    /// (`phases-50k`): the tuner's 2% steps did not bring it down. It starts again where the
    /// winning simulation has it, and the tuner goes on from there.
    fn band_jumped(&mut self) {
        if self.sims.band().0 == 0 {
            self.window_target = percent(self.capacity, WINDOWS[0]).max(1);
        }
        self.keep_window_in_band();
    }

    /// Keeps the window target within the simulations' band (and the capacity).
    fn keep_window_in_band(&mut self) {
        let (low, high) = self.sims.band();
        let capacity = self.capacity.max(1);
        // A band above a window unread for a capacity of pushes does not raise it: on loops
        // the simulations named a 10% window now and then, and the real one sat at 5%.
        let low = if self.tuner.window_read_lately(capacity) {
            percent(capacity, low).max(1)
        } else {
            1
        };
        // At least `low`: a band's high end is never below its low end.
        let high = percent(capacity, high).max(low);
        self.window_floor = low;
        self.window_target = self.window_target.clamp(low, high);
    }

    /// Drops every node (the store was cleared), keeping what the sketch and tuner learnt.
    pub(crate) fn clear(&mut self) -> [NodeQueue<K>; 3] {
        [
            std::mem::take(&mut self.window),
            std::mem::take(&mut self.probation),
            std::mem::take(&mut self.protected),
        ]
    }

    /// Evicts one entry to make room for a new one, looking at a bounded number of nodes.
    pub(crate) fn evict_one(&mut self, residents: &impl Residents<K>) -> Evicted {
        let mut budget = Budget {
            chances: SECOND_CHANCES,
            looks: MAX_LOOKS,
        };
        let mut moves = 0;
        loop {
            let from_window = !self.window.is_empty()
                && (self.window.len() as u64 >= self.window_target || self.main_len() == 0);
            if !from_window {
                // The window has room: the main space is over its share.
                return match self.victim(residents, &mut budget) {
                    Some(victim) => {
                        residents.evict(&victim);
                        self.tuner.victim_dropped(residents.hash(&victim.key));
                        Evicted::One
                    }
                    None => Evicted::Nothing,
                };
            }
            let Some(candidate) = self.take_live(Segment::Window, residents, &mut budget) else {
                if budget.looks == 0 {
                    return Evicted::Nothing;
                }
                continue; // the window held only stale nodes
            };
            if self.main_len() < self.main_target() && moves < WINDOW_MOVES {
                // The window shrank: the candidate moves to the main space, nothing goes.
                // Past a few such moves the candidate duels as usual: the call stays short.
                moves += 1;
                self.probation.push_back(candidate);
                continue;
            }
            let candidate_hash = residents.hash(&candidate.key);
            let Some(victim) = self.victim(residents, &mut budget) else {
                residents.evict(&candidate);
                self.tuner.candidate_dropped(candidate_hash);
                return Evicted::One;
            };
            let victim_hash = residents.hash(&victim.key);
            if self.admits(candidate_hash, victim_hash) {
                residents.evict(&victim);
                self.tuner.victim_dropped(victim_hash);
                self.probation.push_back(candidate);
            } else {
                residents.evict(&candidate);
                self.tuner.candidate_dropped(candidate_hash);
                self.probation.push_front(victim);
            }
            return Evicted::One;
        }
    }

    /// The `TinyLFU` admission: the candidate must be rated more often than the victim.
    fn admits(&mut self, candidate: u64, victim: u64) -> bool {
        let candidate = self.sketch.estimate(candidate);
        if candidate > self.sketch.estimate(victim) {
            return true;
        }
        candidate >= FLOOD_GUARD_FREQUENCY && self.next_random() % 128 == 0
    }

    fn next_random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    /// The main space's victim: the oldest unread entry on probation (read ones are promoted
    /// on the way), or, with nothing on probation, the oldest unread protected one.
    fn victim(&mut self, residents: &impl Residents<K>, budget: &mut Budget) -> Option<Node<K>> {
        loop {
            if let Some(victim) = self.take_live(Segment::Probation, residents, budget) {
                return Some(victim);
            }
            if budget.looks == 0 {
                return None;
            }
            if self.probation.is_empty() {
                if let Some(victim) = self.take_live(Segment::Protected, residents, budget) {
                    return Some(victim);
                }
                // NOTE: protected may have demoted its nodes to probation on the way (second
                // chances end, so this loop does too).
                if budget.looks == 0 || self.probation.is_empty() {
                    return None;
                }
            }
        }
    }

    /// The first live node of `segment` that is not given a second chance, or `None` when the
    /// queue is empty or the look budget is spent.
    ///
    /// A read node counts its hits into the sketch and, while second chances last, moves on:
    /// to the back of its queue (window, protected) or into protected (probation).
    fn take_live(
        &mut self,
        segment: Segment,
        residents: &impl Residents<K>,
        budget: &mut Budget,
    ) -> Option<Node<K>> {
        while budget.looks > 0 {
            let node = self.queue(segment).pop_front()?;
            let Some(hits) = residents.take_hits(&node) else {
                budget.looks -= 1;
                continue; // stale: its entry is gone
            };
            if hits > 0 {
                self.sketch.increment(residents.hash(&node.key), hits);
            }
            if hits == 0 || budget.chances == 0 {
                return Some(node);
            }
            budget.chances -= 1;
            match segment {
                Segment::Window => {
                    self.tuner.pushed(true);
                    self.window.push_back(node);
                }
                Segment::Probation | Segment::Protected => {
                    self.protected.push_back(node);
                    self.demote_overflow(residents, budget);
                }
            }
        }
        None
    }

    /// Moves the oldest protected entries to probation while protected is over its share.
    fn demote_overflow(&mut self, residents: &impl Residents<K>, budget: &mut Budget) {
        while self.protected.len() as u64 > self.protected_target() && budget.looks > 0 {
            let Some(node) = self.protected.pop_front() else {
                return;
            };
            match residents.take_hits(&node) {
                None => budget.looks -= 1, // stale
                // Read since its last visit: it stays protected, at the back (CLOCK's LRU).
                Some(hits) if hits > 0 && budget.chances > 0 => {
                    budget.chances -= 1;
                    self.sketch.increment(residents.hash(&node.key), hits);
                    self.protected.push_back(node);
                }
                Some(_) => self.probation.push_back(node),
            }
        }
    }

    fn queue(&mut self, segment: Segment) -> &mut NodeQueue<K> {
        match segment {
            Segment::Window => &mut self.window,
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    /// With `live` entries stored, drops a few stale nodes from the queue heads once stale
    /// nodes make up more than half of them (live ones go to the back of their queue, keeping
    /// their hit bits).
    pub(crate) fn tidy(&mut self, live: u64, residents: &impl Residents<K>) {
        if (self.nodes() as u64) <= live.saturating_mul(2).saturating_add(64) {
            return;
        }
        for segment in [Segment::Window, Segment::Probation, Segment::Protected] {
            for _ in 0..4 {
                let Some(node) = self.queue(segment).pop_front() else {
                    break;
                };
                if residents.is_live(&node) {
                    self.queue(segment).push_back(node);
                }
            }
        }
    }
}

/// What the policy may still spend while making room for one entry.
struct Budget {
    chances: u32,
    looks: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    /// Entries as the store would hold them: key -> (stamp, hits), with counts of calls.
    #[derive(Default)]
    struct Fake {
        entries: RefCell<HashMap<u64, (u64, u32)>>,
        looks: Cell<u32>,
        evicted: RefCell<Vec<u64>>,
        /// Hits sampled for the simulations, as the store's hit path does (if set).
        samples: Option<HitSamples>,
    }

    impl Fake {
        fn store(&self, policy: &mut Policy<u64>, key: u64) {
            let stamp = key * 16;
            while self.entries.borrow().len() as u64 >= policy.capacity {
                assert_eq!(policy.evict_one(self), Evicted::One);
            }
            self.entries.borrow_mut().insert(key, (stamp, 0));
            let live = self.entries.borrow().len() as u64;
            if let Some(samples) = &self.samples {
                policy.replay_hits(samples);
            }
            let stamp = Stamp::value(stamp);
            policy.admit(Node { key, stamp }, self.hash(&key), live);
        }

        fn hit(&self, key: u64) -> bool {
            match self.entries.borrow_mut().get_mut(&key) {
                Some((_, hits)) => {
                    *hits = (*hits + 1).min(15);
                    if let Some(samples) = &self.samples {
                        samples.hit(self.hash(&key));
                    }
                    true
                }
                None => false,
            }
        }

        /// A fake whose hits are sampled for the simulations of a cache of `capacity`.
        fn sampling(capacity: u64) -> Self {
            Self {
                samples: Some(HitSamples::new(capacity, 1)),
                ..Self::default()
            }
        }

        /// A policy of `capacity` and a fake holding keys `0..capacity`, stored in order.
        fn filled(capacity: u64) -> (Self, Policy<u64>) {
            let fake = Self::default();
            let mut policy = Policy::new(capacity);
            for key in 0..capacity {
                fake.store(&mut policy, key);
            }
            (fake, policy)
        }

        /// Requests `key`: a hit, or a miss that stores it.
        fn request(&self, policy: &mut Policy<u64>, key: u64) -> bool {
            let hit = self.hit(key);
            if !hit {
                self.store(policy, key);
            }
            hit
        }
    }

    impl Residents<u64> for Fake {
        fn take_hits(&self, node: &Node<u64>) -> Option<u32> {
            self.looks.set(self.looks.get() + 1);
            let mut entries = self.entries.borrow_mut();
            let (stamp, hits) = entries.get_mut(&node.key)?;
            (Stamp::value(*stamp) == node.stamp).then(|| std::mem::take(hits))
        }

        fn evict(&self, node: &Node<u64>) -> bool {
            let mut entries = self.entries.borrow_mut();
            if entries
                .get(&node.key)
                .is_some_and(|(s, _)| Stamp::value(*s) == node.stamp)
            {
                entries.remove(&node.key);
                self.evicted.borrow_mut().push(node.key);
                return true;
            }
            false
        }

        fn is_live(&self, node: &Node<u64>) -> bool {
            (self.entries.borrow().get(&node.key))
                .is_some_and(|(s, _)| Stamp::value(*s) == node.stamp)
        }

        fn hash(&self, key: &u64) -> u64 {
            key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }
    }

    #[test]
    fn stamps_tell_entries_apart_by_tick_and_kind_and_wrap_after_2_to_the_31_ticks() {
        let at = 123_456_789 * 16;
        assert_eq!(Stamp::value(at), Stamp::value(at));
        assert_ne!(Stamp::value(at), Stamp::value(at + 16), "one tick apart");
        assert_ne!(Stamp::value(at), Stamp::error(at), "a value and an error");
        assert!(Stamp::error(at).is_error() && !Stamp::value(at).is_error());
        let wrap = (1 << 31) * 16;
        assert_eq!(
            Stamp::value(at),
            Stamp::value(at + wrap),
            "the documented wrap"
        );
        assert_ne!(Stamp::value(at), Stamp::value(at + wrap / 2));
        // A queue keeps each node's key and stamp together, across blocks.
        let mut queue = NodeQueue::default();
        for key in 0..3000u64 {
            queue.push_back(Node {
                key,
                stamp: Stamp::value(key * 16),
            });
        }
        queue.push_front(Node {
            key: 9999,
            stamp: Stamp::error(0),
        });
        assert_eq!(queue.len(), 3001);
        let first = queue.pop_front().expect("a node");
        assert_eq!((first.key, first.stamp), (9999, Stamp::error(0)));
        for key in 0..3000u64 {
            let node = queue.pop_front().expect("a node");
            assert_eq!((node.key, node.stamp), (key, Stamp::value(key * 16)));
        }
        assert!(queue.is_empty() && queue.pop_front().is_none());
    }

    #[test]
    fn every_eviction_takes_one_live_entry_and_never_the_one_being_stored() {
        let fake = Fake::default();
        let mut policy = Policy::new(10);
        for key in 0..1_000 {
            fake.request(&mut policy, key % 37);
            fake.request(&mut policy, key);
            assert!(fake.entries.borrow().len() <= 10);
            assert!(
                fake.entries.borrow().contains_key(&key),
                "key {key} was stored"
            );
        }
        // Every eviction removed a live entry, one per call.
        let evicted = fake.evicted.borrow().len();
        let stored = fake.entries.borrow().len();
        assert!(evicted > 900 && evicted + stored <= 2_000);
    }

    #[test]
    fn a_hot_working_set_costs_a_bounded_look_per_insertion() {
        let capacity = 5_000;
        let (fake, mut policy) = Fake::filled(capacity);
        for round in 0..3 {
            // Every entry read since the policy last looked at it.
            for key in 0..capacity {
                fake.hit(key);
            }
            fake.looks.set(0);
            fake.store(&mut policy, 1_000_000 + round);
            let looks = fake.looks.get();
            assert!(
                looks <= 4 * SECOND_CHANCES,
                "{looks} looks for one insertion"
            );
            assert_eq!(fake.entries.borrow().len() as u64, capacity);
        }
    }

    #[test]
    fn frequently_read_keys_survive_a_scan() {
        let fake = Fake::default();
        let mut policy = Policy::new(100);
        for _ in 0..10 {
            for key in 0..80 {
                fake.request(&mut policy, key);
            }
        }
        let hits_during_scan: usize = (0..3)
            .map(|_| {
                // A scan of keys read once, then the hot set again.
                for key in 10_000..10_500 {
                    fake.request(&mut policy, key);
                }
                (0..80)
                    .filter(|&key| fake.request(&mut policy, key))
                    .count()
            })
            .sum();
        assert!(hits_during_scan >= 3 * 75, "{hits_during_scan} hits of 240");
    }

    #[test]
    fn stale_nodes_are_skipped_and_tidied() {
        let (fake, mut policy) = Fake::filled(50);
        // Invalidate everything behind the policy's back, then refill: no stale node is
        // ever evicted, and the nodes stay within twice the live entries (plus slack).
        fake.entries.borrow_mut().clear();
        for key in 100..10_000 {
            fake.store(&mut policy, key);
            if key % 3 == 0 {
                fake.entries.borrow_mut().remove(&(key - 1));
            }
            let live = fake.entries.borrow().len() as u64;
            policy.tidy(live, &fake);
            assert!(
                policy.nodes() as u64 <= 2 * 50 + 64 + 8,
                "{} nodes",
                policy.nodes()
            );
        }
        assert!(fake.evicted.borrow().iter().all(|&key| key >= 100));
    }

    #[test]
    fn the_window_grows_for_a_recency_workload() {
        let fake = Fake::default();
        let mut policy = Policy::new(100);
        let start = policy.window_target();
        // A working set of 200 keys (twice the capacity) that shifts by one key every ten
        // requests: old keys never come back, recent ones do.
        let mut random = 1_u64;
        for i in 0..60_000_u64 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let key = i / 10 + random % 200;
            fake.request(&mut policy, key);
        }
        assert!(
            policy.window_target() > start + 20,
            "window {}",
            policy.window_target()
        );
    }

    #[test]
    fn a_band_that_jumps_grows_the_window_a_few_nodes_per_insertion_evicting_one() {
        let (fake, mut policy) = Fake::filled(1_000);
        assert_eq!(policy.window.len(), 10);
        // The simulations' band jumps to 90% (set by hand: the fake samples nothing).
        policy.window_floor = 900;
        policy.window_target = 900;
        for key in 1_000..1_178 {
            fake.store(&mut policy, key);
            // Each insertion: one eviction from the main space, the new entry and four moved
            // nodes into the window.
            let inserted = key - 999;
            assert_eq!(policy.window.len() as u64, 10 + 5 * inserted);
            assert_eq!(fake.evicted.borrow().len() as u64, inserted);
        }
        assert_eq!(policy.window.len(), 900);
        assert_eq!(policy.main_len(), 100);
        // At its target, a candidate leaves the window for each new entry.
        fake.store(&mut policy, 2_000);
        assert_eq!(policy.window.len(), 900);
        // A tuner's step within the band grows the window by evictions alone: no move.
        policy.window_target = 950;
        for (key, len) in (2_001..2_004).zip(901..) {
            fake.store(&mut policy, key);
            assert_eq!(policy.window.len(), len);
        }
        assert_eq!(fake.entries.borrow().len(), 1_000);
    }

    /// Replays `requests` requests of a loop over `keys` keys; the hits of the second half.
    fn loop_hits(policy: &mut Policy<u64>, keys: u64, requests: u64) -> u32 {
        let fake = Fake::sampling(policy.capacity);
        let mut hits = 0;
        for i in 0..requests {
            let hit = fake.request(policy, i % keys);
            if i >= requests / 2 {
                hits += u32::from(hit);
            }
        }
        hits
    }

    #[test]
    fn a_loop_just_larger_than_the_capacity_keeps_its_window_small() {
        // The case that fools the window ghost (see tuner.rs): candidates dropped from the
        // window come back after a few pushes, yet a larger window would hold none of them.
        let mut policy = Policy::new(1_000);
        let hits = loop_hits(&mut policy, 1_050, 200_000);
        assert!(
            policy.window_target() <= 20,
            "window {}",
            policy.window_target()
        );
        // An exact LRU hits nothing here; the best possible is 95.2%. This run had 94.9%, and
        // 92.0% with the window growing on the window ghost's gains alone.
        assert!(hits > 93_500, "{hits} hits of the last 100,000 requests");
    }

    #[test]
    fn a_loop_three_times_the_capacity_keeps_a_resident_set() {
        // Every key asked for equally often: the duels are decided by how the sketch ages
        // its counts (see sketch.rs). A fixed resident set of the main space hits 33%.
        let hits = loop_hits(&mut Policy::new(1_000), 3_000, 400_000);
        // This run had 65,891 hits (32.9%); with the counters halved, 59,562 (29.8%).
        assert!(hits > 64_000, "{hits} hits of the last 200,000 requests");
    }

    #[test]
    fn a_sliding_working_set_gets_a_window_of_nearly_the_whole_cache_soon() {
        // Keys drawn evenly from 2,000 that slide on by one every ten requests: the oldest
        // keys have been asked for most, yet are about to leave. Recency is all that counts
        // (an exact LRU is best), and the simulations say so early on.
        let capacity = 1_000;
        let fake = Fake::sampling(capacity);
        let mut policy = Policy::new(capacity);
        let mut random = 0x2545_F491_4F6C_DD1D_u64;
        for i in 0..20_000 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            fake.request(&mut policy, i / 10 + random % 2_000);
        }
        // The band of the largest simulated window (99%) starts at 94%. This run ended at
        // 100%; without the simulations, the tuner alone had reached 40.1%.
        assert!(
            policy.window_target() >= 940,
            "window {}",
            policy.window_target()
        );
    }

    #[test]
    fn a_window_the_simulations_raised_comes_back_when_frequency_wins_again() {
        // Recency first (the sliding working set above: the window rises to 94% or more),
        // then a loop of 1.5 times the capacity, where an LRU hits nothing and a small
        // window keeps a resident set. The simulations name the 1% window again, and the
        // window follows at once. Left where the 99% band had held it, it ended this run at
        // 100% (the tuner's steps did not bring it down).
        let capacity = 1_000;
        let fake = Fake::sampling(capacity);
        let mut policy = Policy::new(capacity);
        let mut random = 0x2545_F491_4F6C_DD1D_u64;
        for i in 0..20_000 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            fake.request(&mut policy, i / 10 + random % 2_000);
        }
        assert!(policy.window_target() >= 940);
        let mut hits = 0;
        for i in 0..60_000_u64 {
            hits += u32::from(fake.request(&mut policy, (1 << 40) + i % 1_500));
        }
        assert!(
            policy.window_target() <= 100,
            "window {}",
            policy.window_target()
        );
        assert!(hits > 20_000, "{hits} hits of 60,000");
    }

    #[test]
    fn a_capacity_of_one_keeps_the_latest_entry() {
        let fake = Fake::default();
        let mut policy = Policy::new(1);
        for key in 0..100 {
            fake.request(&mut policy, key);
            assert_eq!(
                fake.entries.borrow().keys().copied().collect::<Vec<_>>(),
                [key]
            );
        }
    }
}
