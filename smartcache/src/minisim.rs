//! Miniature simulations of the eviction policy: which region of window sizes suits the
//! workload, decided by replaying a sample of it.
//!
//! # Why
//!
//! The tuner (`tuner.rs`) compares what a slightly larger window and a slightly larger main
//! space would have gained: a local view. On recency-heavy traces the hit ratio keeps rising
//! all the way to a window of the whole cache (an LRU), yet the local gains balance at a
//! small or half-sized window. Replays with the window held fixed showed it: on a
//! recommendations trace a 1% window lost 2.9 points to a 99% one, a 50% window 0.4, while
//! the tuner stayed at 0–7%; on a shifting working set, twenty points between the ends. A
//! global view needs whole policies compared on the same requests.
//!
//! # What it does
//!
//! A share of the key space is sampled by hash, as in spatially hashed sampling of cache
//! traces: a key whose hash has its low bits clear (one in four for capacities up to 8,192,
//! fewer above, so that the simulations hold 1,024 to 2,048 entries). The sampled keys'
//! requests (misses as the policy stores them, hits through [`HitSamples`]) are replayed
//! through seven small exact W-TinyLFU caches of the capacity times the sample rate, with
//! windows of [`WINDOWS`] percent, sharing one frequency sketch (the requests, and so the
//! counts, are the same for all) and one index.
//!
//! Every [`EPOCH`] sampled requests the simulations are compared, on counts of which of them
//! hit each request (an eighth forgotten per epoch, so that a shifting workload is
//! followed). A request all of them hit, or all missed, says nothing; the others decide, as
//! in a paired (sign) test: the best one is followed once it hit more than the one followed by
//! three standard deviations. It names the *band* the tuner may move the real window in:
//! from halfway to the next smaller simulated window to halfway to the next larger one. The
//! 1% simulation leaves the tuner free: where a small window wins (frequency-heavy
//! workloads, loops) the tuner's local view does well, and its moves cost nothing there. A
//! jump to it from a larger one puts the window back at 1% first (`Policy::band_jumped`).
//!
//! Offline, exact W-TinyLFU replays of the benchmark traces sampled down to 128–255 entries
//! named the same best window as full-size ones on every trace but two near-ties.
//!
//! # Cost
//!
//! - A hit of a sampled key in a bounded cache writes its hash to a ring, one per stats
//!   stripe (at most [`MAX_RINGS`]): a load and two stores, no shared counter (a lost race
//!   loses a sample: noise). A bounded `u64` hit went from 158 to 176 instructions
//!   (callgrind, `hit-profile bounded`, a quarter of its keys sampled).
//! - A miss first replays up to [`REPLAY_BUDGET`] sampled hits, then its own request if
//!   sampled: a lookup, a few list moves per simulation, and a sketch read per duel. About
//!   1,500 instructions per sampled request: at one in four sampled, a cache of 1,000 on
//!   Zipf 1.0 (40% misses) went from 2,050 to 2,590 instructions per request; at a capacity
//!   of 200,000 (one in 128) the simulations cost a few instructions per request.
//! - A ring that overflows between two misses (hits were lost) restarts the simulations
//!   from empty rather than let them replay a shortened workload, where a loop would seem to
//!   fit; a workload whose misses are that rare keeps its band meanwhile.
//! - Memory, per bounded cache: seven simulations' nodes (24 bytes each), an index entry
//!   per key any of them holds (about 48 bytes), a sketch of a word per simulated entry, and
//!   the rings (8 bytes a slot): about 100 KB at a capacity of 1,000; at most about 1 MB,
//!   from capacities of 8,192 on, where it is under a byte per entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::policy::{Segment, percent};
use crate::sketch::Sketch;

/// The windows simulated, in percent of the capacity, smallest first.
pub(crate) const WINDOWS: [u64; 7] = [1, 10, 25, 50, 75, 90, 99];
/// The largest mini capacity: larger ones are sampled down to 1,024 to 2,048 entries.
const MINI_CAPACITY: u64 = 2048;
/// At most one key in 2^this is sampled, whatever the capacity: the simulations' upkeep
/// stays a fraction of the requests'.
const MIN_SHIFT: u32 = 2;
/// Sampled requests per decision. Deciding every 64, 128 or 256 (forgetting still per 512)
/// was measured, ten replays of the suite each: about a point sooner on a short mix of
/// programs, as much lost on another, no better on the whole (`docs/benchmarks.md`).
const EPOCH: u64 = 512;
/// Sampled hits a ring keeps between two misses, at most: twice the mini capacity up to
/// this. Rings of 128 lost too many on loops and high hit ratios (where a few hundred hits
/// come between two misses).
const MAX_RING: usize = 512;
/// The most rings: threads beyond share them (a lost race loses a sample).
const MAX_RINGS: usize = 8;
/// Sampled hits replayed per miss, at most: the rest wait for the next miss.
const REPLAY_BUDGET: u32 = 64;

