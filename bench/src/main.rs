//! shmsync against the primitives users would otherwise pick, measured in one run on
//! this machine, with ratios. Timing goals live here, never in tests.
//!
//!     cargo run --release -p shmsync-bench [-- --rounds N]
//!
//! Every figure is the median of N interleaved rounds (7 by default). The table is
//! printed and written to target/bench/results.md and results.csv.

mod peers;
mod python;

use peers::{FutexTurn, PosixSemaphore, PthreadMutex};
use shmsync::{shm_struct, Event, Futex, Lock, Process, Semaphore, Shared, Value};
use shmsync_core::{AtomicU32, Wait};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::AtomicU32 as StdAtomicU32;
use std::time::{Duration, Instant};

const UNCONTENDED: u32 = 10_000_000;
const CONTENDED: u64 = 1_000_000;
const ROUND_TRIPS: u32 = 20_000;
const WARM_UP: u32 = 1_000;
const PYTHON_PER_PROCESS: u64 = 100_000;

/// The futex backend without owner recording: what the lock's fast path would cost if
/// it did not record its owner.
struct NoOwner;

impl Wait for NoOwner {
    fn now() -> u64 {
        Futex::now()
    }
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        Futex::wait(word, expected, deadline)
    }
    fn wake_one(word: &AtomicU32) {
        Futex::wake_one(word)
    }
    fn wake_all(word: &AtomicU32) {
        Futex::wake_all(word)
    }
}

/// Nanoseconds per call of `f`, over `n` calls.
fn ns_per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let began = Instant::now();
    for _ in 0..n {
        f();
    }
    began.elapsed().as_nanos() as f64 / f64::from(n)
}

fn uncontended(samples: &mut Samples) {
    let lock = Shared::anonymous(Lock::new()).unwrap();
    samples.add(
        "lock shmsync",
        ns_per_op(UNCONTENDED, || drop(black_box(&*lock).lock())),
    );
    let plain: shmsync_core::Lock<NoOwner> = shmsync_core::Lock::new();
    samples.add(
        "lock shmsync, no owner recording",
        ns_per_op(UNCONTENDED, || drop(black_box(&plain).lock())),
    );
    let std_mutex = std::sync::Mutex::new(());
    samples.add(
        "lock std::sync::Mutex",
        ns_per_op(UNCONTENDED, || drop(black_box(&std_mutex).lock())),
    );
    let parking = parking_lot::Mutex::new(());
    samples.add(
        "lock parking_lot::Mutex",
        ns_per_op(UNCONTENDED, || drop(black_box(&parking).lock())),
    );
    for (name, robust) in [
        ("lock pthread pshared", false),
        ("lock pthread pshared robust", true),
    ] {
        let mutex = PthreadMutex::new_shared(robust);
        samples.add(
            name,
            ns_per_op(UNCONTENDED, || {
                black_box(mutex).lock();
                mutex.unlock();
            }),
        );
    }
}

shm_struct! {
    struct Counter { start: Event, lock: Lock, count: Value<u64> }
}
shm_struct! {
    struct ValueRace { start: Event, value: Value<u64> }
}

/// Runs `work` in 2 forked processes from one start gun; returns the seconds they took.
fn two_processes(start: &Event, work: impl Fn() + Copy) -> f64 {
    let children: Vec<Process> = (0..2)
        .map(|_| {
            Process::spawn(|| {
                start.wait();
                work();
            })
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20)); // both waiting
    let began = Instant::now();
    start.set();
    for child in children {
        assert!(child.join().unwrap().success());
    }
    began.elapsed().as_secs_f64()
}

