//! A counter that N workers, threads or forked processes, increment under one lock for
//! a fixed time: throughput, fairness (each worker's share) and how long a worker waits
//! for the lock, at N from 1 to 32.
//!
//! Each worker times every lock call it makes (from the call to the moment it holds the
//! lock) and keeps the times in a histogram of its own; under the lock it counts the
//! hand-offs (the lock changing hands between workers); at the end it reads its own
//! context switches. Everything a worker measured goes into an [`Arena`] in shared
//! memory, which the parent reads after the workers end.

use crate::contenders::{ContendedLock, UncontendedLock};
use crate::placement::Placement;
use crate::report::{section, short, Samples};
use shmsync::{Event, Process, Shared};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The numbers of workers measured.
pub const WORKER_COUNTS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// The most workers one measurement takes.
pub const MAX_WORKERS: usize = 32;

/// Whether the workers are threads of this process or forked processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workers {
    /// Forked children, the lock in memory they share.
    Processes,
    /// Threads of this process.
    Threads,
}

impl Workers {
    /// How the report names them.
    pub fn name(self) -> &'static str {
        match self {
            Workers::Processes => "processes",
            Workers::Threads => "threads",
        }
    }
}

/// Lock-wait times, in buckets with 8 steps per power of two: within 12.5% of the time.
pub struct Histogram([u32; BUCKETS]);

/// Sub-steps per power of two, as a power of two.
const STEP_BITS: u32 = 3;
/// Enough buckets for any `u64` of nanoseconds.
const BUCKETS: usize = ((64 - STEP_BITS as usize) + 1) << STEP_BITS;

impl Histogram {
    /// An empty one.
    pub fn new() -> Histogram {
        Histogram([0; BUCKETS])
    }

    /// The bucket of `ns`: exact below 8, then 8 per power of two.
    fn bucket(ns: u64) -> usize {
        if ns < 1 << STEP_BITS {
            return ns as usize;
        }
        let power = 63 - ns.leading_zeros(); // ≥ STEP_BITS
        let step = (ns >> (power - STEP_BITS)) as usize & ((1 << STEP_BITS) - 1);
        (((power - STEP_BITS + 1) as usize) << STEP_BITS) | step
    }

    /// The highest time that falls in `bucket`.
    fn upper_bound(bucket: usize) -> u64 {
        if bucket < 1 << STEP_BITS {
            return bucket as u64;
        }
        let power = (bucket >> STEP_BITS) as u32 + STEP_BITS - 1;
        let step = (bucket & ((1 << STEP_BITS) - 1)) as u64;
        let low = (1u64 << power) + (step << (power - STEP_BITS));
        low + ((1u64 << (power - STEP_BITS)) - 1)
    }

    /// Counts one wait of `ns`.
    pub fn record(&mut self, ns: u64) {
        self.0[Self::bucket(ns)] += 1;
    }

    /// Adds `other`'s counts.
    fn merge(&mut self, other: &[AtomicU32; BUCKETS]) {
        for (mine, theirs) in self.0.iter_mut().zip(other) {
            *mine += theirs.load(Ordering::Relaxed);
        }
    }

    /// The time below which a `fraction` of the waits fell (the upper bound of its
    /// bucket), or 0 if none was recorded.
    pub fn quantile(&self, fraction: f64) -> u64 {
        let total: u64 = self.0.iter().map(|&c| u64::from(c)).sum();
        let wanted = (total as f64 * fraction).ceil() as u64;
        let mut seen = 0;
        for (bucket, &count) in self.0.iter().enumerate() {
            seen += u64::from(count);
            if seen >= wanted.max(1) {
                return Self::upper_bound(bucket);
            }
        }
        0
    }
}

/// What one worker measured.
struct WorkerRecord {
    /// Increments it made.
    ops: AtomicU64,
    /// Of them, how many took the lock from another worker.
    handoffs: AtomicU64,
    /// Its context switches, voluntary and not, during the run.
    context_switches: AtomicU64,
    /// Its longest wait for the lock, in ns.
    max_wait: AtomicU64,
    /// Its waits.
    waits: [AtomicU32; BUCKETS],
}

/// The count the workers increment and who incremented it last: touched only under the
/// lock being measured.
struct Tally {
    count: u64,
    last: usize,
}

