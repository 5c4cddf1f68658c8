//! More workers than CPUs: many pairs of processes playing ping-pong at once, and a
//! pool of processes that a semaphore lets work only a few at a time. A waiter that
//! spins while its partner waits for a CPU burns the time the partner needs; these
//! show whether the spinning adapts.

use crate::contenders::{
    EventPingPong, PingPong, SemTPingPong, SemTPool, SemaphorePingPong, SemaphorePool, ShmsyncPool,
};
use crate::placement::Placement;
use crate::report::{section, short, Samples, Target};
use shmsync::{Event, Process, Shared};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The numbers of workers measured: more than most machines have CPUs.
pub const WORKER_COUNTS: [usize; 2] = [8, 32];

/// Starts `workers` processes, placed as `placement` says, from one start gun and waits
/// for them all; returns the seconds from the start to the last one's end.
fn crowd(workers: Vec<Box<dyn FnOnce() + '_>>, placement: Placement) -> f64 {
    let start = Shared::anonymous(Event::new()).expect("an anonymous shared segment");
    let children: Vec<Process> = workers
        .into_iter()
        .enumerate()
        .map(|(i, work)| {
            Process::spawn(|| {
                placement.place(i);
                start.wait();
                work();
            })
            .expect("fork")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20)); // all waiting for the start
    let began = Instant::now();
    start.set();
    for child in children {
        assert!(child.join().expect("waitpid").success());
    }
    began.elapsed().as_secs_f64()
}

/// `workers / 2` pairs of processes, each pair with a fresh `P`, make `round_trips`
/// round trips each, all at once; returns the µs each pair took per round trip.
pub fn micros_per_round_trip<P: PingPong>(
    workers: usize,
    round_trips: u32,
    placement: Placement,
) -> f64 {
    let pairs: Vec<P> = (0..workers / 2).map(|_| P::new()).collect();
    let mut work: Vec<Box<dyn FnOnce() + '_>> = Vec::new();
    for pair in &pairs {
        work.push(Box::new(move || {
            for _ in 0..round_trips {
                pair.ask();
            }
        }));
        work.push(Box::new(move || {
            for _ in 0..round_trips {
                pair.answer();
            }
        }));
    }
    crowd(work, placement) * 1e6 / f64::from(round_trips)
}

/// How many workers a pool's semaphore lets in at once.
pub const POOL_SLOTS: u32 = 2;

/// About a microsecond of work that the compiler cannot remove.
fn a_microsecond_of_work() {
    let mut x = 0u64;
    for i in 0..300u64 {
        x = black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    black_box(x);
}

/// `workers` processes each do `jobs` jobs of about a microsecond, at most
/// [`POOL_SLOTS`] at a time as a fresh `S` lets them; returns jobs per second.
pub fn pool_jobs_per_second<S: SemaphorePool>(
    workers: usize,
    jobs: u32,
    placement: Placement,
) -> f64 {
    let pool = S::new(POOL_SLOTS);
    let work: Vec<Box<dyn FnOnce() + '_>> = (0..workers)
        .map(|_| {
            let pool = &pool;
            Box::new(move || {
                for _ in 0..jobs {
                    pool.acquire();
                    a_microsecond_of_work();
                    pool.release();
                }
            }) as Box<dyn FnOnce() + '_>
        })
        .collect();
    let seconds = crowd(work, placement);
    workers as f64 * f64::from(jobs) / seconds
}

/// The name of `contender`'s figure with `workers` workers.
pub fn sample_name(workers: usize, contender: &str) -> String {
    format!("{workers} workers, {contender}")
}

/// A row of the table: shmsync's contender against `sem_t`'s.
struct Row {
    what: &'static str,
    ours: &'static str,
    peer: &'static str,
    unit: &'static str,
    /// What the ratio ours / peer should be, if the project has a target for it.
    target: Option<Target>,
}

/// The table's rows, repeated for each of [`WORKER_COUNTS`].
const ROWS: [Row; 3] = [
    Row {
        what: "Event ping-pong, workers / 2 pairs",
        ours: EventPingPong::NAME,
        peer: SemTPingPong::NAME,
        unit: "µs per round trip",
        target: Some(Target::AtMost(1.0)),
    },
    Row {
        what: "Semaphore ping-pong, workers / 2 pairs",
        ours: SemaphorePingPong::NAME,
        peer: SemTPingPong::NAME,
        unit: "µs per round trip",
        target: Some(Target::AtMost(1.0)),
    },
    Row {
        what: "pool: 2 permits, ~1 µs jobs",
        ours: ShmsyncPool::NAME,
        peer: SemTPool::NAME,
        unit: "jobs/s",
        target: None,
    },
];

/// The oversubscription table: each row at each worker count, with medians, spreads,
/// the ratio to `sem_t` and whether the target is met (`verdict` words it).
pub fn markdown(samples: &Samples, verdict: &dyn Fn(bool) -> String) -> String {
    let mut rows = String::new();
    for workers in WORKER_COUNTS {
        for (row, placement) in ROWS
            .iter()
            .flat_map(|row| [Placement::Free, Placement::Pinned].map(|p| (row, p)))
        {
            let (ours, peer) = (
                sample_name(workers, &placement.label(row.ours)),
                sample_name(workers, &placement.label(row.peer)),
            );
            let (Some(o), Some(p)) = (samples.median(&ours), samples.median(&peer)) else {
                continue;
            };
            rows += &format!(
                "| {workers} | {} | {} ({}) | {} ({}) | {} | {:.3} | {} | {} |\n",
                placement.label(row.what),
                short(o),
                samples.spread(&ours),
                short(p),
                samples.spread(&peer),
                row.unit,
                o / p,
                row.target.map_or(String::new(), |t| t.to_string()),
                row.target
                    .map_or(String::new(), |t| verdict(t.is_met_by(o / p))),
            );
        }
    }
    section(
        "\n#### More workers than CPUs (processes)\n\n\
         | workers | what | shmsync | sem_t | unit | ratio | target | met |\n\
         |---:|---|---:|---:|---|---:|---|---|\n",
        &rows,
    )
}
