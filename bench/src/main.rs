//! shmsync against the primitives users would otherwise pick, measured in one run on
//! this machine, with ratios. Timing goals live here, never in tests.
//!
//! ```text
//! cargo run --release -p shmsync-bench                            # 7 rounds, full counts
//! cargo run --release -p shmsync-bench -- --rounds N              # N rounds
//! cargo run --release -p shmsync-bench -- --quick                 # smoke run: 3 rounds, a tenth of the counts
//! cargo run --release -p shmsync-bench -- --only scale            # one part of each round
//! cargo run --release -p shmsync-bench -- --pin                   # also pinned, side by side
//! cargo run --release -p shmsync-bench -- --write-benchmarks-md   # also rewrites BENCHMARKS.md
//! ```
//!
//! The flags combine (except `--only` with `--write-benchmarks-md`). A round has these
//! parts: the uncontended lock; counters incremented by 2 processes; 2-process
//! ping-pongs; items through a queue and a pipe; a counter under one lock at 1 to 32
//! workers, threads and processes ([`scale`]); more workers than CPUs
//! ([`oversubscribed`]); idle waiters ([`idle`]); Python. Every figure is the median of the interleaved rounds, with their spread.
//! Before and after each round the run queue is sampled ([`quiet`]): when something
//! else ran, the verdicts say so instead of judging. The tables are printed and written
//! to `target/bench/results.md` (the comparisons also to `results.csv`); with
//! `--write-benchmarks-md`, also to `BENCHMARKS.md` at the root of the repository,
//! headed by the machine's CPU model, its kernel and the date. That file is only ever
//! regenerated, never edited: a full run (no `--quick`) makes the figures the project
//! quotes.
//!
//! Each contender is a type implementing the trait of its measurement
//! ([`contenders::UncontendedLock`], [`contenders::SharedCounter`],
//! [`contenders::PingPong`], [`contenders::ItemChannel`], [`contenders::ContendedLock`],
//! [`contenders::SemaphorePool`], [`contenders::IdleWaiter`]); [`report::COMPARISONS`]
//! pairs their samples into rows.

mod contenders;
mod idle;
mod measure;
mod oversubscribed;
mod peers;
mod placement;
mod python;
mod quiet;
mod report;
mod scale;

use contenders::{
    BarrierPingPong, ConditionPingPong, ContendedLock, EventPingPong, FutexPingPong, IdleEvent,
    IdleLock, IdleSemT, IdleSemaphore, IdleWaiter, ParkingLotMutex, ParkingLotRead, PingPong,
    PthreadBarrierPingPong, PthreadCondPingPong, PthreadCounter, PthreadRead, PthreadRobust,
    PthreadShared, PthreadWrite, SemTPingPong, SemTPool, SemaphorePingPong, SemaphorePool,
    SharedCounter, ShmsyncLock, ShmsyncLockCounter, ShmsyncLockNoOwner, ShmsyncPool, ShmsyncRead,
    ShmsyncWrite, StdMutex, StdRead, UncontendedLock, ValueFetchAdd, ValueUnderGetLock,
    ValueUpdate,
};
use contenders::{ItemChannel, Pipe, ShmsyncQueue};
use measure::Counts;
use placement::Placement;
use quiet::Quiet;
use report::{Machine, Run, Samples};
use scale::{Arena, Workers};
use std::path::Path;

/// How to call the benchmark.
const USAGE: &str =
    "usage: shmsync-bench [--quick] [--rounds N] [--only PART] [--pin] [--write-benchmarks-md]\n\
     PART: one of uncontended, counter, ping-pong, queue, scale, crowd, idle, python";

/// The parts of a round, for `--only`.
const PARTS: [&str; 8] = [
    "uncontended",
    "counter",
    "ping-pong",
    "queue",
    "scale",
    "crowd",
    "idle",
    "python",
];

/// Rounds of a full run unless `--rounds` says otherwise.
const FULL_ROUNDS: usize = 7;
/// Rounds of a `--quick` run unless `--rounds` says otherwise.
const QUICK_ROUNDS: usize = 3;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// How many interleaved rounds.
    rounds: usize,
    /// Whether to use [`Counts::QUICK`] rather than [`Counts::FULL`].
    quick: bool,
    /// Whether to rewrite `BENCHMARKS.md` too.
    write_benchmarks_md: bool,
    /// The one part of each round to run (one of [`PARTS`]), if not all.
    only: Option<String>,
    /// Whether to measure the scale and oversubscription parts pinned too.
    pin: bool,
}