/// The bits of a hash that must be clear for its key to be sampled, for `capacity`, and the
/// capacity of the simulations (at least 1).
fn sample(capacity: u64) -> (u64, u64) {
    let mut shift = MIN_SHIFT;
    while shift < 63 && capacity >> shift > MINI_CAPACITY {
        shift += 1;
    }
    ((1 << shift) - 1, (capacity >> shift).max(1))
}

/// One ring of sampled hits, written by the threads of its stripes.
#[derive(Debug)]
#[repr(align(128))] // no false sharing with the neighbouring ring's count
struct Ring {
    /// Hits written so far (the next slot is `written` modulo the slots).
    written: AtomicU64,
    slots: Box<[AtomicU64]>,
}

/// The sampled hits of a bounded cache, recorded on the hit path without a lock.
#[derive(Debug)]
pub(crate) struct HitSamples {
    mask: u64,
    rings: Box<[Ring]>,
}

impl HitSamples {
    /// Rings for a cache of `capacity`, one per stats stripe (`stripes`, a power of two), at
    /// most [`MAX_RINGS`].
    pub(crate) fn new(capacity: u64, stripes: usize) -> Self {
        let (mask, mini) = sample(capacity);
        // A power of two (the modulo is a mask); mini is at most MINI_CAPACITY.
        let len = usize::try_from(2 * mini)
            .unwrap_or(MAX_RING)
            .next_power_of_two()
            .clamp(16, MAX_RING);
        Self {
            mask,
            rings: (0..stripes.min(MAX_RINGS))
                .map(|_| Ring {
                    written: AtomicU64::new(0),
                    slots: (0..len).map(|_| AtomicU64::new(0)).collect(),
                })
                .collect(),
        }
    }

    /// Records a hit on a key hashed to `hash`, if it is sampled.
    #[inline]
    pub(crate) fn hit(&self, hash: u64) {
        if hash & self.mask == 0 {
            self.record(hash);
        }
    }

    #[inline(never)]
    fn record(&self, hash: u64) {
        // INVARIANT: the ring count is a power of two (the stats' stripe count, or the cap).
        let ring = &self.rings[crate::stats::thread_stripe() & (self.rings.len() - 1)];
        // NOTE: a load and a store, not an atomic add: two threads sharing a ring may write
        // the same slot, which loses a sample, never a slot out of bounds.
        let written = ring.written.load(Relaxed);
        #[allow(clippy::cast_possible_truncation)] // reduced modulo the ring
        ring.slots[written as usize % ring.slots.len()].store(hash, Relaxed);
        ring.written.store(written.wrapping_add(1), Relaxed);
    }
}

/// A list of one segment of a simulation, oldest first, linked through the nodes.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: u32,
}

const NIL: u32 = u32::MAX;

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

#[derive(Debug, Clone, Copy)]
struct SimNode {
    hash: u64,
    prev: u32,
    next: u32,
    segment: Segment,
}

/// Where each simulation holds a key (its node, or [`NIL`]): one lookup per request for
/// all of them.
type Index = HashMap<u64, [u32; WINDOWS.len()], foldhash::fast::FixedState>;

/// What a request did to one simulation.
struct Visit {
    hit: bool,
    /// The requested key's node (every simulation holds it afterwards).
    at: u32,
    /// The key it dropped to make room, if any: never the requested one.
    dropped: Option<u64>,
}

/// One simulated cache: an exact W-TinyLFU (LRU segments) of hashes.
#[derive(Debug)]
struct Sim {
    window: u32,
    main: u32,
    protected: u32,
    lists: [List; 3],
    nodes: Vec<SimNode>,
    free: Vec<u32>,
}

