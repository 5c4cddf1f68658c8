//! What waiting costs when nothing happens: the CPU time that N threads blocked on a
//! primitive use while nobody wakes them.

use crate::contenders::IdleWaiter;
use crate::report::{section, short, Samples};
use std::time::Duration;

/// The numbers of idle waiters measured.
pub const WAITER_COUNTS: [usize; 3] = [1, 8, 32];

/// The CPU time a thread has used, in µs.
fn thread_cpu_micros() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("the thread's CPU clock");
    t.tv_sec() as f64 * 1e6 + t.tv_nsec() as f64 / 1e3
}

/// `waiters` threads wait for `window` on a fresh `I` that nobody signals; returns the
/// CPU time they used, in µs per waiter per second of waiting.
pub fn cpu_micros_per_waiter_second<I: IdleWaiter>(waiters: usize, window: Duration) -> f64 {
    let idle = I::new();
    let total: f64 = std::thread::scope(|s| {
        let threads: Vec<_> = (0..waiters)
            .map(|_| {
                let idle = &idle;
                s.spawn(move || {
                    let before = thread_cpu_micros();
                    idle.wait_unsignalled(window);
                    thread_cpu_micros() - before
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a waiting thread"))
            .sum()
    });
    total / waiters as f64 / window.as_secs_f64()
}

/// The name of `contender`'s figure with `waiters` waiters.
pub fn sample_name(waiters: usize, contender: &str) -> String {
    format!("{waiters} waiting, {contender}")
}

/// The idle table: for each number of waiters, each contender's CPU time per waiter
/// per second (median and spread).
pub fn markdown(samples: &Samples, contenders: &[&str]) -> String {
    let mut heading = String::from(
        "\n#### Idle waiters: CPU time per waiter per second of waiting, µs\n\n| waiters |",
    );
    for name in contenders {
        heading += &format!(" {} |", name.trim_start_matches("idle "));
    }
    heading += "\n|---:|";
    heading += &"---:|".repeat(contenders.len());
    heading += "\n";
    let mut rows = String::new();
    for waiters in WAITER_COUNTS {
        let figures: Vec<String> = contenders
            .iter()
            .map(|name| {
                let key = sample_name(waiters, name);
                samples.median(&key).map_or(String::new(), |cpu| {
                    format!("{} ({})", short(cpu), samples.spread(&key))
                })
            })
            .collect();
        if figures.iter().any(|f| !f.is_empty()) {
            rows += &format!("| {waiters} | {} |\n", figures.join(" | "));
        }
    }
    section(&heading, &rows)
}
