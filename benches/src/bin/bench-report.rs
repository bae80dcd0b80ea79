//! Turns the suite's results into the tables and plots of `docs/benchmarks.md`.
//!
//! Reads criterion's estimates (`<criterion dir>/<group>/<contestant>[/<tasks>]/new/`) and the
//! one-shot scenarios' rows (`<criterion dir>/smartcache-one-shot/*.json`), prints the
//! markdown tables (with ratios to the floor and to smartcache) and the target check, and
//! draws `bench-hit.svg`, `bench-throughput.svg` and `bench-hit-ratio.svg` into the docs
//! directory.
//!
//! ```text
//! cargo run --release -p smartcache-benches --bin bench-report [-- <criterion dir> <docs dir>]
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Deserialize;
use smartcache_benches::{Row, criterion_dir, one_shot_file};

const SMARTCACHE: &str = "smartcache";
const FLOOR: &str = "dashmap (foldhash)";

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One criterion benchmark: nanoseconds per request (a hit, a miss, one Zipf request).
#[derive(Debug, Clone)]
struct Measured {
    group: String,
    contestant: String,
    parameter: Option<String>,
    nanos: f64,
}

#[derive(Deserialize)]
struct BenchmarkFile {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
enum Throughput {
    Elements(u64),
    #[serde(other)]
    Other,
}

/// Criterion's estimates; the median of the samples' per-iteration times is used, as the
/// figure least moved by other processes running on the machine.
#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Every `new/benchmark.json` under `dir`, with its estimate per request.
fn read_criterion(dir: &Path, found: &mut Vec<Measured>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let benchmark = path.join("new").join("benchmark.json");
        if benchmark.is_file() && path.file_name().is_some_and(|name| name != "base") {
            let meta: BenchmarkFile = serde_json::from_slice(&std::fs::read(&benchmark)?)?;
            let estimates: Estimates =
                serde_json::from_slice(&std::fs::read(path.join("new").join("estimates.json"))?)?;
            let per_iteration = estimates.median.point_estimate;
            let requests = match meta.throughput {
                Some(Throughput::Elements(n)) if n > 0 => n as f64,
                _ => 1.0,
            };
            found.push(Measured {
                group: meta.group_id,
                contestant: meta.function_id.unwrap_or_default(),
                parameter: meta.value_str,
                nanos: per_iteration / requests,
            });
        } else {
            read_criterion(&path, found)?;
        }
    }
    Ok(())
}

