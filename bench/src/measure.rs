//! The measurements, generic over the contenders of [`crate::contenders`], and the
//! counts they run for.

use crate::contenders::{ItemChannel, PingPong, SharedCounter, UncontendedLock};
use shmsync::{Event, Process, Shared, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many operations each measurement makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Lock and unlock pairs per uncontended sample.
    pub uncontended: u32,
    /// Increments per contended sample, half of them by each of the 2 processes.
    pub contended: u64,
    /// Timed round trips per ping-pong sample.
    pub round_trips: u32,
    /// Untimed round trips before them.
    pub warm_up: u32,
    /// Increments by each of Python's 2 processes.
    pub python_per_process: u64,
    /// Python's uncontended acquire and release pairs.
    pub python_lock: u64,
    /// Items through a queue per sample.
    pub queue_items: u64,
    /// Items through Python's queues per sample.
    pub python_queue_items: u64,
    /// How long the workers of one contended-counter sample at scale run.
    pub scale_window: Duration,
    /// Round trips of each pair in an oversubscribed ping-pong sample.
    pub crowd_round_trips: u32,
    /// Jobs of each worker in a semaphore-limited pool sample.
    pub pool_jobs: u32,
    /// How long the idle waiters of one sample wait.
    pub idle_window: Duration,
}

impl Counts {
    /// The counts of the project's performance anchors.
    pub const FULL: Counts = Counts {
        uncontended: 10_000_000,
        contended: 1_000_000,
        round_trips: 20_000,
        warm_up: 1_000,
        python_per_process: 100_000,
        python_lock: 1_000_000,
        queue_items: 2_000_000,
        python_queue_items: 200_000,
        scale_window: Duration::from_millis(300),
        crowd_round_trips: 2_000,
        pool_jobs: 2_000,
        idle_window: Duration::from_secs(1),
    };

    /// About a tenth of [`Counts::FULL`], for a smoke run (`--quick`).
    pub const QUICK: Counts = Counts {
        uncontended: 1_000_000,
        contended: 100_000,
        round_trips: 2_000,
        warm_up: 100,
        python_per_process: 10_000,
        python_lock: 100_000,
        queue_items: 200_000,
        python_queue_items: 20_000,
        scale_window: Duration::from_millis(40),
        crowd_round_trips: 200,
        pool_jobs: 200,
        idle_window: Duration::from_millis(100),
    };
}

/// Nanoseconds per call of `f`, over `n` calls.
fn ns_per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let began = Instant::now();
    for _ in 0..n {
        f();
    }
    began.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Nanoseconds per lock and unlock of a fresh `L`, over `n` of them.
pub fn ns_per_lock_unlock<L: UncontendedLock>(n: u32) -> f64 {
    let contender = L::new();
    let lock = contender.lock();
    ns_per_op(n, || L::lock_unlock(black_box(lock)))
}

/// Runs `work` in 2 forked processes from one start gun; returns the seconds they took.
fn two_processes(work: impl Fn() + Copy) -> f64 {
    forked(2, |_| work())
}

/// Runs `work(k)` in forked process `k` of `n`, all from one start gun; returns the
/// seconds they took.
fn forked(n: usize, work: impl Fn(usize) + Copy) -> f64 {
    let start = Shared::anonymous(Event::new()).expect("an anonymous shared segment");
    let children: Vec<Process> = (0..n)
        .map(|k| {
            Process::spawn(|| {
                start.wait();
                work(k);
            })
            .expect("fork")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20)); // both waiting
    let began = Instant::now();
    start.set();
    for child in children {
        assert!(child.join().expect("waitpid").success());
    }
    began.elapsed().as_secs_f64()
}

/// Increments per second of a fresh `C` incremented `total` times by 2 processes, half
/// each. Panics if the count comes out wrong.
pub fn increments_per_second<C: SharedCounter>(total: u64) -> f64 {
    let counter = C::new();
    let per_process = total / 2;
    let seconds = two_processes(|| {
        for _ in 0..per_process {
            counter.increment();
        }
    });
    assert_eq!(
        counter.count(),
        2 * per_process,
        "{} lost increments",
        C::NAME
    );
    (2 * per_process) as f64 / seconds
}

/// Items per second through a fresh `C`: `total` items (rounded down to a multiple of
/// both counts) from `producers` forked processes, each sending an equal share, to
/// `consumers` others, each taking an equal share. Panics if the items that came out
/// are not the ones that went in.
pub fn items_per_second<C: ItemChannel>(producers: usize, consumers: usize, total: u64) -> f64 {
    let channel = C::new();
    let sum = Shared::anonymous(Value::<u64>::new(0)).expect("an anonymous shared segment");
    let (p, c) = (producers as u64, consumers as u64);
    let total = total / (p * c) * (p * c);
    let seconds = forked(producers + consumers, |k| {
        let k = k as u64;
        if k < p {
            // Producer k sends k, k + p, k + 2p, ...: every number below `total` once.
            for item in (k..total).step_by(producers) {
                channel.send(item);
            }
        } else {
            let mut taken = 0u64;
            for _ in 0..total / c {
                taken = taken.wrapping_add(channel.receive());
            }
            sum.fetch_add(taken);
        }
    });
    assert_eq!(
        sum.get(),
        total * (total - 1) / 2,
        "{} lost or made up items",
        C::NAME_1P1C
    );
    total as f64 / seconds
}

/// Microseconds per round trip of a fresh `P` between this process and a forked child,
/// over `round_trips` of them after `warm_up` untimed ones.
pub fn micros_per_round_trip<P: PingPong>(round_trips: u32, warm_up: u32) -> f64 {
    let pair = P::new();
    let child = Process::spawn(|| {
        for _ in 0..warm_up + round_trips {
            pair.answer();
        }
    })
    .expect("fork");
    for _ in 0..warm_up {
        pair.ask();
    }
    let began = Instant::now();
    for _ in 0..round_trips {
        pair.ask();
    }
    let micros = began.elapsed().as_secs_f64() * 1e6 / f64::from(round_trips);
    assert!(child.join().expect("waitpid").success());
    micros
}
