//! Python's multiprocessing, measured in the same run when python3 is present.

use std::io::ErrorKind;
use std::process::Command;

/// `with v.get_lock(): v.value += 1` in 2 forked processes; prints increments per second.
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

/// `multiprocessing.Lock` acquired and released; prints nanoseconds per pair.
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

/// Items handed from a forked producer to the parent through `{QUEUE}`; prints items
/// per second. (The two scripts below differ only in the queue.)
macro_rules! queue_script {
    ($queue:literal) => {
        concat!(
            r#"
import multiprocessing as mp, sys, time
def produce(q, n):
    for i in range(n):
        q.put(i)
if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1])
    q = "#,
            $queue,
            r#"
    p = mp.Process(target=produce, args=(q, n))
    t = time.perf_counter()
    p.start()
    s = 0
    for _ in range(n):
        s += q.get()
    p.join()
    dt = time.perf_counter() - t
    assert s == n * (n - 1) // 2, s
    print(n / dt)
"#
        )
    };
}

/// One of Python's measurements: the name of its sample and the script that prints it.
pub struct Script {
    /// The name of its sample.
    pub name: &'static str,
    /// The Python source, which takes a count as its argument and prints one number.
    source: &'static str,
}

/// Increments per second of `Value('i')` under `get_lock()` from 2 processes; its count
/// is the increments by each process.
pub const VALUE_UNDER_GET_LOCK: Script = Script {
    name: "value python get_lock",
    source: VALUE_UNDER_LOCK,
};

/// Nanoseconds per uncontended `multiprocessing.Lock` acquire and release; its count is
/// how many.
pub const LOCK: Script = Script {
    name: "lock python",
    source: LOCK_UNCONTENDED,
};

/// Items per second from one process to another through `multiprocessing.Queue`; its
/// count is how many.
pub const MP_QUEUE: Script = Script {
    name: "queue python mp.Queue",
    source: queue_script!("mp.Queue()"),
};

/// The same through `multiprocessing.SimpleQueue`.
pub const SIMPLE_QUEUE: Script = Script {
    name: "queue python mp.SimpleQueue",
    source: queue_script!("mp.SimpleQueue()"),
};

/// Every script, for naming the samples a run without Python lacks.
pub const SCRIPTS: [Script; 4] = [VALUE_UNDER_GET_LOCK, LOCK, MP_QUEUE, SIMPLE_QUEUE];

/// Whether python3 runs here; if not, why not.
pub fn available() -> Result<(), String> {
    match Command::new("python3").arg("-c").arg("pass").status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`python3 -c pass` failed ({status})")),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            Err("python3 not found on PATH".to_owned())
        }
        Err(error) => Err(format!("python3 could not be started: {error}")),
    }
}

impl Script {
    /// Runs the script with `count`; its number, or why there is none.
    pub fn run(&self, count: u64) -> Result<f64, String> {
        let out = Command::new("python3")
            .arg("-c")
            .arg(self.source)
            .arg(count.to_string())
            .output()
            .map_err(|error| format!("python3 could not be started: {error}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last_line = stderr.lines().last().unwrap_or_default();
            return Err(format!("{} failed: {last_line}", self.name));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .trim()
            .parse()
            .map_err(|_| format!("{} printed {:?}, not a number", self.name, stdout.trim()))
    }
}