/// Everything the workers of one measurement share besides the lock, in one mapping
/// made once per run.
#[repr(C, align(64))]
pub struct Arena {
    /// Set by the parent when the time is up.
    stop: AtomicBool,
    /// In a cache line of its own, away from `stop`, which every worker reads.
    tally: Padded<UnsafeCell<Tally>>,
    workers: [WorkerRecord; MAX_WORKERS],
}

/// A value alone in its cache line.
#[repr(C, align(64))]
struct Padded<T>(T);

// SAFETY: `tally` is touched only by a worker holding the lock under measurement (or by
// the parent while no worker runs); everything else is atomics.
unsafe impl Sync for Arena {}

impl Arena {
    /// A fresh one in memory that forked children share. One per run: it is not unmapped.
    pub fn new() -> &'static Arena {
        crate::peers::shared(Arena {
            stop: AtomicBool::new(false),
            tally: Padded(UnsafeCell::new(Tally { count: 0, last: 0 })),
            workers: [const {
                WorkerRecord {
                    ops: AtomicU64::new(0),
                    handoffs: AtomicU64::new(0),
                    context_switches: AtomicU64::new(0),
                    max_wait: AtomicU64::new(0),
                    waits: [const { AtomicU32::new(0) }; BUCKETS],
                }
            }; MAX_WORKERS],
        })
    }

    /// Back to its state before any run. Only while no worker runs.
    fn reset(&self) {
        self.stop.store(false, Ordering::Relaxed);
        // SAFETY: no worker runs, so nobody else touches the tally.
        unsafe {
            *self.tally.0.get() = Tally {
                count: 0,
                last: usize::MAX,
            }
        };
        for worker in &self.workers {
            worker.ops.store(0, Ordering::Relaxed);
            worker.handoffs.store(0, Ordering::Relaxed);
            worker.context_switches.store(0, Ordering::Relaxed);
            worker.max_wait.store(0, Ordering::Relaxed);
            for count in &worker.waits {
                count.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// What one measurement found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Increments per second, all workers together.
    pub ops_per_second: f64,
    /// The most increments one worker made over the fewest (infinite if one made none).
    pub share_spread: f64,
    /// The 99th percentile of the lock waits, in ns.
    pub wait_p99_ns: f64,
    /// The longest lock wait, in ns.
    pub wait_max_ns: f64,
    /// How often per second the lock changed hands between workers.
    pub handoffs_per_second: f64,
    /// Context switches per increment, all workers together.
    pub context_switches_per_op: f64,
}

/// The calling thread's context switches so far, voluntary and involuntary.
fn context_switches() -> u64 {
    // SAFETY: getrusage writes one rusage into the zeroed local.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

/// Worker `me`'s loop: increments under `lock` until told to stop.
fn work<L: ContendedLock>(lock: &L, arena: &Arena, me: usize) {
    let mut waits = Histogram::new();
    let (mut ops, mut handoffs, mut max_wait) = (0u64, 0u64, 0u64);
    let switches_before = context_switches();
    while !arena.stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let waited = lock.locked(|| {
            let waited = asked.elapsed();
            // SAFETY: under the lock, which every toucher of the tally holds.
            let tally = unsafe { &mut *arena.tally.0.get() };
            tally.count += 1;
            if tally.last != me {
                tally.last = me;
                handoffs += 1;
            }
            waited
        });
        let ns = waited.as_nanos() as u64;
        waits.record(ns);
        max_wait = max_wait.max(ns);
        ops += 1;
    }
    let record = &arena.workers[me];
    record
        .context_switches
        .store(context_switches() - switches_before, Ordering::Relaxed);
    record.ops.store(ops, Ordering::Relaxed);
    record.handoffs.store(handoffs, Ordering::Relaxed);
    record.max_wait.store(max_wait, Ordering::Relaxed);
    for (shared, &count) in record.waits.iter().zip(&waits.0) {
        shared.store(count, Ordering::Relaxed);
    }
}

/// `n` workers of the kind `workers`, placed as `placement` says, increment a counter
/// under a fresh `L` for `duration`. Panics if the count comes out wrong.
pub fn measure<L: ContendedLock>(
    workers: Workers,
    n: usize,
    placement: Placement,
    duration: Duration,
    arena: &'static Arena,
) -> Outcome {
    assert!((1..=MAX_WORKERS).contains(&n), "1 to {MAX_WORKERS} workers");
    assert!(
        workers == Workers::Threads || L::PROCESS_SHARED,
        "{} works only between threads",
        L::CONTENDED_NAME
    );
    arena.reset();
    let lock = <L as UncontendedLock>::new();
    let start = Shared::anonymous(Event::new()).expect("an anonymous shared segment");
    let run = |began: &mut Option<Instant>, stopped: &mut Option<Instant>| {
        std::thread::sleep(Duration::from_millis(20)); // all waiting for the start
        *began = Some(Instant::now());
        start.set();
        std::thread::sleep(duration);
        arena.stop.store(true, Ordering::Relaxed);
        *stopped = Some(Instant::now());
    };
    let (mut began, mut stopped) = (None, None);
    match workers {
        Workers::Processes => {
            let children: Vec<Process> = (0..n)
                .map(|me| {
                    Process::spawn(|| {
                        placement.place(me);
                        start.wait();
                        work(&lock, arena, me);
                    })
                    .expect("fork")
                })
                .collect();
            run(&mut began, &mut stopped);
            for child in children {
                assert!(child.join().expect("waitpid").success());
            }
        }
        Workers::Threads => std::thread::scope(|s| {
            for me in 0..n {
                let (lock, start) = (&lock, &start);
                s.spawn(move || {
                    placement.place(me);
                    start.wait();
                    work(lock, arena, me);
                });
            }
            run(&mut began, &mut stopped);
        }),
    }
    let seconds = (stopped.expect("ran") - began.expect("ran")).as_secs_f64();
    outcome(arena, n, seconds, L::CONTENDED_NAME)
}

/// The figures of a measurement whose `n` workers ran for `seconds`.
fn outcome(arena: &Arena, n: usize, seconds: f64, name: &str) -> Outcome {
    let records = &arena.workers[..n];
    let ops: Vec<u64> = records
        .iter()
        .map(|r| r.ops.load(Ordering::Relaxed))
        .collect();
    let total: u64 = ops.iter().sum();
    // SAFETY: every worker has ended.
    let counted = unsafe { (*arena.tally.0.get()).count };
    assert_eq!(counted, total, "{name} lost increments");
    let (fewest, most) = (ops.iter().min().unwrap(), ops.iter().max().unwrap());
    let mut waits = Histogram::new();
    for record in records {
        waits.merge(&record.waits);
    }
    let sum = |field: fn(&WorkerRecord) -> &AtomicU64| -> u64 {
        records
            .iter()
            .map(|r| field(r).load(Ordering::Relaxed))
            .sum()
    };
    Outcome {
        ops_per_second: total as f64 / seconds,
        share_spread: if *fewest == 0 {
            f64::INFINITY
        } else {
            *most as f64 / *fewest as f64
        },
        wait_p99_ns: waits.quantile(0.99) as f64,
        wait_max_ns: records
            .iter()
            .map(|r| r.max_wait.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0) as f64,
        handoffs_per_second: sum(|r| &r.handoffs) as f64 / seconds,
        context_switches_per_op: sum(|r| &r.context_switches) as f64 / total.max(1) as f64,
    }
}

/// The figures one measurement adds to the samples, each under its [`sample_name`].
const METRICS: [&str; 6] = ["ops/s", "share", "p99", "max", "handoffs/s", "switches/op"];

/// The name of a figure of `contender` at `n` `workers`.
pub fn sample_name(workers: Workers, n: usize, contender: &str, metric: &str) -> String {
    format!("{} {n} {contender}: {metric}", workers.name())
}

/// Adds one measurement's figures to `samples`.
pub fn add_sample(samples: &mut Samples, workers: Workers, n: usize, name: &str, o: &Outcome) {
    let figures = [
        o.ops_per_second,
        o.share_spread,
        o.wait_p99_ns,
        o.wait_max_ns,
        o.handoffs_per_second,
        o.context_switches_per_op,
    ];
    for (metric, figure) in METRICS.into_iter().zip(figures) {
        samples.add(sample_name(workers, n, name, metric), figure);
    }
}

/// The contender every other is compared with: the plain process-shared pthread mutex.
pub const BASELINE: &str = "pthread pshared";
/// The contender the targets are about.
pub const OURS: &str = "shmsync Lock";

/// One table per kind of worker: for each N and contender, throughput (median and
/// spread of the rounds) and its ratio to [`BASELINE`], the worst share spread, the
/// median p99 wait, the longest wait of any round, hand-offs per second and context
/// switches per increment. The rows of [`OURS`] say whether the targets are met: at
/// least the baseline's throughput, and a p99 wait no worse than the baseline's.
pub fn markdown(
    samples: &Samples,
    contenders: &[(Workers, &[&str])],
    verdict: &dyn Fn(bool) -> String,
) -> String {
    let mut md = String::new();
    for &(workers, names) in contenders {
        let heading = format!(
            "\n#### {} incrementing one counter under one lock\n\n\
             | N | lock | M incr/s | vs pthread | share max/min | wait p99 µs | wait max ms \
             | hand-offs/s | switches/incr | target met |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
            capitalised(workers.name())
        );
        let mut rows = String::new();
        for n in WORKER_COUNTS {
            let get =
                |name: &str, metric: &str| samples.median(&sample_name(workers, n, name, metric));
            let placed = [Placement::Free, Placement::Pinned]
                .into_iter()
                .flat_map(|placement| names.iter().map(move |&name| (placement, name)));
            for (placement, name) in placed {
                let (name, baseline) = (placement.label(name), placement.label(BASELINE));
                let (name, baseline) = (name.as_str(), baseline.as_str());
                let key = |metric| sample_name(workers, n, name, metric);
                let Some(rate) = get(name, "ops/s") else {
                    continue;
                };
                let (ratio, met) = match (
                    get(baseline, "ops/s"),
                    get(baseline, "p99"),
                    get(name, "p99"),
                ) {
                    (Some(base_rate), Some(base_p99), Some(p99)) => {
                        let ratio = rate / base_rate;
                        let met = if name == placement.label(OURS) {
                            verdict(ratio >= 1.0 && p99 <= base_p99)
                        } else {
                            String::new()
                        };
                        (format!("{ratio:.2}"), met)
                    }
                    _ => (String::new(), String::new()),
                };
                let worst = |metric| samples.range(&key(metric)).map_or(f64::NAN, |(_, hi)| hi);
                rows += &format!(
                    "| {n} | {name} | {} ({}) | {ratio} | {} | {} | {} | {} | {} | {met} |\n",
                    short(rate / 1e6),
                    spread_scaled(samples, &key("ops/s"), 1e-6),
                    share(worst("share")),
                    short(get(name, "p99").unwrap_or(f64::NAN) / 1e3),
                    short(worst("max") / 1e6),
                    short(get(name, "handoffs/s").unwrap_or(f64::NAN)),
                    short(get(name, "switches/op").unwrap_or(f64::NAN)),
                );
            }
        }
        md += &section(&heading, &rows);
    }
    md
}

/// `lowest–highest` of `name`'s figures times `scale`.
fn spread_scaled(samples: &Samples, name: &str, scale: f64) -> String {
    samples.range(name).map_or(String::new(), |(lo, hi)| {
        format!("{}–{}", short(lo * scale), short(hi * scale))
    })
}

/// A share spread: `∞` when a worker made no increment at all.
fn share(spread: f64) -> String {
    if spread.is_infinite() {
        "∞ (starved)".to_owned()
    } else {
        short(spread)
    }
}

/// `word` with a capital first letter.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or(String::new(), |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values() {
        for ns in [
            0,
            1,
            7,
            8,
            9,
            15,
            16,
            17,
            100,
            1_000,
            123_456,
            1 << 40,
            u64::MAX,
        ] {
            let bucket = Histogram::bucket(ns);
            assert!(bucket < BUCKETS, "{ns}");
            assert!(Histogram::upper_bound(bucket) >= ns, "{ns}");
            if bucket > 0 {
                assert!(Histogram::upper_bound(bucket - 1) < ns, "{ns}");
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut waits = Histogram::new();
        for ns in 1..=100 {
            waits.record(ns * 1_000);
        }
        let p99 = waits.quantile(0.99);
        assert!((99_000..=99_000 * 9 / 8).contains(&p99), "{p99}");
        assert_eq!(Histogram::new().quantile(0.99), 0);
        assert!(waits.quantile(1.0) >= 100_000);
    }
}
