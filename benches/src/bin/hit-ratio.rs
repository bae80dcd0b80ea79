//! Hit ratio per workload and contestant (see `smartcache_benches::ratio`), printed as a
//! markdown table with the gap to the best peer, and written as a one-shot scenario
//! (`hit-ratio`) for `bench-report`. Arguments: `quick` for the short set, `seeds=N` for the
//! number of replays averaged (default [`SEEDS`](smartcache_benches::ratio::SEEDS), 1 in quick
//! mode), and name prefixes to run only some workloads.
//!
//! ```text
//! cargo run --release -p smartcache-benches --bin hit-ratio [-- quick] [-- seeds=10] [-- gli sprite ...]
//! ```

fn main() {
    let args = smartcache_benches::ratio::Args::from_env();
    smartcache_benches::ratio::run(args.quick, &args.only, args.seeds);
}
