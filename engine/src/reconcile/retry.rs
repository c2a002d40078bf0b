//! Time for the reconciler: capped, jittered exponential backoff and an injectable clock.
//!
//! The reconciler never reads the wall clock or sleeps directly; it asks a
//! [`Clock`]. [`SystemClock`] really sleeps; [`ManualClock`] only advances a
//! counter and records each sleep, so tests of retries and lease renewal run
//! instantly and can assert the delays.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Retries of one call: how many attempts, and how long to wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// The longest `Retry-After` honoured (a larger one is cut to this).
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 5,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt + 1`: `base · 2^attempt`, capped, with
    /// "equal jitter" (half fixed, half random from `random`), and never less than
    /// the workspace's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, random: u64) -> Duration {
        let exp =
            self.base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.cap);
        let half = exp / 2;
        let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if span == 0 { 0 } else { random % (span + 1) };
        let jittered = half + Duration::from_nanos(jitter);
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// The reconciler's source of time and randomness.
pub trait Clock: Sync {
    /// Waits `d`.
    fn sleep(&self, d: Duration);
    /// Monotonic time since the clock was made.
    fn elapsed(&self) -> Duration;
    /// A pseudo-random number (jitter).
    fn random(&self) -> u64;
    /// Waits `d`, or less when `stop` is set meanwhile; true when stopped.
    ///
    /// A signal handler can only set a flag, so the real clock looks at it
    /// every [`STOP_POLL`]: a stop is noticed within that, not after the whole wait.
    fn wait(&self, d: Duration, stop: &AtomicBool) -> bool {
        let start = self.elapsed();
        loop {
            if stop.load(Ordering::SeqCst) {
                return true;
            }
            let waited = self.elapsed().saturating_sub(start);
            if waited >= d {
                return false;
            }
            self.sleep(STOP_POLL.min(d - waited));
        }
    }
}

/// How often [`Clock::wait`] looks at the stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(100);

/// The real clock: sleeps the thread.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
    rng: AtomicU64,
}

impl SystemClock {
    /// A clock starting now; jitter seeded from the time and the process id.
    pub fn new() -> SystemClock {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ (u64::from(std::process::id()) << 32) | 1;
        SystemClock { start: Instant::now(), rng: AtomicU64::new(seed) }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

fn xorshift(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    x
}

impl Clock for SystemClock {
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn random(&self) -> u64 {
        xorshift(&self.rng)
    }
}

/// A clock for tests: sleeping advances it instantly and is recorded.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
    rng: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            now: Mutex::new(Duration::ZERO),
            sleeps: Mutex::new(Vec::new()),
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }
}

impl ManualClock {
    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Moves time forward without a sleep (work taking time).
    pub fn advance(&self, d: Duration) {
        if let Ok(mut now) = self.now.lock() {
            *now += d;
        }
    }
}

impl Clock for ManualClock {
    fn sleep(&self, d: Duration) {
        self.advance(d);
        if let Ok(mut s) = self.sleeps.lock() {
            s.push(d);
        }
    }

    /// One recorded sleep of the whole wait (a stop already set ends it at once).
    fn wait(&self, d: Duration, stop: &AtomicBool) -> bool {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        self.sleep(d);
        stop.load(Ordering::SeqCst)
    }

    fn elapsed(&self) -> Duration {
        self.now.lock().map(|n| *n).unwrap_or_default()
    }

    fn random(&self) -> u64 {
        xorshift(&self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let b = Backoff {
            attempts: 10,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            ..Backoff::default()
        };
        // With no randomness the delay is half the exponential step.
        let steps: Vec<u64> = (0..6).map(|a| b.delay(a, None, 0).as_millis() as u64).collect();
        assert_eq!(steps, vec![500, 1000, 2000, 4000, 4000, 4000]);
        // With randomness it stays within [half, full].
        for a in 0..6 {
            for r in [1u64, 12345, u64::MAX] {
                let d = b.delay(a, None, r);
                let full = Duration::from_secs(1u64 << a.min(3));
                assert!(d >= full / 2 && d <= full, "attempt {a}: {d:?}");
            }
        }
        assert_eq!(b.delay(100, None, 0), Duration::from_secs(4), "huge attempts do not overflow");
    }

    #[test]
    fn retry_after_is_honoured_and_bounded() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, Some(Duration::from_secs(7)), 0), Duration::from_secs(7));
        assert_eq!(b.delay(0, Some(Duration::from_secs(100_000)), 0), b.max_retry_after);
    }

    #[test]
    fn the_manual_clock_advances_on_sleep() {
        let c = ManualClock::default();
        c.sleep(Duration::from_secs(3));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.elapsed(), Duration::from_secs(4));
        assert_eq!(c.sleeps(), vec![Duration::from_secs(3)]);
        assert_ne!(c.random(), c.random());
    }
}