fn contended(samples: &mut Samples) {
    let per_process = CONTENDED / 2;
    let ours = Shared::anonymous(Counter {
        start: Event::new(),
        lock: Lock::new(),
        count: Value::new(0),
    })
    .unwrap();
    let seconds = two_processes(&ours.start, || {
        for _ in 0..per_process {
            let _held = ours.lock.lock().unwrap();
            ours.count.set(ours.count.get() + 1);
        }
    });
    assert_eq!(ours.count.get(), CONTENDED);
    samples.add("counter shmsync Lock", CONTENDED as f64 / seconds / 1e6);

    let start = Shared::anonymous(Event::new()).unwrap();
    let mutex = PthreadMutex::new_shared(false);
    let count = peers::shared(std::cell::Cell::new(0u64));
    let count = peers::SyncCell(count);
    let seconds = two_processes(&start, || {
        for _ in 0..per_process {
            mutex.lock();
            count.0.set(count.0.get() + 1);
            mutex.unlock();
        }
    });
    assert_eq!(count.0.get(), CONTENDED);
    samples.add("counter pthread pshared", CONTENDED as f64 / seconds / 1e6);

    // Python's `with v.get_lock(): v.value += 1`, and the one-call forms.
    type Increment = fn(&Value<u64>);
    let forms: [(&'static str, Increment); 3] = [
        ("value shmsync get_lock", |v| {
            let _held = v.get_lock().lock().unwrap();
            v.set(v.get() + 1);
        }),
        ("value shmsync update", |v| {
            v.update(|x| x + 1).expect("nobody dies in the benchmark");
        }),
        ("value shmsync fetch_add", |v| {
            v.fetch_add(1);
        }),
    ];
    for (name, increment) in forms {
        let value = Shared::anonymous(ValueRace {
            start: Event::new(),
            value: Value::new(0),
        })
        .unwrap();
        let seconds = two_processes(&value.start, || {
            for _ in 0..per_process {
                increment(&value.value);
            }
        });
        assert_eq!(value.value.get(), CONTENDED, "{name} lost increments");
        samples.add(name, CONTENDED as f64 / seconds);
    }
}

/// Microseconds per round trip between this process and a forked child: `serve` is
/// the child's loop body (answer once), `ask` the parent's.
fn ping_pong(serve: impl Fn(), ask: impl Fn()) -> f64 {
    let child = Process::spawn(|| {
        for _ in 0..WARM_UP + ROUND_TRIPS {
            serve();
        }
    })
    .unwrap();
    for _ in 0..WARM_UP {
        ask();
    }
    let began = Instant::now();
    for _ in 0..ROUND_TRIPS {
        ask();
    }
    let micros = began.elapsed().as_secs_f64() * 1e6 / f64::from(ROUND_TRIPS);
    assert!(child.join().unwrap().success());
    micros
}

shm_struct! {
    struct EventPair { ping: Event, pong: Event }
}
shm_struct! {
    struct SemaphorePair { ping: Semaphore, pong: Semaphore }
}

fn ping_pongs(samples: &mut Samples) {
    let events = Shared::anonymous(EventPair {
        ping: Event::new(),
        pong: Event::new(),
    })
    .unwrap();
    samples.add(
        "ping-pong shmsync Event",
        ping_pong(
            || {
                events.ping.wait();
                events.ping.clear();
                events.pong.set();
            },
            || {
                events.ping.set();
                events.pong.wait();
                events.pong.clear();
            },
        ),
    );
    let sems = Shared::anonymous(SemaphorePair {
        ping: Semaphore::new(0),
        pong: Semaphore::new(0),
    })
    .unwrap();
    samples.add(
        "ping-pong shmsync Semaphore",
        ping_pong(
            || {
                sems.ping.acquire();
                sems.pong.release();
            },
            || {
                sems.ping.release();
                sems.pong.acquire();
            },
        ),
    );
    let (ping, pong) = (PosixSemaphore::new_shared(0), PosixSemaphore::new_shared(0));
    samples.add(
        "ping-pong sem_t",
        ping_pong(
            || {
                ping.wait();
                pong.post();
            },
            || {
                ping.post();
                pong.wait();
            },
        ),
    );
    let turn = peers::shared(FutexTurn(StdAtomicU32::new(0)));
    samples.add(
        "ping-pong raw futex",
        ping_pong(
            || {
                turn.wait_while(0);
                turn.pass(0);
            },
            || {
                turn.pass(1);
                turn.wait_while(1);
            },
        ),
    );
}

/// CPU time of a thread that waits 1 s on an event nobody sets.
fn idle_wait_cpu_micros() -> f64 {
    let event = Event::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let cpu = || {
                let t =
                    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
                t.tv_sec() as f64 * 1e6 + t.tv_nsec() as f64 / 1e3
            };
            let before = cpu();
            assert!(!event.wait_timeout(Duration::from_secs(1)));
            cpu() - before
        })
        .join()
        .unwrap()
    })
}

