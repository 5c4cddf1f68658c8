//! Python's multiprocessing, measured in the same run when python3 is present.

use std::process::Command;

const VALUE_UNDER_LOCK: &str = r#"
import multiprocessing as mp, sys, time
def work(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1
if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1])
    v = mp.Value("i", 0)
    ps = [mp.Process(target=work, args=(v, n)) for _ in range(2)]
    t = time.perf_counter()
    for p in ps: p.start()
    for p in ps: p.join()
    dt = time.perf_counter() - t
    assert v.value == 2 * n, v.value
    print(2 * n / dt)
"#;

const LOCK_UNCONTENDED: &str = r#"
import multiprocessing as mp, sys, time
if __name__ == "__main__":
    n = int(sys.argv[1])
    lock = mp.Lock()
    t = time.perf_counter()
    for _ in range(n):
        lock.acquire(); lock.release()
    print((time.perf_counter() - t) / n * 1e9)
"#;

/// Whether python3 runs here.
pub fn available() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success())
}

fn run(script: &str, arg: u64) -> f64 {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(arg.to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// Increments per second of `Value('i')` under `get_lock()` from 2 processes.
pub fn value_increments_per_second(per_process: u64) -> f64 {
    run(VALUE_UNDER_LOCK, per_process)
}

/// ns per uncontended `multiprocessing.Lock` acquire/release.
pub fn lock_ns(n: u64) -> f64 {
    run(LOCK_UNCONTENDED, n)
}
