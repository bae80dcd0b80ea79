//! Synthetic workloads of the trace families the hit-ratio target is judged on beyond the
//! five shared traces: several programs taking turns (as the LIRS "multi" traces do),
//! popularity that drifts or switches, frequency mixed with a loop, and bursts of repeats.
//!
//! The shared traces are a sample, and a policy tuned to them alone can be tuned to their
//! accidents: multi2, for one, is 26,311 requests, so its first fill weighs on the result
//! as it would not on a longer trace of the same family. These streams, seeded and
//! deterministic, give each family more rows: short and long forms of the multi-program
//! kind, where the first fill does and does not matter, and a steady Zipf (`zipf-0.9-10k`)
//! beside the switching one made of it, so that what a switch costs can be read off.

use crate::ratio::Workload;
use crate::{Rng, zipf_stream};

/// Keys of program `program` (1, 2, ...): its own range, far from the others'.
fn program(keys: Vec<u64>, program: u64) -> Vec<u64> {
    keys.into_iter().map(|key| key + (program << 40)).collect()
}

/// `0, 1, ..., cycle - 1, 0, ...`: `len` requests of a loop.
fn looping(cycle: u64, len: usize) -> Vec<u64> {
    (0..len as u64).map(|i| i % cycle).collect()
}

/// `len` requests drawn uniformly from `keys` keys.
fn uniform(keys: u64, len: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next_u64() % keys).collect()
}

/// The programs' streams taking turns of `turn` requests each, round robin, until all end.
fn in_turns(programs: &[Vec<u64>], turn: usize) -> Vec<u64> {
    let longest = programs.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(programs.iter().map(Vec::len).sum());
    for start in (0..longest).step_by(turn.max(1)) {
        for stream in programs {
            let end = (start + turn).min(stream.len());
            out.extend_from_slice(stream.get(start..end).unwrap_or_default());
        }
    }
    out
}

/// Two streams interleaved at random, `share_of_a` percent of the requests from `a`, until
/// one of them ends.
fn interleaved(a: &[u64], b: &[u64], share_of_a: u64, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let (mut a, mut b) = (a.iter(), b.iter());
    std::iter::from_fn(|| {
        if rng.next_u64() % 100 < share_of_a {
            a.next()
        } else {
            b.next()
        }
    })
    .copied()
    .collect()
}

/// The family workloads (none in quick mode: CI's smoke replay stays a fraction of a
/// second):
///
/// - `programs-lzsu`: four programs in turns of 1,000 requests: a loop of 400 keys, Zipf
///   0.9 over 5,000, a scan of keys never seen again, uniform over 800;
/// - `programs-loops`: loops of 300, 700 and 1,500 keys in turns of 800;
/// - `programs-zzu`: Zipf 0.7 over 3,000, Zipf 1.1 over 20,000, uniform over 600, in turns
///   of 1,500;
///
///   each with 8,000 requests a program (`-short`, the first fill weighs) and 60,000
///   (`-long`), at two capacities;
/// - `zipf-drift`: Zipf 1.0 over 50,000 keys whose ranks move by 500 keys every 20,000
///   requests;
/// - `zipf-0.9-10k`: Zipf 0.9 over 10,000 keys, and `phases-50k` / `phases-200k`: the same
///   requests, switching to a second set of 10,000 keys and back every 50,000 or 200,000;
/// - `zipf+loop`: Zipf 0.9 over 20,000 keys, 60% of the requests, the rest a loop of 1,200;
/// - `bursty`: Zipf 0.8 over 50,000 keys, each request repeated once to three times at once.
#[must_use]
pub fn family_workloads(quick: bool) -> Vec<Workload> {
    let mut workloads = Vec::new();
    if quick {
        return workloads;
    }
    let mut add = |name: &str, keys: Vec<u64>, capacities: &[u64]| {
        for &capacity in capacities {
            workloads.push(Workload {
                name: format!("{name}@{capacity}"),
                keys: keys.clone(),
                capacity,
            });
        }
    };
    for (len, length) in [(8_000, "short"), (60_000, "long")] {
        let lzsu = [
            program(looping(400, len), 1),
            program(zipf_stream(5_000, 0.9, 0.0, len, 3), 2),
            program((0..len as u64).collect(), 3),
            program(uniform(800, len, 4), 4),
        ];
        add(
            &format!("programs-lzsu-{length}"),
            in_turns(&lzsu, 1_000),
            &[500, 1_500],
        );
        let loops = [1, 2, 3].map(|p| program(looping([300, 700, 1_500][p - 1], len), p as u64));
        add(
            &format!("programs-loops-{length}"),
            in_turns(&loops, 800),
            &[600, 1_500],
        );
        let zzu = [
            program(zipf_stream(3_000, 0.7, 0.0, len, 5), 1),
            program(zipf_stream(20_000, 1.1, 0.0, len, 6), 2),
            program(uniform(600, len, 7), 3),
        ];
        add(
            &format!("programs-zzu-{length}"),
            in_turns(&zzu, 1_500),
            &[500, 1_500],
        );
    }
    let drifting = zipf_stream(50_000, 1.0, 0.0, 400_000, 9)
        .into_iter()
        .zip(0_u64..)
        .map(|(key, i)| (key + 500 * (i / 20_000)) % 50_000)
        .collect();
    add("zipf-drift", drifting, &[1_000]);
    let steady = zipf_stream(10_000, 0.9, 0.0, 400_000, 13);
    for period in [50_000, 200_000] {
        let switching = (steady.iter().zip(0_u64..))
            .map(|(&key, i)| key + (((i / period) % 2) << 40))
            .collect();
        add(&format!("phases-{}k", period / 1_000), switching, &[1_000]);
    }
    add("zipf-0.9-10k", steady, &[1_000]);
    let zipf = zipf_stream(20_000, 0.9, 0.0, 300_000, 17);
    let cycle = program(looping(1_200, 300_000), 5);
    add("zipf+loop", interleaved(&zipf, &cycle, 60, 19), &[1_000]);
    let mut rng = Rng::new(23);
    let bursty = zipf_stream(50_000, 0.8, 0.0, 200_000, 29)
        .into_iter()
        .flat_map(|key| std::iter::repeat_n(key, 1 + (rng.next_u64() % 3) as usize))
        .collect();
    add("bursty", bursty, &[1_000]);
    workloads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_take_turns_until_every_one_ends() {
        let streams = [vec![1, 2, 3], vec![10], vec![20, 21, 22, 23]];
        assert_eq!(in_turns(&streams, 2), [1, 2, 10, 20, 21, 3, 22, 23]);
    }

    #[test]
    fn interleaving_stops_when_a_stream_ends_and_keeps_each_ones_order() {
        let (a, b): (Vec<u64>, Vec<u64>) = ((0..100).collect(), (1_000..1_100).collect());
        let mixed = interleaved(&a, &b, 60, 1);
        let from_a: Vec<u64> = mixed.iter().copied().filter(|&k| k < 1_000).collect();
        let from_b: Vec<u64> = mixed.iter().copied().filter(|&k| k >= 1_000).collect();
        assert!(from_a.len() == 100 || from_b.len() == 100, "one ran out");
        assert_eq!(from_a, a[..from_a.len()]);
        assert_eq!(from_b, b[..from_b.len()]);
        assert!(from_a.len() > from_b.len(), "60% from a");
    }
}
