//! Processes and threads: exit statuses, signals, timed joins, names, and no zombies.

use shmsync::{ExitStatus, Process, Thread, PANIC_EXIT_CODE};
use shmsync_tests::join;
use std::path::Path;
use std::time::Duration;

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

const FOREVER: Duration = Duration::from_secs(600);

#[test]
fn exit_statuses() {
    assert_eq!(join(Process::spawn(|| {}).unwrap()), ExitStatus::Exited(0));
    let panicked = Process::spawn(|| panic!("expected panic in a child")).unwrap();
    assert_eq!(join(panicked), ExitStatus::Exited(PANIC_EXIT_CODE));
    let exited = Process::spawn(|| std::process::exit(3)).unwrap();
    assert_eq!(join(exited).code(), Some(3));
}

#[test]
fn terminate_and_kill() {
    let child = Process::spawn(|| std::thread::sleep(FOREVER)).unwrap();
    child.terminate().unwrap();
    let status = join(child);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(status.exitcode(), -libc::SIGTERM);
    assert_eq!(status.to_string(), "killed by SIGTERM");

    let child = Process::spawn(|| std::thread::sleep(FOREVER)).unwrap();
    child.kill().unwrap();
    assert_eq!(join(child), ExitStatus::Signaled(libc::SIGKILL));
}

#[test]
fn timed_join_and_is_alive() {
    let mut child = Process::spawn(|| std::thread::sleep(Duration::from_millis(200))).unwrap();
    assert!(child.is_alive().unwrap());
    assert_eq!(child.join_timeout(Duration::ZERO).unwrap(), None);
    assert_eq!(
        child.join_timeout(Duration::MAX).unwrap(),
        Some(ExitStatus::Exited(0))
    );
    assert!(!child.is_alive().unwrap());
    assert_eq!(child.exit_status(), Some(ExitStatus::Exited(0)));
    assert!(gone(child.pid()));
}

#[test]
fn names_follow_python() {
    let named = Process::spawn_named("collector", || {}).unwrap();
    assert_eq!(named.name(), "collector");
    let unnamed = Process::spawn(|| {}).unwrap();
    assert!(unnamed.name().starts_with("Process-"), "{}", unnamed.name());
}

#[test]
fn dropped_children_are_reaped_never_left_as_zombies() {
    let waited = Process::spawn(|| std::thread::sleep(Duration::from_millis(50))).unwrap();
    let waited_pid = waited.pid();
    drop(waited); // joins
    assert!(gone(waited_pid), "zombie {waited_pid}");

    let mut daemon = Process::spawn(|| std::thread::sleep(FOREVER)).unwrap();
    daemon.set_daemon(true);
    let daemon_pid = daemon.pid();
    drop(daemon); // kills, then reaps
    assert!(gone(daemon_pid), "zombie {daemon_pid}");
}

#[test]
fn threads_join_with_a_timeout() {
    let mut slow = Thread::spawn_named("slow", || {
        std::thread::sleep(Duration::from_millis(100));
        7
    })
    .unwrap();
    assert_eq!(slow.name(), "slow");
    assert!(
        slow.join_timeout(Duration::ZERO).is_none(),
        "finished too soon"
    );
    assert!(slow.is_alive());
    assert_eq!(slow.join_timeout(FOREVER).unwrap().unwrap(), 7);
    assert!(!slow.is_alive());

    let mut panicking = Thread::spawn(|| panic!("expected panic in a thread")).unwrap();
    assert!(panicking.name().starts_with("Thread-"));
    assert!(panicking.join_timeout(FOREVER).unwrap().is_err());

    let quick = Thread::spawn(|| 5).unwrap();
    assert_eq!(quick.join().unwrap(), 5);
}
