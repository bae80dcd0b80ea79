//! Hit ratio per workload and contestant (see `smartcache_benches::ratio`), printed as a
//! markdown table with the gap to the best peer, and written as a one-shot scenario
//! (`hit-ratio`) for `bench-report`. Arguments: `quick` for the short set, and name prefixes
//! to run only some workloads.
//!
//! ```text
//! cargo run --release -p smartcache-benches --bin hit-ratio [-- quick] [-- gli sprite ...]
//! ```

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = smartcache_benches::quick_mode() || args.iter().any(|a| a == "quick");
    let only: Vec<String> = args.into_iter().filter(|a| a != "quick").collect();
    smartcache_benches::ratio::run(quick, &only);
}
