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
    let mut quick = smartcache_benches::quick_mode();
    let mut seeds = None;
    let mut only = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "quick" {
            quick = true;
        } else if let Some(count) = arg.strip_prefix("seeds=") {
            match count.parse::<usize>() {
                Ok(count) if count > 0 => seeds = Some(count),
                _ => {
                    eprintln!("seeds=N wants a positive number, not `{count}`");
                    std::process::exit(2);
                }
            }
        } else {
            only.push(arg);
        }
    }
    smartcache_benches::ratio::run(quick, &only, seeds);
}