fn one_shot(dir: &Path, scenario: &str) -> Vec<Row> {
    std::fs::read(one_shot_file(dir, scenario))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

/// The results, indexed by group, then contestant, then parameter.
struct Results {
    criterion: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// Contestants in the order the suite runs them.
    order: Vec<String>,
    /// Where the results are.
    dir: PathBuf,
}

impl Results {
    fn load(dir: &Path) -> Result<Self> {
        let mut found = Vec::new();
        read_criterion(dir, &mut found)?;
        let mut criterion: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> =
            BTreeMap::new();
        for m in found {
            criterion
                .entry(m.group)
                .or_default()
                .entry(m.contestant)
                .or_default()
                .insert(m.parameter.unwrap_or_default(), m.nanos);
        }
        let order = one_shot(dir, "memory")
            .into_iter()
            .map(|row| row.contestant)
            .collect();
        Ok(Self {
            criterion,
            order,
            dir: dir.to_owned(),
        })
    }

    /// A one-shot scenario's rows.
    fn rows(&self, scenario: &str) -> Vec<Row> {
        one_shot(&self.dir, scenario)
    }

    fn nanos(&self, group: &str, contestant: &str, parameter: &str) -> Option<f64> {
        self.criterion
            .get(group)?
            .get(contestant)?
            .get(parameter)
            .copied()
    }

    /// Contestants of a group: the suite's order first, then any others.
    fn contestants(&self, group: &str) -> Vec<String> {
        let Some(rows) = self.criterion.get(group) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self
            .order
            .iter()
            .filter(|name| rows.contains_key(*name))
            .cloned()
            .collect();
        let others: Vec<String> = rows
            .keys()
            .filter(|name| !names.contains(name))
            .cloned()
            .collect();
        names.extend(others);
        names
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

fn nanos_text(nanos: Option<f64>) -> String {
    nanos.map_or_else(|| "–".into(), |n| format!("{n:.1}"))
}

/// A latency table: ns per request, × the floor, and how many times smartcache is faster.
fn latency_table(results: &Results, group: &str, unit: &str) -> String {
    let mut out = format!(
        "| contestant | {unit} | × floor ({FLOOR}) | smartcache speed-up |\n|---|---:|---:|---:|\n"
    );
    let floor = results.nanos(group, FLOOR, "");
    let smart = results.nanos(group, SMARTCACHE, "");
    for name in results.contestants(group) {
        let nanos = results.nanos(group, &name, "");
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            nanos_text(nanos),
            ratio(nanos, floor),
            ratio(nanos, smart),
        );
    }
    out
}

/// `#[smart_cached]` functions against direct calls, per key kind.
fn macro_table(results: &Results) -> String {
    let mut out = String::from("| call | ns per hit | × direct |\n|---|---:|---:|\n");
    for (call, direct) in [
        ("direct get_or_compute", "direct get_or_compute"),
        ("#[smart_cached] fn", "direct get_or_compute"),
        (
            "direct get_or_compute, String key",
            "direct get_or_compute, String key",
        ),
        (
            "#[smart_cached] fn, &str argument",
            "direct get_or_compute, String key",
        ),
    ] {
        let nanos = results.nanos("hit_macro", call, "");
        let base = results.nanos("hit_macro", direct, "");
        let _ = writeln!(
            out,
            "| `{call}` | {} | {} |",
            nanos_text(nanos),
            ratio(nanos, base)
        );
    }
    out
}

const TASKS: [&str; 4] = ["1", "2", "4", "8"];
const ZIPF: &str = "zipf_throughput";
const ZIPF_ALL_HITS: &str = "zipf_throughput_all_hits";

/// Millions of requests per second in a Zipf group.
fn mops_in(results: &Results, group: &str, contestant: &str, tasks: &str) -> Option<f64> {
    results.nanos(group, contestant, tasks).map(|ns| 1e3 / ns)
}

/// Millions of requests per second in the spec's Zipf scenario (95% hits).
fn mops(results: &Results, contestant: &str, tasks: &str) -> Option<f64> {
    mops_in(results, ZIPF, contestant, tasks)
}

/// Zipf throughput in millions of requests per second, and smartcache's multiple of each.
fn throughput_table(results: &Results, group: &str) -> String {
    let mops = |contestant: &str, tasks: &str| mops_in(results, group, contestant, tasks);
    let mut out = String::from(
        "| contestant | 1 task | 2 tasks | 4 tasks | 8 tasks | smartcache ÷ this (1/2/4/8) |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    for name in results.contestants(group) {
        let cells: Vec<String> = TASKS
            .iter()
            .map(|t| mops(&name, t).map_or_else(|| "–".into(), |m| format!("{m:.2}")))
            .collect();
        let ratios: Vec<String> = TASKS
            .iter()
            .map(|t| ratio(mops(SMARTCACHE, t), mops(&name, t)))
            .collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} |",
            cells.join(" | "),
            ratios.join(" / ")
        );
    }
    out
}

/// A one-shot scenario as a table of its figures.
fn one_shot_table(results: &Results, scenario: &str) -> String {
    let rows = results.rows(scenario);
    let Some(first) = rows.first() else {
        return format!("(no results for `{scenario}`)\n");
    };
    let names: Vec<&str> = first.figures.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = format!("| contestant | {} |\n|---|", names.join(" | "));
    out.push_str(&"---:|".repeat(names.len()));
    out.push('\n');
    for row in &rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                row.figure(n)
                    .map_or_else(|| "–".into(), |v| format!("{v:.2}"))
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", row.contestant, cells.join(" | "));
    }
    out
}

