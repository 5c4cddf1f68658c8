//! Python's `spawn` start method: children that are this test binary started afresh
//! (never a fork of the threaded parent), running entries registered by name. Exit
//! statuses, signals, timed joins, arguments, handed segments shared for real, exactly
//! the handed descriptors, and a busy threaded parent.
//!
//! Every test registers the entries as its first statement: a child re-executes this
//! binary to run only that test, which then runs the entry and exits.

use shmsync::{
    run_if_spawned, Entry, ExitStatus, Lock, Shared, ShmError, SpawnError, Spawned, Value,
    ENTRY_FAILED_EXIT_CODE, PANIC_EXIT_CODE, UNKNOWN_ENTRY_EXIT_CODE,
};
use shmsync_tests::{busy_parent_threads, daemon, join, respawn, wait};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const FOREVER: Duration = Duration::from_secs(600);

/// Arguments that survive the trip unchanged, awkward ones included.
const ARGS: [&str; 8] = [
    "plain",
    "",
    "two words",
    "ünïcødé ✓",
    "a=b",
    "line\nbreak",
    "--exact",
    "$HOME",
];

const ENTRIES: &[(&str, Entry)] = &[
    ("returns", |_| Ok(())),
    ("panics", |_| panic!("expected panic in a spawned child")),
    ("exits-3", |_| std::process::exit(3)),
    ("fails", |_| {
        Err("expected failure of a spawned child".into())
    }),
    ("sleeps", |_| {
        std::thread::sleep(FOREVER);
        Ok(())
    }),
    ("checks-args", checks_args),
    ("increments", increments),
    ("lists-fds", lists_fds),
    ("bad-handoff", bad_handoff),
];

fn checks_args(child: &Spawned) -> Result<(), Box<dyn Error>> {
    if child.args() != ARGS || child.entry() != "checks-args" {
        return Err(format!("handed {:?} to {:?}", child.args(), child.entry()).into());
    }
    match child.arg(ARGS.len()) {
        Err(SpawnError::MissingArgument { index, count }) if index == count => {}
        other => return Err(format!("argument past the end: {other:?}").into()),
    }
    Ok(())
}

/// Adds `arg(0)` to the `Value<u64>` of every handed segment, one at a time.
fn increments(child: &Spawned) -> Result<(), Box<dyn Error>> {
    let times: u64 = child.arg(0)?.parse()?;
    let count: usize = child.arg(1)?.parse()?;
    let counters = (0..count)
        .map(|index| child.segment::<Value<u64>>(index))
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 0..times {
        for counter in &counters {
            counter.fetch_add(1);
        }
    }
    // Another mapping of the same segment is the same memory.
    let again = child.segment::<Value<u64>>(0)?;
    if again.get() < times {
        return Err("a second mapping of segment 0 is not the same memory".into());
    }
    match child.segment::<Value<u64>>(count) {
        Err(SpawnError::MissingSegment { .. }) => {}
        other => return Err(format!("segment past the end: {other:?}").into()),
    }
    match child.segment::<Value<u8>>(0) {
        Err(SpawnError::Segment {
            index: 0,
            source: ShmError::LayoutMismatch { .. },
        }) => Ok(()),
        other => Err(format!("segment 0 as the wrong type: {other:?}").into()),
    }
}

/// The descriptors open in this process (but the one listing them), each with what
/// it refers to.
fn open_fds() -> BTreeMap<i32, String> {
    let listing = format!("/proc/{}/fd", std::process::id());
    std::fs::read_dir(&listing)
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.unwrap();
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let target = target.display().to_string();
            (target != listing).then_some((fd, target))
        })
        .collect()
}

/// The descriptors of this process that a program it starts inherits.
fn inheritable_fds() -> Vec<i32> {
    open_fds()
        .into_keys()
        // SAFETY: F_GETFD only reads a descriptor's flags.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC == 0)
        .collect()
}

