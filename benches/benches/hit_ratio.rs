//! Hit ratio per workload and contestant (see `smartcache_benches::ratio`): one-shot, not a
//! criterion measurement; the means of [`SEEDS`](smartcache_benches::ratio::SEEDS) replays
//! (about a minute). In quick mode (CI's smoke run) only `gli` and short synthetic streams,
//! replayed once: a fraction of a second.

fn main() {
    smartcache_benches::ratio::run(smartcache_benches::quick_mode(), &[], None);
}
