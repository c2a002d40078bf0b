//! Timing: a warm-up, then the median of several runs, and the ratio line every workload prints.

use std::time::{Duration, Instant};

/// Runs `f` once to warm up, then `runs` times, and returns the median duration and the last result.
pub fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = f();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        out = std::hint::black_box(f());
        times.push(start.elapsed());
    }
    times.sort_unstable();
    (times[times.len() / 2], out)
}

/// Formats a duration in the unit that keeps three significant digits readable.
pub fn human(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1e3)
    }
}

/// Prints `ID budgit X / PEER Y = Rx (median of N)`, the line each workload reports.
pub fn ratio(id: &str, ours: Duration, peer_name: &str, peer: Duration, runs: usize) {
    let r = ours.as_secs_f64() / peer.as_secs_f64().max(1e-12);
    // Two decimals, or two significant digits for ratios far below 1.
    let digits = if r >= 0.01 { 2 } else { (-r.log10().floor()) as usize + 1 };
    println!("{id} budgit {} / {peer_name} {} = {r:.digits$}x (median of {runs})", human(ours), human(peer));
}
