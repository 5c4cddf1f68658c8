//! A forked child must never wait for state that another parent thread held at the
//! fork: the stdout lock, a `Once`, the allocator. Busy parent threads print, allocate
//! and take their very first lock while the main thread forks, under a competing CPU
//! load; every child must finish.

use shmsync::{Lock, Process, Shared, Value};
use shmsync_tests::{busy_parent_threads, join};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const FORKS: u32 = 300;
/// Far longer than a child that does nothing needs, even on a loaded machine.
const CHILD_DEADLINE: Duration = Duration::from_secs(20);

/// A process that burns a CPU until dropped.
struct CpuLoad(std::process::Child);

impl CpuLoad {
    fn start() -> Self {
        let child = Command::new("yes")
            .stdout(Stdio::null())
            .spawn()
            .expect("`yes` runs the competing CPU load");
        CpuLoad(child)
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn children_never_wait_for_what_parent_threads_held_at_the_fork() {
    let _load = CpuLoad::start();
    let shared = Shared::anonymous(Lock::new()).unwrap();
    // Threads born while the parent forks, each counted once it took its first lock.
    let total = Value::<u64>::new(0);
    let stop = AtomicBool::new(false);
    let mut hung = Vec::new();
    let mut forked = 0;
    std::thread::scope(|s| {
        // Stopped however the loop ends: a fork that fails must not leave them running.
        let _busy = busy_parent_threads(s, &stop, &shared, &total);
        for fork in 0..FORKS {
            forked += 1;
            let mut child = Process::spawn(|| {
                // The child's own first lock, an allocation and a line of output.
                let _held = shared.lock().unwrap();
                let words = format!("child {fork}");
                std::hint::black_box(words);
            })
            .unwrap();
            let began = Instant::now();
            match child.join_timeout(CHILD_DEADLINE).unwrap() {
                Some(status) => assert!(status.success(), "fork {fork}: {status}"),
                None => {
                    hung.push((fork, child.pid()));
                    let _ = child.kill();
                    let _ = child.join_timeout(CHILD_DEADLINE);
                    assert!(began.elapsed() >= CHILD_DEADLINE);
                }
            }
            if hung.len() >= 3 {
                break;
            }
        }
    });
    println!("forks: {forked}, hung children: {}", hung.len());
    assert!(hung.is_empty(), "children hung (fork, pid): {hung:?}");
    assert!(total.get() > 0);
}

#[test]
fn text_printed_before_a_fork_is_written_once() {
    // Run as an exec'd copy of this test binary so that its real stdout is a pipe.
    if std::env::var_os("SHMSYNC_PRINT_THEN_FORK").is_some() {
        print!("written once ");
        assert!(join(Process::spawn(|| {}).unwrap()).success());
        std::process::exit(0);
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "text_printed_before_a_fork_is_written_once",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHMSYNC_PRINT_THEN_FORK", "1")
        .output()
        .unwrap();
    // A child that hung, killed by the copy's `join`, fails the copy, not the count.
    assert!(
        output.status.success(),
        "the copy that forked failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("written once").count(),
        1,
        "stdout was: {stdout:?}"
    );
}