impl Sim {
    fn new(capacity: u32, window_percent: u64) -> Self {
        let window = u32::try_from(percent(u64::from(capacity), window_percent))
            .unwrap_or(capacity)
            .clamp(1, capacity.max(1));
        let main = capacity.saturating_sub(window);
        Self {
            window,
            main,
            protected: u32::try_from(percent(u64::from(main), 80)).unwrap_or(main),
            lists: [List::EMPTY; 3],
            nodes: Vec::new(),
            free: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.lists = [List::EMPTY; 3];
        self.nodes.clear();
        self.free.clear();
    }

    fn unlink(&mut self, at: u32) {
        let SimNode {
            prev,
            next,
            segment,
            ..
        } = self.nodes[at as usize];
        let list = &mut self.lists[segment as usize];
        list.len -= 1;
        if prev == NIL {
            list.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn push_back(&mut self, at: u32, segment: Segment) {
        let list = &mut self.lists[segment as usize];
        let tail = list.tail;
        list.tail = at;
        list.len += 1;
        if tail == NIL {
            list.head = at;
        } else {
            self.nodes[tail as usize].next = at;
        }
        let node = &mut self.nodes[at as usize];
        (node.prev, node.next, node.segment) = (tail, NIL, segment);
    }

    /// Frees an unlinked node; its key's hash.
    fn free(&mut self, at: u32) -> u64 {
        self.free.push(at);
        self.nodes[at as usize].hash
    }

    fn len(&self, segment: Segment) -> u32 {
        self.lists[segment as usize].len
    }

    /// A request for `hash`, held at node `at` ([`NIL`]: not held); `sketch` has counted it
    /// already.
    fn request(&mut self, hash: u64, at: u32, sketch: &Sketch) -> Visit {
        if at != NIL {
            let segment = self.nodes[at as usize].segment;
            self.unlink(at);
            if segment == Segment::Window {
                self.push_back(at, Segment::Window);
            } else {
                self.push_back(at, Segment::Protected);
                while self.len(Segment::Protected) > self.protected.max(1) {
                    let oldest = self.lists[Segment::Protected as usize].head;
                    self.unlink(oldest);
                    self.push_back(oldest, Segment::Probation);
                }
            }
            let dropped = None;
            return Visit {
                hit: true,
                at,
                dropped,
            };
        }
        let node = SimNode {
            hash,
            prev: NIL,
            next: NIL,
            segment: Segment::Window,
        };
        let at = if let Some(at) = self.free.pop() {
            self.nodes[at as usize] = node;
            at
        } else {
            self.nodes.push(node);
            u32::try_from(self.nodes.len() - 1).unwrap_or(NIL)
        };
        self.push_back(at, Segment::Window);
        let miss = |dropped| Visit {
            hit: false,
            at,
            dropped,
        };
        if self.len(Segment::Window) <= self.window {
            return miss(None);
        }
        // The window holds two or more: its oldest is not the requested key.
        let candidate = self.lists[Segment::Window as usize].head;
        self.unlink(candidate);
        if self.len(Segment::Probation) + self.len(Segment::Protected) < self.main {
            self.push_back(candidate, Segment::Probation);
            return miss(None);
        }
        let victim = [Segment::Probation, Segment::Protected]
            .map(|segment| self.lists[segment as usize].head)
            .into_iter()
            .find(|&at| at != NIL);
        let Some(victim) = victim else {
            return miss(Some(self.free(candidate))); // no main space: the window is all
        };
        let rate = |at: u32| sketch.estimate(self.nodes[at as usize].hash);
        if rate(candidate) > rate(victim) {
            self.unlink(victim);
            self.push_back(candidate, Segment::Probation);
            miss(Some(self.free(victim)))
        } else {
            miss(Some(self.free(candidate)))
        }
    }
}

/// The simulations of one bounded cache (behind the upkeep lock, with the policy).
#[derive(Debug)]
pub(crate) struct MiniSims {
    mask: u64,
    sims: Vec<Sim>,
    index: Index,
    sketch: Sketch,
    /// Sampled requests by which simulations hit them (bit `i`: simulation `i`), of past
    /// epochs (an eighth forgotten per epoch) and this one.
    outcomes: Box<[u64; 1 << WINDOWS.len()]>,
    requests: u64,
    /// Sampled requests before the simulations are full and their hits compared.
    warm_up: u64,
    /// The capacity of each simulation.
    mini: u64,
    /// Per ring of [`HitSamples`]: hits replayed so far.
    replayed: Vec<u64>,
    /// The band the window may move in, in percent of the capacity.
    band: (u64, u64),
    pick: usize,
}

impl MiniSims {
    pub(crate) fn new(capacity: u64) -> Self {
        let (mask, mini) = sample(capacity);
        // At most MINI_CAPACITY, so a u32.
        let mini = u32::try_from(mini).unwrap_or(u32::MAX);
        let sketch = Sketch::sized(u64::from(mini));
        Self {
            mask,
            sims: WINDOWS.iter().map(|&w| Sim::new(mini, w)).collect(),
            index: Index::default(),
            sketch,
            outcomes: Box::new([0; 1 << WINDOWS.len()]),
            requests: 0,
            warm_up: u64::from(mini),
            mini: u64::from(mini),
            replayed: Vec::new(),
            band: (0, 100),
            pick: 0,
        }
    }

    /// The band the window may move in, in percent of the capacity.
    pub(crate) fn band(&self) -> (u64, u64) {
        self.band
    }

    /// Replays the sampled hits recorded since the last call, [`REPLAY_BUDGET`] at most;
    /// whether the band moved.
    pub(crate) fn replay_hits(&mut self, samples: &HitSamples) -> bool {
        self.replayed.resize(samples.rings.len(), 0);
        let mut budget = REPLAY_BUDGET;
        let mut moved = false;
        for (ring, replayed) in samples.rings.iter().zip(0..) {
            let written = ring.written.load(Relaxed);
            let len = ring.slots.len() as u64;
            let mut next = self.replayed[replayed];
            if written.wrapping_sub(next) > len {
                // Hits were lost: the simulations would see a shortened workload (a loop
                // would seem to fit, say). They start over from here.
                self.restart();
                next = written - len;
            }
            // NOTE: a slot written over in a race since is replayed as its new hash: noise.
            while next < written && budget > 0 {
                #[allow(clippy::cast_possible_truncation)] // reduced modulo the ring
                let hash = ring.slots[(next % len) as usize].load(Relaxed);
                moved |= self.request(hash);
                next += 1;
                budget -= 1;
            }
            self.replayed[replayed] = next;
        }
        moved
    }

    /// Empties the simulations and forgets their outcomes, to fill them again.
    fn restart(&mut self) {
        for sim in &mut self.sims {
            sim.clear();
        }
        self.index.clear();
        self.outcomes.fill(0);
        self.warm_up = self.requests + self.mini;
    }

    /// A miss on `hash` (stored by the policy); whether the band moved.
    pub(crate) fn missed(&mut self, hash: u64) -> bool {
        hash & self.mask == 0 && self.request(hash)
    }

    fn request(&mut self, hash: u64) -> bool {
        // The sampled hashes' low bits are all clear: the sketch gets them turned to the top,
        // where its row hashing (a multiplication) does not need them.
        let hash = hash.rotate_right(self.mask.count_ones());
        self.sketch.increment(hash, 1);
        let mut held = self
            .index
            .get(&hash)
            .copied()
            .unwrap_or([NIL; WINDOWS.len()]);
        let mut dropped = [None; WINDOWS.len()];
        let mut outcome = 0;
        for (i, sim) in self.sims.iter_mut().enumerate() {
            let visit = sim.request(hash, held[i], &self.sketch);
            outcome |= usize::from(visit.hit) << i;
            (held[i], dropped[i]) = (visit.at, visit.dropped);
        }
        self.index.insert(hash, held);
        for (i, dropped) in dropped.into_iter().enumerate() {
            let Some(dropped) = dropped else { continue };
            // INVARIANT: a dropped key was held, so it has an entry; it goes with its last
            // simulation.
            if let Some(held) = self.index.get_mut(&dropped) {
                held[i] = NIL;
                if held.iter().all(|&at| at == NIL) {
                    self.index.remove(&dropped);
                }
            }
        }
        self.outcomes[outcome] += 1;
        self.requests += 1;
        if self.requests % EPOCH != 0 {
            return false;
        }
        if self.requests <= self.warm_up {
            self.outcomes.fill(0); // the simulations were still filling
            return false;
        }
        let pick = self.decide();
        for count in self.outcomes.iter_mut() {
            *count -= *count / 8;
        }
        if pick == self.pick || self.requests <= self.warm_up + EPOCH {
            return false;
        }
        self.pick = pick;
        self.band = band(pick);
        true
    }

    /// The simulation to follow: the current one while no other hit significantly more
    /// often, else the one that hit most.
    fn decide(&self) -> usize {
        // How many requests `a` hit and `b` missed. A difference of these two counts (one
        // each way) is the difference of two simulations' hits on the same requests, and the
        // requests both hit or both missed say nothing about it (McNemar's test).
        let only = |a: usize, b: usize| -> u64 {
            (self.outcomes.iter().enumerate())
                .filter(|&(outcome, _)| outcome >> a & 1 == 1 && outcome >> b & 1 == 0)
                .map(|(_, &count)| count)
                .sum()
        };
        // Whether `a` hit significantly more often than `b`: by three standard deviations.
        let beats = |a: usize, b: usize| {
            let (wins, losses) = (only(a, b), only(b, a));
            wins > losses && (wins - losses).pow(2) > 9 * (wins + losses)
        };
        let hits = |a: usize| -> u64 {
            (self.outcomes.iter().enumerate())
                .filter(|&(outcome, _)| outcome >> a & 1 == 1)
                .map(|(_, &count)| count)
                .sum()
        };
        let best = (0..WINDOWS.len())
            .max_by_key(|&i| (hits(i), std::cmp::Reverse(i)))
            .unwrap_or(0);
        if beats(best, self.pick) {
            best
        } else {
            self.pick
        }
    }
}

/// The band the window may move in while following simulation `pick`, in percent of the
/// capacity: from halfway to the next smaller simulated window to halfway to the next
/// larger one. The smallest window's band is the whole range: where a small window wins
/// (frequency-heavy workloads, loops), the tuner's local view sizes it well, and its moves
/// up and down cost nothing there.
fn band(pick: usize) -> (u64, u64) {
    if pick == 0 {
        return (0, 100);
    }
    let window = WINDOWS[pick];
    let low = WINDOWS[pick - 1].midpoint(window);
    let high = WINDOWS
        .get(pick + 1)
        .map_or(100, |&larger| window.midpoint(larger));
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_brings_a_large_capacity_down_to_1024_to_2048() {
        for (capacity, mask, mini) in [
            (3, 3, 1),
            (1_000, 3, 250),
            (8_192, 3, 2_048),
            (8_196, 7, 1_024),
            (100_000, 63, 1_562),
            (1 << 40, (1 << 29) - 1, 2_048),
        ] {
            assert_eq!(sample(capacity), (mask, mini), "{capacity}");
        }
    }

    fn hash(key: u64) -> u64 {
        // Low bits clear: sampled at every capacity of the tests.
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15) << 16
    }

    #[test]
    fn the_band_follows_the_workload_both_ways() {
        let mut sims = MiniSims::new(1_000);
        assert_eq!(sims.band(), (0, 100), "no constraint to start with");
        // Keys drawn evenly from 500 that slide on by one every ten requests (twice the
        // simulations' 250 entries): recency is all that counts.
        let mut random = 0x2545_F491_4F6C_DD1D_u64;
        for i in 0..20_000_u64 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            sims.missed(hash(i / 10 + random % 500));
        }
        assert_eq!(sims.band(), (94, 100), "the 99% window won");
        // A hot set of 200 keys asked for half the time, among one-off keys: a small window
        // keeps the hot ones, an LRU of 250 none (400 keys come between two requests of one).
        for i in 0..40_000_u64 {
            sims.missed(hash(if i % 2 == 0 { i % 400 } else { 1 << 40 | i }));
        }
        assert_eq!(
            sims.band(),
            (0, 100),
            "the 1% window won: the tuner is free"
        );
    }

    #[test]
    fn sampled_hits_are_replayed_once_in_budget_and_a_lost_one_restarts() {
        let samples = HitSamples::new(1_000, 1);
        let mut sims = MiniSims::new(1_000);
        samples.hit(hash(1) | 1); // not sampled
        for key in 0..3 {
            samples.hit(hash(key));
        }
        sims.replay_hits(&samples);
        assert_eq!(sims.requests, 3, "the sampled ones");
        sims.replay_hits(&samples);
        assert_eq!(sims.requests, 3, "none twice");
        for key in 0..100 {
            samples.hit(hash(key));
        }
        sims.replay_hits(&samples);
        assert_eq!(
            sims.requests,
            3 + u64::from(REPLAY_BUDGET),
            "a budget per call"
        );
        sims.replay_hits(&samples);
        assert_eq!(sims.requests, 103, "the rest at the next call");
        assert_eq!(sims.warm_up, 250, "nothing lost so far: one mini capacity");
        for key in 0..=samples.rings[0].slots.len() as u64 {
            samples.hit(hash(key));
        }
        sims.replay_hits(&samples);
        assert_eq!(
            sims.warm_up,
            103 + 250,
            "lost a hit: filling again from here"
        );
        assert_eq!(sims.index.len(), 64, "the latest hits replayed");
    }
}