/// Checks that the open descriptors are those the parent could not help handing
/// (`arg(0)`, its own inheritable ones) and one for each memfd label in `arg(1)`.
fn lists_fds(child: &Spawned) -> Result<(), Box<dyn Error>> {
    let mut fds = open_fds();
    for fd in child.arg(0)?.split(',').filter(|fd| !fd.is_empty()) {
        fds.remove(&fd.parse()?);
    }
    let labels: Vec<&str> = child.arg(1)?.split(',').collect();
    let mut handed: Vec<&String> = fds.values().collect();
    handed.sort();
    let expected: Vec<String> = labels
        .iter()
        .map(|label| format!("/memfd:/{label} (deleted)"))
        .collect();
    if handed != expected.iter().collect::<Vec<_>>() {
        return Err(format!("descriptors beyond the parent's own: {fds:?}").into());
    }
    Ok(())
}

fn bad_handoff(child: &Spawned) -> Result<(), Box<dyn Error>> {
    match child.segment::<Value<u64>>(0) {
        Err(SpawnError::BadHandoff { .. }) => Ok(()),
        other => Err(format!("a forged hand-off was accepted: {other:?}").into()),
    }
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn exit_statuses_of_entries() {
    run_if_spawned(ENTRIES);
    let status = |entry| join(respawn("exit_statuses_of_entries", entry).start().unwrap());
    assert_eq!(status("returns"), ExitStatus::Exited(0));
    assert_eq!(status("panics"), ExitStatus::Exited(PANIC_EXIT_CODE));
    assert_eq!(status("exits-3"), ExitStatus::Exited(3));
    assert_eq!(status("fails"), ExitStatus::Exited(ENTRY_FAILED_EXIT_CODE));
}

#[test]
fn an_unknown_entry_is_a_distinct_exit_code_and_a_clear_error() {
    run_if_spawned(ENTRIES);
    let (mut errors, writer) = std::io::pipe().unwrap();
    let child = respawn(
        "an_unknown_entry_is_a_distinct_exit_code_and_a_clear_error",
        "no-such-entry",
    )
    .stderr(writer)
    .start()
    .unwrap();
    assert_eq!(join(child), ExitStatus::Exited(UNKNOWN_ENTRY_EXIT_CODE));
    let mut text = String::new();
    errors.read_to_string(&mut text).unwrap();
    assert!(
        text.contains("no entry named \"no-such-entry\" is registered (known: returns, panics"),
        "stderr was: {text:?}"
    );
}

#[test]
fn terminate_kill_and_timed_join() {
    run_if_spawned(ENTRIES);
    let sleeper = || {
        respawn("terminate_kill_and_timed_join", "sleeps")
            .name("sleeper")
            .start()
            .unwrap()
    };
    // A daemon: if a check fails before it is ended, it is killed, not waited for.
    let mut child = daemon(sleeper());
    assert_eq!(child.name(), "sleeper");
    assert!(child.is_alive().unwrap());
    assert_eq!(child.join_timeout(Duration::ZERO).unwrap(), None);
    assert_eq!(child.join_timeout(Duration::from_millis(20)).unwrap(), None);
    child.terminate().unwrap();
    let pid = child.pid();
    assert_eq!(join(child), ExitStatus::Signaled(libc::SIGTERM));
    assert!(gone(pid), "zombie {pid}");

    let child = sleeper();
    child.kill().unwrap();
    assert_eq!(join(child).exitcode(), -libc::SIGKILL);

    let mut daemon = sleeper();
    daemon.set_daemon(true);
    let pid = daemon.pid();
    drop(daemon); // kills, then reaps
    assert!(gone(pid), "zombie {pid}");

    // Reaped once, by the Process: std's Child did not wait for it first.
    let mut quick = respawn("terminate_kill_and_timed_join", "returns")
        .start()
        .unwrap();
    assert!(quick.name().starts_with("Process-"), "{}", quick.name());
    assert_eq!(
        quick.join_timeout(shmsync_tests::HANG).unwrap(),
        Some(ExitStatus::Exited(0))
    );
    assert_eq!(quick.exit_status(), Some(ExitStatus::Exited(0)));
    assert!(!quick.is_alive().unwrap());
}

#[test]
fn arguments_round_trip() {
    run_if_spawned(ENTRIES);
    let child = respawn("arguments_round_trip", "checks-args")
        .args(ARGS)
        .start()
        .unwrap();
    assert!(join(child).success());
}

#[test]
fn handed_segments_are_shared_for_real() {
    run_if_spawned(ENTRIES);
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shmsync-test-spawn-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let memfd = Shared::memfd("shmsync-test-spawn", Value::<u64>::new(0)).unwrap();
    let named = Shared::create(&name, Value::<u64>::new(0)).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            respawn("handed_segments_are_shared_for_real", "increments")
                .args(["10000", "3"])
                .segment(&memfd)
                .segment(&named)
                .segment(&memfd) // the same descriptor, handed twice
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        assert!(join(child).success());
    }
    assert_eq!(memfd.get(), 40_000);
    assert_eq!(named.get(), 20_000);
}

