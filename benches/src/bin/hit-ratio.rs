//! Hit ratio per workload and contestant (see `smartcache_benches::ratio`), printed as a
//! markdown table with the gap to the best peer, and written as a one-shot scenario
//! (`hit-ratio`) for `bench-report`.
//!
//! ```text
//! cargo run --release -p smartcache-benches --bin hit-ratio [-- quick] [-- only <name>...]
//! ```

use smartcache_benches::ratio::{CONTESTANTS, hit_ratio, synthetic_workloads, trace_workloads};
use smartcache_benches::{Row, publish, quick_mode};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = quick_mode() || args.iter().any(|a| a == "quick");
    let only: Vec<&String> = args.iter().filter(|a| *a != "quick").collect();
    let mut workloads = trace_workloads(quick);
    workloads.extend(synthetic_workloads(quick));
    workloads.retain(|w| only.is_empty() || only.iter().any(|o| w.name.starts_with(o.as_str())));
    println!(
        "| workload | requests | {} | gap to best peer |",
        CONTESTANTS.join(" | ")
    );
    println!("|---|---:|{}---:|", "---:|".repeat(CONTESTANTS.len()));
    let mut rows: Vec<Row> = CONTESTANTS
        .iter()
        .map(|c| Row {
            contestant: (*c).to_owned(),
            figures: Vec::new(),
        })
        .collect();
    for workload in &workloads {
        let ratios: Vec<f64> = CONTESTANTS.iter().map(|c| hit_ratio(c, workload)).collect();
        let best_peer = ratios[1..].iter().copied().fold(f64::MIN, f64::max);
        let cells: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "| {} | {} | {} | {:+.2} |",
            workload.name,
            workload.keys.len(),
            cells.join(" | "),
            ratios[0] - best_peer
        );
        for (row, ratio) in rows.iter_mut().zip(&ratios) {
            row.figures.push((format!("{}_pct", workload.name), *ratio));
        }
    }
    publish("hit-ratio", &rows);
}
