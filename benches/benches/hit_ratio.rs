//! Hit ratio per workload and contestant (see `smartcache_benches::ratio`): one-shot, not a
//! criterion measurement; the means of [`SEEDS`](smartcache_benches::ratio::SEEDS) replays
//! (about a minute). In quick mode (CI's smoke run) only `gli` and short synthetic streams,
//! replayed once: a fraction of a second.

use smartcache_benches::ratio;

fn main() {
    let quick = smartcache_benches::quick_mode();
    ratio::run(quick, &[], if quick { 1 } else { ratio::SEEDS });
}