fn figure(results: &Results, scenario: &str, contestant: &str, name: &str) -> Option<f64> {
    results
        .rows(scenario)
        .into_iter()
        .find(|row| row.contestant == contestant)?
        .figure(name)
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// The spec's targets, each with smartcache's figure.
fn targets_table(results: &Results) -> String {
    let mut out = String::from("| target | figure | verdict |\n|---|---|---|\n");
    let mut row = |target: &str, figure: String, met: Option<bool>| {
        let _ = writeln!(out, "| {target} | {figure} | {} |", verdict(met));
    };
    let hit = |name: &str| results.nanos("hit_u64", name, "");
    let (smart, floor) = (hit(SMARTCACHE), hit(FLOOR));
    let hit_ratio = smart.zip(floor).map(|(s, f)| s / f);
    row(
        "hit ≤ 1.5× raw DashMap",
        hit_ratio.map_or("–".into(), |r| format!("{r:.2}×")),
        hit_ratio.map(|r| r <= 1.5),
    );
    for peer in ["quick_cache", "moka"] {
        let peer_ratio = smart.zip(hit(peer)).map(|(s, p)| s / p);
        row(
            &format!("hit faster than {peer}"),
            peer_ratio.map_or("–".into(), |r| format!("{r:.2}× its time")),
            peer_ratio.map(|r| r < 1.0),
        );
    }
    let via_macro = results
        .nanos("hit_macro", "#[smart_cached] fn", "")
        .zip(results.nanos("hit_macro", "direct get_or_compute", ""))
        .map(|(m, d)| m / d);
    row(
        "hit via `#[smart_cached]` fn ≤ 1.2× direct `get_or_compute`",
        via_macro.map_or("–".into(), |r| format!("{r:.2}×")),
        via_macro.map(|r| r <= 1.2),
    );
    let herd_runs = figure(results, "herd", SMARTCACHE, "max_computations");
    let herd_wall = figure(results, "herd", SMARTCACHE, "worst_wall_ms");
    row(
        "herd: exactly 1 computation",
        herd_runs.map_or("–".into(), |r| format!("{r:.0} (worst run)")),
        herd_runs.map(|r| (r - 1.0).abs() < f64::EPSILON),
    );
    row(
        "herd: wall ≤ compute + 10 ms (20 ms)",
        herd_wall.map_or("–".into(), |w| format!("{w:.1} ms (worst run)")),
        herd_wall.map(|w| w <= 20.0),
    );
    let during = figure(results, "hit_during_computation", SMARTCACHE, "worst_us");
    row(
        "hit while another key computes < 1 ms",
        during.map_or("–".into(), |w| format!("{w:.1} µs (worst read)")),
        during.map(|w| w < 1_000.0),
    );
    let cold = figure(results, "cold_keys", SMARTCACHE, "worst_wall_ms");
    row(
        "100 cold keys × 10 ms < 50 ms",
        cold.map_or("–".into(), |w| format!("{w:.1} ms (worst run)")),
        cold.map(|w| w < 50.0),
    );
    for (peer, at_least) in [
        (FLOOR, 0.75),
        ("quick_cache", 1.0),
        ("moka", 3.0),
        ("naive Mutex<HashMap>", 3.0),
    ] {
        let ratios: Vec<f64> = TASKS
            .iter()
            .filter_map(|t| Some(mops(results, SMARTCACHE, t)? / mops(results, peer, t)?))
            .collect();
        let worst = ratios.iter().copied().reduce(f64::min);
        let text: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        row(
            &format!("Zipf throughput ≥ {at_least}× {peer}"),
            format!("{}× (1/2/4/8 tasks)", text.join(" / ")),
            worst.map(|w| w >= at_least),
        );
    }
    let memory = |name: &str| figure(results, "memory", name, "bytes_per_entry");
    let mem_ratio = memory(SMARTCACHE).zip(memory(FLOOR)).map(|(s, f)| s / f);
    row(
        "memory per entry ≤ 1.5× raw DashMap",
        mem_ratio.map_or("–".into(), |r| format!("{r:.2}×")),
        mem_ratio.map(|r| r <= 1.5),
    );
    let below_moka = memory(SMARTCACHE).zip(memory("moka"));
    row(
        "memory per entry below moka",
        below_moka.map_or("–".into(), |(s, m)| format!("{s:.1} B vs {m:.1} B")),
        below_moka.map(|(s, m)| s < m),
    );
    out
}

/// Hit latency, `u64` and `String` keys side by side, as horizontal bars.
fn plot_hits(results: &Results, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    for (area, group, title) in [
        (
            left,
            "hit_u64",
            "hit latency, u64 key (ns, lower is better)",
        ),
        (right, "hit_string", "hit latency, String key (ns)"),
    ] {
        let names = results.contestants(group);
        let values: Vec<f64> = names
            .iter()
            .map(|n| results.nanos(group, n, "").unwrap_or(0.0))
            .collect();
        let max = values.iter().copied().fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(170)
            .build_cartesian_2d(0.0..max, (0..names.len()).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(names.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            let color = if names[i] == SMARTCACHE {
                RED.mix(0.8)
            } else {
                BLUE.mix(0.5)
            };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (*v, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            Text::new(
                format!("{v:.1}"),
                (*v, SegmentValue::CenterOf(i)),
                ("sans-serif", 12),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}

/// Zipf throughput against the task count, one line per contestant, log scale: 95% hits on
/// the left, all hits on the right.
fn plot_throughput(results: &Results, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let all: Vec<f64> = [ZIPF, ZIPF_ALL_HITS]
        .iter()
        .flat_map(|group| {
            results.contestants(group).into_iter().flat_map(move |n| {
                TASKS
                    .iter()
                    .filter_map(move |t| mops_in(results, group, &n, t))
            })
        })
        .collect();
    if all.is_empty() {
        return Ok(()); // no throughput results: an empty log-scale range would never end
    }
    let low = all.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3) / 2.0;
    let high = all.iter().copied().fold(1.0, f64::max) * 2.0;
    let (left, right) = root.split_horizontally(600);
    for (area, group, title) in [
        (left, ZIPF, "Zipf, 95% hits, 2 workers (M req/s, log)"),
        (
            right,
            ZIPF_ALL_HITS,
            "Zipf, all hits, 2 workers (M req/s, log)",
        ),
    ] {
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 16))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d((1.0f64..8.0).log_scale(), (low..high).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("tasks")
            .y_desc("M requests / s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        for (index, name) in results.contestants(group).iter().enumerate() {
            let points: Vec<(f64, f64)> = TASKS
                .iter()
                .filter_map(|t| Some((t.parse().ok()?, mops_in(results, group, name, t)?)))
                .collect();
            let color = if name == SMARTCACHE {
                RED.to_rgba()
            } else {
                Palette99::pick(index).to_rgba()
            };
            let width = if name == SMARTCACHE { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(width))
                });
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The hit-ratio rows (`hit-ratio` one-shot scenario): per workload, each contestant's
/// ratio, and smartcache's gap to the best of the others.
fn hit_ratio_rows(results: &Results) -> (Vec<String>, Vec<(String, Vec<f64>)>) {
    let rows = results.rows("hit-ratio");
    let workloads: Vec<String> = rows.first().map_or_else(Vec::new, |row| {
        row.figures
            .iter()
            .map(|(name, _)| name.trim_end_matches("_pct").to_owned())
            .collect()
    });
    let ratios = rows
        .iter()
        .map(|row| {
            let values = workloads
                .iter()
                .map(|w| row.figure(&format!("{w}_pct")).unwrap_or(f64::NAN))
                .collect();
            (row.contestant.clone(), values)
        })
        .collect();
    (workloads, ratios)
}

fn hit_ratio_table(results: &Results) -> String {
    let (workloads, ratios) = hit_ratio_rows(results);
    if ratios.is_empty() {
        return "(no results for `hit-ratio`)\n".to_owned();
    }
    let names: Vec<&str> = ratios.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = format!(
        "| workload | {} | gap to the best peer |\n|---|{}---:|\n",
        names.join(" | "),
        "---:|".repeat(names.len())
    );
    let (mut ours, mut best_peers) = (0.0, 0.0);
    for (i, workload) in workloads.iter().enumerate() {
        let column: Vec<f64> = ratios.iter().map(|(_, v)| v[i]).collect();
        let best_peer = column[1..].iter().copied().fold(f64::MIN, f64::max);
        ours += column[0];
        best_peers += best_peer;
        let cells: Vec<String> = column.iter().map(|v| format!("{v:.2}")).collect();
        let _ = writeln!(
            out,
            "| {workload} | {} | {:+.2} |",
            cells.join(" | "),
            column[0] - best_peer
        );
    }
    let n = workloads.len() as f64;
    let means: Vec<String> = (0..names.len())
        .map(|c| format!("{:.2}", ratios[c].1.iter().sum::<f64>() / n))
        .collect();
    let _ = writeln!(
        out,
        "| **mean** | {} | {:+.2} (vs the mean of the best peers) |",
        means.join(" | "),
        (ours - best_peers) / n
    );
    out
}

/// Hit ratio per workload, one marker series per contestant.
fn plot_hit_ratio(results: &Results, path: &Path) -> Result<()> {
    let (workloads, ratios) = hit_ratio_rows(results);
    if ratios.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "hit ratio per workload (%, higher is better)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(150)
        .y_label_area_size(50)
        .build_cartesian_2d((0..workloads.len()).into_segmented(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(workloads.len())
        .x_label_style(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => workloads.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let colors = [RED, BLUE, GREEN, BLACK, MAGENTA, CYAN];
    for (c, (name, values)) in ratios.iter().enumerate() {
        let color = colors[c % colors.len()];
        let size = if name == SMARTCACHE { 6 } else { 4 };
        chart
            .draw_series(
                values.iter().enumerate().map(|(i, v)| {
                    Circle::new((SegmentValue::CenterOf(i), *v), size, color.filled())
                }),
            )?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(criterion_dir, PathBuf::from);
    let docs = args.next().map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs")),
        PathBuf::from,
    );
    let results = Results::load(&dir)?;
    println!("## Targets\n\n{}", targets_table(&results));
    println!(
        "## Hit latency, u64\n\n{}",
        latency_table(&results, "hit_u64", "ns per hit")
    );
    println!(
        "## Hit latency, String\n\n{}",
        latency_table(&results, "hit_string", "ns per hit")
    );
    println!("## Hit through the macro\n\n{}", macro_table(&results));
    println!(
        "## Miss cost\n\n{}",
        latency_table(&results, "miss_u64", "ns per miss")
    );
    println!(
        "## Zipf throughput, 95% hits (M requests/s)\n\n{}",
        throughput_table(&results, ZIPF)
    );
    println!(
        "## Zipf throughput, all hits (M requests/s)\n\n{}",
        throughput_table(&results, ZIPF_ALL_HITS)
    );
    println!(
        "## Zipf throughput, bounded caches (M requests/s)\n\n{}",
        throughput_table(&results, "zipf_throughput_bounded")
    );
    for scenario in [
        "herd",
        "hit_during_computation",
        "cold_keys",
        "memory",
        "housekeeping",
    ] {
        println!("## {scenario}\n\n{}", one_shot_table(&results, scenario));
    }
    println!("## Hit ratio (%)\n\n{}", hit_ratio_table(&results));
    std::fs::create_dir_all(&docs)?;
    plot_hits(&results, &docs.join("bench-hit.svg"))?;
    plot_throughput(&results, &docs.join("bench-throughput.svg"))?;
    plot_hit_ratio(&results, &docs.join("bench-hit-ratio.svg"))?;
    eprintln!("plots written to {}", docs.display());
    Ok(())
}
