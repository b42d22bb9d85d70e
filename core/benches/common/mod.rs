//! The measuring harness shared by the benchmarks: our code and its floor run in interleaved
//! rounds, alternating which goes first, and the ratio is the median of per-round ratios, so a
//! slow patch of a shared machine slows both sides of a round alike.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// How long and how often to measure.
pub struct Config {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Time each side gets per round.
    pub round_time: Duration,
}

impl Config {
    /// Full runs under `cargo bench`; a short one with `--quick`, and a token one when the
    /// binary runs without `--bench` (as `cargo test --benches` does).
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        if args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench") {
            Config {
                rounds: 3,
                round_time: Duration::from_millis(5),
            }
        } else {
            Config {
                rounds: 31,
                round_time: Duration::from_millis(40),
            }
        }
    }
}

/// Times `iters` calls of `f`, returning nanoseconds per call.
pub fn time_per_call(iters: u64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// An iteration count for which `f` runs about `budget`.
pub fn calibrate(budget: Duration, f: &mut impl FnMut()) -> u64 {
    let mut iters = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let t = start.elapsed();
        if t >= budget / 4 || iters >= 1 << 30 {
            let per = t.as_nanos().max(1) as f64 / iters as f64;
            return ((budget.as_nanos() as f64 / per) as u64).max(1);
        }
        iters *= 4;
    }
}

/// The median of `v` (which it sorts).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN timings"));
    v[v.len() / 2]
}

/// Result of [`compare`]: medians of both sides and of the per-round ratio floor / ours.
pub struct Comparison {
    /// Our nanoseconds per call.
    pub ours_ns: f64,
    /// The floor's nanoseconds per call.
    pub floor_ns: f64,
    /// Median of per-round `floor / ours`; 1.0 means we cost exactly the floor.
    pub ratio: f64,
}

/// Runs `ours` and `floor` in interleaved rounds.
pub fn compare(cfg: &Config, mut ours: impl FnMut(), mut floor: impl FnMut()) -> Comparison {
    let n_ours = calibrate(cfg.round_time, &mut ours);
    let n_floor = calibrate(cfg.round_time, &mut floor);
    let (mut o, mut fl, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..cfg.rounds {
        let (a, b) = if round % 2 == 0 {
            let a = time_per_call(n_ours, &mut ours);
            (a, time_per_call(n_floor, &mut floor))
        } else {
            let b = time_per_call(n_floor, &mut floor);
            (time_per_call(n_ours, &mut ours), b)
        };
        o.push(a);
        fl.push(b);
        r.push(b / a);
    }
    Comparison {
        ours_ns: median(&mut o),
        floor_ns: median(&mut fl),
        ratio: median(&mut r),
    }
}
