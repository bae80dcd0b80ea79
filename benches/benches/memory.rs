//! Memory per entry at 1,000,000 `u64 -> u64` entries, stored through each contestant's own
//! get-or-compute call, measured by a counting global allocator: live heap bytes after
//! filling (and letting moka apply its pending writes), minus live bytes before building the
//! cache, divided by the entry count.

// The counting allocator is one `unsafe impl`: it forwards to the system allocator and only
// adds atomic counters.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use smartcache_benches::{
    Contestant, Row, Scenario, Work, current_thread_runtime, fill, for_each_contestant, publish,
    quick_mode,
};

/// The system allocator, counting live bytes and the peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds as it does for `System`; the counters do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct MemoryPerEntry {
    runtime: tokio::runtime::Runtime,
    entries: u64,
    rows: Vec<Row>,
}

impl Scenario<u64> for MemoryPerEntry {
    fn run<C: Contestant<u64>>(&mut self) {
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let contestant = self.runtime.block_on(async {
            let contestant = C::new(Work::instant()).await;
            fill(&contestant, self.entries).await;
            contestant.settle().await;
            contestant
        });
        let retained = LIVE.load(Relaxed).saturating_sub(before);
        let peak = PEAK.load(Relaxed).saturating_sub(before);
        drop(contestant);
        let per_entry = |bytes: usize| bytes as f64 / self.entries as f64;
        self.rows.push(Row {
            contestant: C::NAME.to_owned(),
            figures: vec![
                ("bytes_per_entry".into(), per_entry(retained)),
                ("peak_bytes_per_entry".into(), per_entry(peak)),
                ("entries".into(), self.entries as f64),
            ],
        });
    }
}

fn main() {
    let mut scenario = MemoryPerEntry {
        runtime: current_thread_runtime(),
        entries: if quick_mode() { 100_000 } else { 1_000_000 },
        rows: Vec::new(),
    };
    for_each_contestant(&mut scenario);
    bounded(&mut scenario);
    publish("memory", &scenario.rows);
}

/// Bytes per entry of `make()` once `fill` stored `entries` entries in it.
fn measure<T>(
    scenario: &mut MemoryPerEntry,
    name: &str,
    make: impl FnOnce() -> T,
    fill: impl FnOnce(&T),
) {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let cache = make();
    fill(&cache);
    let retained = LIVE.load(Relaxed).saturating_sub(before);
    let peak = PEAK.load(Relaxed).saturating_sub(before);
    drop(cache);
    let per_entry = |bytes: usize| bytes as f64 / scenario.entries as f64;
    scenario.rows.push(Row {
        contestant: name.to_owned(),
        figures: vec![
            ("bytes_per_entry".into(), per_entry(retained)),
            ("peak_bytes_per_entry".into(), per_entry(peak)),
            ("entries".into(), scenario.entries as f64),
        ],
    });
}

/// The bounded caches, each with a capacity of exactly the entries stored: once full (every
/// entry in the eviction policy's bookkeeping, none evicted yet), and once `TURNOVERS` times
/// as many more keys have been stored, each evicting one (the steady state of a bounded
/// cache, where removals have left their mark on the tables).
fn bounded(scenario: &mut MemoryPerEntry) {
    let entries = scenario.entries;
    let runtime = current_thread_runtime();
    for turnovers in [0, TURNOVERS] {
        let keys = entries * (1 + turnovers);
        let suffix = if turnovers == 0 {
            String::new()
        } else {
            format!(", after {turnovers} turnovers")
        };
        measure(
            scenario,
            &format!("smartcache (bounded){suffix}"),
            || {
                smartcache::AsyncSmartCache::<u64, u64>::builder()
                    .max_capacity(entries)
                    .build()
            },
            |cache| {
                runtime.block_on(async {
                    for key in 0..keys {
                        let _ = cache.get_or_compute(key, || async move { Ok(key) }).await;
                    }
                });
                smartcache::__private::flush_reclaimer();
            },
        );
        measure(
            scenario,
            &format!("quick_cache (bounded){suffix}"),
            || {
                quick_cache::sync::Cache::<u64, u64>::new(
                    usize::try_from(entries).unwrap_or(usize::MAX),
                )
            },
            |cache| {
                for key in 0..keys {
                    cache.insert(key, key);
                }
            },
        );
    }
}

/// How many times over a bounded cache's entries are replaced for the steady-state rows.
const TURNOVERS: u64 = 3;