#[test]
fn anonymous_segments_are_refused() {
    run_if_spawned(ENTRIES);
    let memfd = Shared::memfd("shmsync-test-refused", Value::<u64>::new(0)).unwrap();
    let anonymous = Shared::anonymous(Value::<u64>::new(0)).unwrap();
    let error = respawn("anonymous_segments_are_refused", "increments")
        .segment(&memfd)
        .segment(&anonymous)
        .start()
        .unwrap_err();
    assert!(matches!(error, SpawnError::AnonymousSegment { index: 1 }));
    assert!(error.to_string().contains("Shared::memfd"), "{error}");
}

#[test]
fn a_forged_handoff_is_refused() {
    run_if_spawned(ENTRIES);
    // Standard output is open, but was not handed: the child must not take it.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_forged_handoff_is_refused", "--nocapture"])
        .env("SHMSYNC_SPAWN_ENTRY", "bad-handoff")
        .env("SHMSYNC_SPAWN_SEGMENT_0", "fd:1:stdout")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait(&mut child).success());
}

#[test]
fn a_spawned_child_has_exactly_the_handed_descriptors() {
    run_if_spawned(ENTRIES);
    let labels = ["shmsync-test-handed-a", "shmsync-test-handed-b"];
    let a = Shared::memfd(labels[0], Value::<u64>::new(0)).unwrap();
    let b = Shared::memfd(labels[1], Value::<u64>::new(0)).unwrap();
    let _not_handed = Shared::memfd("shmsync-test-not-handed", Value::<u64>::new(0)).unwrap();
    let name = format!("shmsync-test-handed-by-name-{}", std::process::id());
    let named = Shared::create(&name, Value::<u64>::new(0)).unwrap();
    // Those this process itself lets every child inherit (0, 1, 2, and whatever the
    // program that started the tests left inheritable).
    let own = inheritable_fds();
    let targets = open_fds();
    assert!(
        own.iter()
            .filter_map(|fd| targets.get(fd))
            .all(|target| !target.starts_with("/memfd:")),
        "a memfd segment is inheritable: {targets:?}"
    );
    let own: Vec<String> = own.iter().map(i32::to_string).collect();
    let child = respawn(
        "a_spawned_child_has_exactly_the_handed_descriptors",
        "lists-fds",
    )
    .args([own.join(","), labels.join(",")])
    .segment(&a)
    .segment(&named)
    .segment(&b)
    .start()
    .unwrap();
    assert!(join(child).success());
}

#[test]
fn a_busy_threaded_parent_spawns_50_children() {
    run_if_spawned(ENTRIES);
    const CHILDREN: usize = 50;
    let counter = Shared::memfd("shmsync-test-busy", Value::<u64>::new(0)).unwrap();
    let lock = Lock::new();
    let born = Value::<u64>::new(0);
    let stop = AtomicBool::new(false);
    let mut took = Vec::new();
    std::thread::scope(|s| {
        // Stopped however the loop ends: a child that fails must not leave them running.
        let _busy = busy_parent_threads(s, &stop, &lock, &born);
        for _ in 0..CHILDREN {
            let began = Instant::now();
            let child = respawn("a_busy_threaded_parent_spawns_50_children", "increments")
                .args(["1", "1"])
                .segment(&counter)
                .start()
                .unwrap();
            assert!(join(child).success());
            took.push(began.elapsed());
        }
    });
    assert_eq!(counter.get(), CHILDREN as u64);
    took.sort();
    println!(
        "{CHILDREN} spawned children, start to reaped: median {:?}, slowest {:?}",
        took[CHILDREN / 2],
        took[CHILDREN - 1]
    );
}