/// Why the command line asks for no run.
#[derive(Debug, PartialEq, Eq)]
enum NoRun {
    /// `--help`.
    Help,
    /// A mistake, described.
    Wrong(String),
}

impl Options {
    /// Reads the arguments after the program's name.
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, NoRun> {
        let mut rounds = None;
        let mut quick = false;
        let mut write_benchmarks_md = false;
        let mut only = None;
        let mut pin = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--write-benchmarks-md" => write_benchmarks_md = true,
                "--pin" => pin = true,
                "--rounds" => {
                    let n = args
                        .next()
                        .ok_or(NoRun::Wrong("--rounds takes a number".into()))?;
                    match n.parse() {
                        Ok(n) if n > 0 => rounds = Some(n),
                        _ => return Err(NoRun::Wrong(format!("--rounds {n}: not a count"))),
                    }
                }
                "--only" => match args.next() {
                    Some(part) if PARTS.contains(&part.as_str()) => only = Some(part),
                    part => {
                        return Err(NoRun::Wrong(format!(
                            "--only takes one of {}, not {part:?}",
                            PARTS.join(", ")
                        )))
                    }
                },
                "-h" | "--help" => return Err(NoRun::Help),
                other => return Err(NoRun::Wrong(format!("unknown argument {other:?}"))),
            }
        }
        let default_rounds = if quick { QUICK_ROUNDS } else { FULL_ROUNDS };
        if write_benchmarks_md && only.is_some() {
            return Err(NoRun::Wrong(
                "--write-benchmarks-md needs every part: drop --only".into(),
            ));
        }
        Ok(Options {
            rounds: rounds.unwrap_or(default_rounds),
            quick,
            write_benchmarks_md,
            only,
            pin,
        })
    }
}

/// One sample of `L`'s uncontended lock and unlock, in ns.
fn sample_lock<L: UncontendedLock>(samples: &mut Samples, counts: Counts) {
    samples.add(
        L::NAME,
        measure::ns_per_lock_unlock::<L>(counts.uncontended),
    );
}

/// One sample of `C`'s 2-process increments per second, divided by `per_unit`.
fn sample_counter<C: SharedCounter>(samples: &mut Samples, counts: Counts, per_unit: f64) {
    let rate = measure::increments_per_second::<C>(counts.contended);
    samples.add(C::NAME, rate / per_unit);
}

/// One sample of `P`'s round trip, in µs.
fn sample_ping_pong<P: PingPong>(samples: &mut Samples, counts: Counts) {
    let micros = measure::micros_per_round_trip::<P>(counts.round_trips, counts.warm_up);
    samples.add(P::NAME, micros);
}

/// One sample each of `C`'s items per second with 1 producer and 1 consumer, and with
/// 2 and 2.
fn sample_channel<C: ItemChannel>(samples: &mut Samples, counts: Counts) {
    let one = measure::items_per_second::<C>(1, 1, counts.queue_items);
    samples.add(C::NAME_1P1C, one);
    let two = measure::items_per_second::<C>(2, 2, counts.queue_items);
    samples.add(C::NAME_2P2C, two);
}

/// One sample of a Python script, or why there is none.
fn sample_python(samples: &mut Samples, script: &python::Script, count: u64) {
    match script.run(count) {
        Ok(figure) => samples.add(script.name, figure),
        Err(reason) => {
            eprintln!("{reason}");
            samples.add_missing(script.name, reason);
        }
    }
}

/// One sample of `L` as a counter's lock at every worker count, threads and (where it
/// works between processes) processes.
fn sample_scale<L: ContendedLock>(samples: &mut Samples, plan: &Plan) {
    for workers in [Workers::Processes, Workers::Threads] {
        if workers == Workers::Processes && !L::PROCESS_SHARED {
            continue;
        }
        for n in scale::WORKER_COUNTS {
            for &placement in plan.placements {
                let window = plan.counts.scale_window;
                let outcome = scale::measure::<L>(workers, n, placement, window, plan.arena);
                let name = placement.label(L::CONTENDED_NAME);
                scale::add_sample(samples, workers, n, &name, &outcome);
            }
        }
    }
}

