//! Retells the Python lesson "test efficiency" in Rust: the same CPU-bound and IO-bound
//! work, run on one thread, on N threads and in N processes. With python3 present, the
//! same in Python for contrast: its threads share one interpreter lock (the GIL), Rust's
//! do not.
//!
//!     cargo run --release -p shmsync --example efficiency

use shmsync::{Process, Shared, Value};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

const TASKS: usize = 4;
/// One CPU-bound task: about a tenth of a second of arithmetic.
const CPU_ROUNDS: u64 = 50_000_000;
/// One IO-bound task: a blocking wait (a sleep stands for a slow read).
const IO_WAIT: Duration = Duration::from_millis(100);

fn cpu_task() -> u64 {
    let mut x = black_box(1u64);
    for i in 0..CPU_ROUNDS {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

fn io_task() -> u64 {
    std::thread::sleep(IO_WAIT);
    1
}

fn one_thread(task: fn() -> u64) -> f64 {
    let began = Instant::now();
    for _ in 0..TASKS {
        black_box(task());
    }
    began.elapsed().as_secs_f64()
}

fn threads(task: fn() -> u64) -> f64 {
    let began = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..TASKS {
            s.spawn(move || black_box(task()));
        }
    });
    began.elapsed().as_secs_f64()
}

fn processes(task: fn() -> u64) -> f64 {
    let done = Shared::anonymous(Value::<u32>::new(0)).expect("shared memory");
    let began = Instant::now();
    let children: Vec<Process> = (0..TASKS)
        .map(|_| {
            Process::spawn(|| {
                black_box(task());
                done.fetch_add(1);
            })
            .expect("fork")
        })
        .collect();
    for child in children {
        assert!(child.join().expect("join").success());
    }
    assert_eq!(done.get() as usize, TASKS);
    began.elapsed().as_secs_f64()
}

const PYTHON: &str = r#"
import multiprocessing as mp, threading, time, sys
TASKS = int(sys.argv[1])
def cpu():
    x = 1
    for i in range(2_000_000):
        x = (x * 6364136223846793005 + i) & 0xFFFFFFFFFFFFFFFF
def io():
    time.sleep(0.1)
def one(f):
    t = time.perf_counter()
    for _ in range(TASKS): f()
    return time.perf_counter() - t
def many(f, kind):
    t = time.perf_counter()
    ws = [kind(target=f) for _ in range(TASKS)]
    for w in ws: w.start()
    for w in ws: w.join()
    return time.perf_counter() - t
if __name__ == "__main__":
    mp.set_start_method("fork")
    for name, f in (("cpu", cpu), ("io", io)):
        print(name, one(f), many(f, threading.Thread), many(f, mp.Process))
"#;

fn row(language: &str, work: &str, one: f64, threads: f64, processes: f64) {
    println!(
        "| {language:<6} | {work:<3} | {one:>8.3} | {threads:>8.3} ({:>4.2}x) | {processes:>8.3} ({:>4.2}x) |",
        one / threads,
        one / processes
    );
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{TASKS} tasks of each kind on {cores} CPUs; seconds (speed-up over one thread)\n");
    println!("| lang   | job | 1 thread | {TASKS} threads        | {TASKS} processes      |");
    println!("|--------|-----|----------|------------------|------------------|");
    for (work, task) in [("cpu", cpu_task as fn() -> u64), ("io", io_task)] {
        row(
            "Rust",
            work,
            one_thread(task),
            threads(task),
            processes(task),
        );
    }
    match Command::new("python3")
        .args(["-c", PYTHON, &TASKS.to_string()])
        .output()
    {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if let [work, one, threads, processes] = fields.as_slice() {
                    let [one, threads, processes] =
                        [one, threads, processes].map(|v| v.parse().unwrap_or(f64::NAN));
                    row("Python", work, one, threads, processes);
                }
            }
        }
        _ => println!("(python3 not found: no Python rows)"),
    }
    println!(
        "\nRust threads run CPU-bound work in parallel: with no interpreter lock they \
         speed up like processes, up to the number of CPUs. Python threads take turns \
         on the GIL, so only its processes speed up CPU-bound work. For IO-bound work \
         (waiting), threads and processes both overlap the waits, in either language."
    );
}
