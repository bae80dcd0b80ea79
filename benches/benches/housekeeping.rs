//! Worst single call under housekeeping (see `smartcache_benches::probes`): one-shot, not a
//! criterion measurement. One million entries, or ten thousand in quick mode (CI's smoke run).

use smartcache_benches::{probes, publish, quick_mode};

fn main() {
    let entries = if quick_mode() { 10_000 } else { 1_000_000 };
    let mut rows = probes::run_all(entries);
    if !quick_mode() {
        rows.extend(probes::run_all(100_000));
    }
    publish("housekeeping", &rows);
}