/// One sample of `P`'s ping-pong at every oversubscribed worker count.
fn sample_crowd<P: PingPong>(samples: &mut Samples, plan: &Plan) {
    for workers in oversubscribed::WORKER_COUNTS {
        for &placement in plan.placements {
            let round_trips = plan.counts.crowd_round_trips;
            let micros =
                oversubscribed::micros_per_round_trip::<P>(workers, round_trips, placement);
            let name = oversubscribed::sample_name(workers, &placement.label(P::NAME));
            samples.add(name, micros);
        }
    }
}

/// One sample of `S`'s pool at every oversubscribed worker count.
fn sample_pool<S: SemaphorePool>(samples: &mut Samples, plan: &Plan) {
    for workers in oversubscribed::WORKER_COUNTS {
        for &placement in plan.placements {
            let jobs = plan.counts.pool_jobs;
            let rate = oversubscribed::pool_jobs_per_second::<S>(workers, jobs, placement);
            let name = oversubscribed::sample_name(workers, &placement.label(S::NAME));
            samples.add(name, rate);
        }
    }
}

/// What every round does, whichever parts it runs.
struct Plan<'a> {
    counts: Counts,
    /// Free, and with `--pin` also pinned.
    placements: &'a [Placement],
    arena: &'static Arena,
}

/// One sample of `I`'s idle cost at every number of waiters.
fn sample_idle<I: IdleWaiter>(samples: &mut Samples, counts: Counts) {
    for waiters in idle::WAITER_COUNTS {
        let cpu = idle::cpu_micros_per_waiter_second::<I>(waiters, counts.idle_window);
        samples.add(idle::sample_name(waiters, I::NAME), cpu);
    }
}

/// One round: one sample of every contender, in a fixed order.
fn round(samples: &mut Samples, plan: &Plan, run: &dyn Fn(&str) -> bool) {
    let counts = plan.counts;
    if run("uncontended") {
        sample_lock::<ShmsyncLock>(samples, counts);
        sample_lock::<ShmsyncLockNoOwner>(samples, counts);
        sample_lock::<StdMutex>(samples, counts);
        sample_lock::<ParkingLotMutex>(samples, counts);
        sample_lock::<PthreadShared>(samples, counts);
        sample_lock::<PthreadRobust>(samples, counts);
        sample_lock::<ShmsyncRead>(samples, counts);
        sample_lock::<ShmsyncWrite>(samples, counts);
        sample_lock::<PthreadRead>(samples, counts);
        sample_lock::<PthreadWrite>(samples, counts);
        sample_lock::<ParkingLotRead>(samples, counts);
        sample_lock::<StdRead>(samples, counts);
    }

    const MILLIONS: f64 = 1e6;
    if run("counter") {
        sample_counter::<ShmsyncLockCounter>(samples, counts, MILLIONS);
        sample_counter::<PthreadCounter>(samples, counts, MILLIONS);
        sample_counter::<ValueUnderGetLock>(samples, counts, 1.0);
        sample_counter::<ValueUpdate>(samples, counts, 1.0);
        sample_counter::<ValueFetchAdd>(samples, counts, 1.0);
    }

    if run("ping-pong") {
        sample_ping_pong::<EventPingPong>(samples, counts);
        sample_ping_pong::<SemaphorePingPong>(samples, counts);
        sample_ping_pong::<SemTPingPong>(samples, counts);
        sample_ping_pong::<FutexPingPong>(samples, counts);
        sample_ping_pong::<ConditionPingPong>(samples, counts);
        sample_ping_pong::<PthreadCondPingPong>(samples, counts);
        sample_ping_pong::<BarrierPingPong>(samples, counts);
        sample_ping_pong::<PthreadBarrierPingPong>(samples, counts);
    }

    if run("queue") {
        sample_channel::<ShmsyncQueue>(samples, counts);
        sample_channel::<Pipe>(samples, counts);
    }

    if run("scale") {
        sample_scale::<ShmsyncLock>(samples, plan);
        sample_scale::<PthreadShared>(samples, plan);
        sample_scale::<PthreadRobust>(samples, plan);
        sample_scale::<StdMutex>(samples, plan);
        sample_scale::<ParkingLotMutex>(samples, plan);
    }

    if run("crowd") {
        sample_crowd::<EventPingPong>(samples, plan);
        sample_crowd::<SemaphorePingPong>(samples, plan);
        sample_crowd::<SemTPingPong>(samples, plan);
        sample_pool::<ShmsyncPool>(samples, plan);
        sample_pool::<SemTPool>(samples, plan);
    }

    if run("idle") {
        sample_idle::<IdleEvent>(samples, counts);
        sample_idle::<IdleSemaphore>(samples, counts);
        sample_idle::<IdleLock>(samples, counts);
        sample_idle::<IdleSemT>(samples, counts);
    }

    if run("python") {
        sample_python(
            samples,
            &python::VALUE_UNDER_GET_LOCK,
            counts.python_per_process,
        );
        sample_python(samples, &python::LOCK, counts.python_lock);
        sample_python(samples, &python::MP_QUEUE, counts.python_queue_items);
        sample_python(samples, &python::SIMPLE_QUEUE, counts.python_queue_items);
    }
}