#[derive(Default)]
struct Samples(BTreeMap<&'static str, Vec<f64>>);

impl Samples {
    fn add(&mut self, name: &'static str, value: f64) {
        self.0.entry(name).or_default().push(value);
    }

    fn median(&self, name: &str) -> Option<f64> {
        let mut values = self.0.get(name)?.clone();
        values.sort_by(f64::total_cmp);
        Some(values[values.len() / 2])
    }

    fn spread(&self, name: &str) -> String {
        let values = &self.0[name];
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        format!("{}–{}", short(lo), short(hi))
    }
}

fn short(v: f64) -> String {
    if v >= 1e5 {
        format!("{:.3e}", v)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One comparison of the report.
struct Comparison {
    what: &'static str,
    ours: &'static str,
    peer: &'static str,
    unit: &'static str,
    /// The target: ours/peer at most (`Some(true)`) or at least (`Some(false)`) this.
    target: Option<(bool, f64)>,
}

const COMPARISONS: &[Comparison] = &[
    Comparison {
        what: "uncontended Lock vs std::sync::Mutex",
        ours: "lock shmsync",
        peer: "lock std::sync::Mutex",
        unit: "ns/op",
        target: Some((true, 1.1)),
    },
    Comparison {
        what: "uncontended Lock vs parking_lot::Mutex",
        ours: "lock shmsync",
        peer: "lock parking_lot::Mutex",
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended Lock vs pthread pshared",
        ours: "lock shmsync",
        peer: "lock pthread pshared",
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended Lock vs robust pthread",
        ours: "lock shmsync",
        peer: "lock pthread pshared robust",
        unit: "ns/op",
        target: Some((true, 0.6)),
    },
    Comparison {
        what: "owner recording vs none (fast path)",
        ours: "lock shmsync",
        peer: "lock shmsync, no owner recording",
        unit: "ns/op",
        target: Some((true, 1.1)),
    },
    Comparison {
        what: "2-process contended counter vs pthread pshared",
        ours: "counter shmsync Lock",
        peer: "counter pthread pshared",
        unit: "M incr/s",
        target: Some((false, 1.0)),
    },
    Comparison {
        what: "Event ping-pong vs sem_t (time per round trip)",
        ours: "ping-pong shmsync Event",
        peer: "ping-pong sem_t",
        unit: "µs",
        target: Some((true, 0.1)),
    },
    Comparison {
        what: "Semaphore ping-pong vs sem_t (time per round trip)",
        ours: "ping-pong shmsync Semaphore",
        peer: "ping-pong sem_t",
        unit: "µs",
        target: Some((true, 0.1)),
    },
    Comparison {
        what: "Event ping-pong vs raw futex",
        ours: "ping-pong shmsync Event",
        peer: "ping-pong raw futex",
        unit: "µs",
        target: None,
    },
    Comparison {
        what: "Value under get_lock(), 2 processes, vs Python's",
        ours: "value shmsync get_lock",
        peer: "value python get_lock",
        unit: "incr/s",
        target: Some((false, 100.0)),
    },
    Comparison {
        what: "Value::update, 2 processes, vs Python Value+get_lock",
        ours: "value shmsync update",
        peer: "value python get_lock",
        unit: "incr/s",
        target: None,
    },
    Comparison {
        what: "Value fetch_add, 2 processes, vs Python Value+get_lock",
        ours: "value shmsync fetch_add",
        peer: "value python get_lock",
        unit: "incr/s",
        target: None,
    },
    Comparison {
        what: "uncontended Lock vs Python multiprocessing.Lock",
        ours: "lock shmsync",
        peer: "lock python",
        unit: "ns/op",
        target: None,
    },
];

fn main() {
    let rounds: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [flag, n] if flag == "--rounds" => n.parse().expect("--rounds takes a number"),
        [] => 7,
        _ => panic!("usage: shmsync-bench [--rounds N]"),
    };
    let python = python::available();
    let mut samples = Samples::default();
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        uncontended(&mut samples);
        contended(&mut samples);
        ping_pongs(&mut samples);
        if python {
            samples.add(
                "value python get_lock",
                python::value_increments_per_second(PYTHON_PER_PROCESS),
            );
            samples.add("lock python", python::lock_ns(1_000_000));
        }
    }
    let idle_cpu = idle_wait_cpu_micros();

    let mut md = String::new();
    md += &format!("Medians of {rounds} interleaved rounds; ratio = shmsync / peer.\n\n");
    md += "| comparison | shmsync | peer | unit | ratio | target | met |\n|---|---:|---:|---|---:|---|---|\n";
    let mut csv = String::from("comparison,shmsync,peer,unit,ratio,target,met\n");
    for c in COMPARISONS {
        let (Some(ours), Some(peer)) = (samples.median(c.ours), samples.median(c.peer)) else {
            md += &format!("| {} | | | | | | skipped: python3 not found |\n", c.what);
            continue;
        };
        let ratio = ours / peer;
        let (target, met) = match c.target {
            Some((true, t)) => (format!("≤ {t}×"), if ratio <= t { "yes" } else { "no" }),
            Some((false, t)) => (format!("≥ {t}×"), if ratio >= t { "yes" } else { "no" }),
            None => (String::new(), ""),
        };
        md += &format!(
            "| {} | {} ({}) | {} ({}) | {} | {:.3} | {} | {} |\n",
            c.what,
            short(ours),
            samples.spread(c.ours),
            short(peer),
            samples.spread(c.peer),
            c.unit,
            ratio,
            target,
            met
        );
        csv += &format!(
            "{},{ours},{peer},{},{ratio},{target},{met}\n",
            c.what, c.unit
        );
    }
    md +=
        &format!("\nCPU time of a thread waiting 1 s on an Event nobody sets: {idle_cpu:.0} µs.\n");
    md += "\nShared footprint (bytes): ";
    md += &format!(
        "Lock {}, Event {}, Semaphore {}, BoundedSemaphore {}, Value<u64> {}; pthread_mutex_t {}, sem_t {}.\n",
        std::mem::size_of::<Lock>(),
        std::mem::size_of::<Event>(),
        std::mem::size_of::<Semaphore>(),
        std::mem::size_of::<shmsync::BoundedSemaphore>(),
        std::mem::size_of::<Value<u64>>(),
        std::mem::size_of::<libc::pthread_mutex_t>(),
        std::mem::size_of::<libc::sem_t>(),
    );
    if !python {
        md += "\npython3 was not found: the Python rows were skipped.\n";
    }
    println!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.md"), &md).unwrap();
    std::fs::write(dir.join("results.csv"), &csv).unwrap();
    eprintln!("written to {}", dir.display());
}