fn main() {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(NoRun::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(NoRun::Wrong(mistake)) => {
            eprintln!("{mistake}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let counts = if options.quick {
        Counts::QUICK
    } else {
        Counts::FULL
    };
    let mut samples = Samples::default();
    let python_missing = python::available().err();
    if let Some(reason) = &python_missing {
        for script in python::SCRIPTS {
            samples.add_missing(script.name, reason.clone());
        }
    }
    let placements: &[Placement] = if options.pin {
        &[Placement::Free, Placement::Pinned]
    } else {
        &[Placement::Free]
    };
    let plan = Plan {
        counts,
        placements,
        arena: Arena::new(),
    };
    let mut quiet = Quiet {
        load_at_start: quiet::load_average(),
        priority: quiet::raised_priority(),
        rounds: Vec::new(),
    };
    for n in 1..=options.rounds {
        let before = quiet::others_runnable();
        eprintln!("round {n}/{}", options.rounds);
        let run = |part: &str| {
            options.only.as_deref().is_none_or(|only| only == part)
                && (part != "python" || python_missing.is_none())
        };
        round(&mut samples, &plan, &run);
        quiet.rounds.push((before, quiet::others_runnable()));
    }
    if quiet.disturbed_rounds() > 0 {
        eprintln!("{}", quiet.describe());
    }
    let run = Run {
        rounds: options.rounds,
        quick: options.quick,
        python_missing,
        quiet,
    };

    let md = report::results_markdown(&samples, &run);
    println!("{md}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is in the repository");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    std::fs::write(dir.join("results.md"), &md).expect("results.md");
    std::fs::write(dir.join("results.csv"), report::results_csv(&samples)).expect("results.csv");
    eprintln!("written to {}", dir.display());
    if options.write_benchmarks_md {
        let path = root.join("BENCHMARKS.md");
        let benchmarks = report::benchmarks_markdown(&md, &Machine::this_one(), &run);
        std::fs::write(&path, benchmarks).expect("BENCHMARKS.md");
        eprintln!("written to {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, NoRun> {
        Options::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn flags() {
        let full = Options {
            rounds: FULL_ROUNDS,
            quick: false,
            write_benchmarks_md: false,
            only: None,
            pin: false,
        };
        assert_eq!(parse(&[]), Ok(full));
        let quick = parse(&["--quick"]).unwrap();
        assert_eq!((quick.rounds, quick.quick), (QUICK_ROUNDS, true));
        let both = parse(&["--rounds", "2", "--quick", "--write-benchmarks-md"]).unwrap();
        assert_eq!(
            (both.rounds, both.quick, both.write_benchmarks_md),
            (2, true, true)
        );
        assert_eq!(parse(&["--help"]), Err(NoRun::Help));
        assert!(matches!(parse(&["--rounds"]), Err(NoRun::Wrong(_))));
        assert!(matches!(parse(&["--rounds", "0"]), Err(NoRun::Wrong(_))));
        assert!(matches!(parse(&["--fast"]), Err(NoRun::Wrong(_))));
        assert_eq!(
            parse(&["--only", "scale"]).unwrap().only.as_deref(),
            Some("scale")
        );
        assert!(matches!(parse(&["--only", "lock"]), Err(NoRun::Wrong(_))));
        assert!(parse(&["--pin"]).unwrap().pin);
        assert!(matches!(parse(&["--only"]), Err(NoRun::Wrong(_))));
        assert!(matches!(
            parse(&["--only", "idle", "--write-benchmarks-md"]),
            Err(NoRun::Wrong(_))
        ));
    }
}
