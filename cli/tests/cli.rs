//! The `shmsync` command driven as a user drives it, on segments that live processes
//! (this test, and children it forks and sometimes kills) hold in each state, and on
//! files that are no healthy segment: another program's, garbage, cut short, of
//! another format version. Every wait has a timeout; every name is this run's own and
//! removed again.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value as Json;
use shmsync::{
    pod_struct, shm_struct, Array, Event, Lock, LockError, Process, Queue, Semaphore, Shared, Value,
};
use shmsync_tests::{join, ShmName, HANG};

/// The command, without colours, killed if it runs longer than a minute.
fn shmsync() -> Command {
    let mut command = Command::cargo_bin("shmsync").expect("the binary is built");
    command
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(60));
    command
}

/// What a run wrote to its standard output.
fn stdout_of(command: &mut Command) -> String {
    let output = command.output().expect("ran");
    String::from_utf8(output.stdout).expect("text")
}

fn json_of(command: &mut Command) -> Json {
    serde_json::from_str(&stdout_of(command)).expect("JSON")
}

/// Tests that make stale or cut-short files, and the one that sweeps `/dev/shm` for
/// stale names, run one at a time: the sweep would take the others' files.
fn sweeping() -> MutexGuard<'static, ()> {
    static SWEEP: Mutex<()> = Mutex::new(());
    SWEEP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

shm_struct! {
    struct Inner { flag: Value<bool>, pair: Value<u32> }
}

pod_struct! {
    struct Job { id: u32, cost: u32 }
}

shm_struct! {
    /// One of each kind of part.
    struct Board {
        lock: Lock,
        start: Event,
        stop: Event,
        slots: Semaphore,
        done: Value<u32>,
        log: Array<u8, 64>,
        jobs: Queue<Job, 8>,
    }
}

shm_struct! {
    struct Nested { inner: Inner, pairs: [Inner; 2] }
}

shm_struct! {
    /// Too much to describe in 512 bytes.
    struct Everything { board: Board, nested: Nested }
}

// What a child and this test tell each other.
shm_struct! {
    struct Control { ready: Event, exit: Event }
}

fn control() -> Shared<Control> {
    Shared::<Control>::anonymous_with(|_| {}).expect("an anonymous segment")
}

/// Forks a child that runs `work`, tells `ready`, and stays until told to `exit` (or
/// for at most `HANG`). Returns once it is ready.
fn child_holding(control: &Shared<Control>, work: impl FnOnce()) -> Process {
    let child = Process::spawn(|| {
        work();
        control.ready.set();
        control.exit.wait_timeout(HANG);
    })
    .expect("fork");
    assert!(
        control.ready.wait_timeout(HANG),
        "the child never got ready"
    );
    control.ready.clear();
    child
}

fn kill(child: Process) {
    child.kill().expect("SIGKILL");
    let status = join(child);
    assert_eq!(
        status.signal(),
        Some(nix::sys::signal::Signal::SIGKILL as i32)
    );
}

fn me() -> i32 {
    nix::unistd::gettid().as_raw()
}

#[test]
fn ls_lists_a_live_segment_with_its_type_creator_and_participants() {
    let name = ShmName::new("cli-ls");
    let created = Shared::<Board>::create_with(&name, |_| {}).expect("created");
    let opened = Shared::<Board>::open(&name, HANG).expect("opened");

    let listing = stdout_of(shmsync().arg("ls"));
    let heading = listing.lines().next().expect("a heading");
    assert!(
        heading.starts_with("NAME") && heading.contains("STATE"),
        "{listing}"
    );
    let row = (listing.lines())
        .find(|line| line.starts_with(&*name.0))
        .unwrap_or_else(|| panic!("{} not listed:\n{listing}", name.0));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert!(columns[1].ends_with("::Board"), "{row}");
    assert_eq!(columns[3], std::process::id().to_string(), "creator: {row}");
    assert_eq!(
        (columns[4], columns[5]),
        ("2", "0"),
        "attached, gone: {row}"
    );
    assert_eq!(columns[7], "live", "{row}");

    let listed = json_of(shmsync().args(["ls", "--json", &name]));
    let entry = &listed[0];
    assert_eq!(entry["name"], name.0.as_str());
    assert_eq!(entry["condition"], "live");
    assert_eq!(entry["attached"], 2);
    assert_eq!(entry["creator_pid"], std::process::id());
    assert_eq!(entry["kind"], "segment");
    assert!(entry["type"]
        .as_str()
        .unwrap()
        .contains("lock: Lock<Futex, Robust>@0"));

    drop(opened);
    // The opener left: its entry is cleared, so it is not counted gone. (Its slot may
    // stay held a moment by a child another test forked meanwhile, which shares this
    // process's open files until it exits: the record is then nobody's.)
    let listed = json_of(shmsync().args(["--json", "ls", &name]));
    assert_eq!(listed[0]["gone"], 0);
    let recorded: Vec<&Json> = (listed[0]["participants"].as_array().unwrap().iter())
        .filter(|record| record["pid"] != 0)
        .collect();
    assert_eq!(recorded.len(), 1, "{listed}");
    assert_eq!(recorded[0]["creator"], true);
    drop(created);
    shmsync()
        .args(["ls", &name])
        .assert()
        .code(1)
        .stderr(format!(
            "shmsync: cannot access '{}': no such segment\n",
            name.0
        ));
}

#[test]
fn show_tells_who_holds_what() {
    let name = ShmName::new("cli-show");
    let board = Shared::<Board>::create_with(&name, |board| {
        board.slots = Semaphore::new(3);
        board.done.set(17);
        board.log.write(0, b"hello, world").unwrap();
    })
    .expect("created");
    let nested_name = ShmName::new("cli-nested");
    let _nested = Shared::<Nested>::create_with(&nested_name, |nested| {
        nested.pairs[1].flag.set(true);
        nested.inner.flag.set(true);
        nested.inner.pair.set(34);
    })
    .expect("created");
    board.start.set();
    for id in 0..3 {
        board.jobs.put(Job { id, cost: 1 }).unwrap();
    }
    let _permit = board.slots.permit();
    let held = board.lock.lock().unwrap();
    // A locker that sleeps on the held lock, until it is released (or gives up).
    let waiter = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| drop(board.lock.lock_timeout(HANG)));
        // Its announcement is the lock word's WAITERS bit.
        let deadline = std::time::Instant::now() + HANG;
        while !board.lock.sleepers_announced() {
            assert!(
                std::time::Instant::now() < deadline,
                "the waiter never slept"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let shown = stdout_of(shmsync().args(["show", &name]));
        let as_json = json_of(shmsync().args(["show", "--json", &name]));
        drop(held);
        waiter.join().unwrap();
        (shown, as_json)
    });
    let (shown, as_json) = waiter;
    let expect = [
        format!("{}: live", name.0),
        format!("lock: Lock: held by thread {}, someone waits", me()),
        "start: Event: set".into(),
        "stop: Event: clear".into(),
        format!(
            "slots: Semaphore: 2 permits free of 3; held by thread {} ×1",
            me()
        ),
        "done: Value<u32> = 17".into(),
        "log: Array<u8, 64> = \"hello, world\"".into(),
        "jobs: Queue<cli::Job, 8>: 3 of 8 items".into(),
        format!("attached   pid {} (creator)", std::process::id()),
    ];
    for line in expect {
        assert!(shown.contains(&line), "{line:?} not in:\n{shown}");
    }
    assert!(!shown.contains("layout"), "the layout is checked: {shown}");
    let nested = stdout_of(shmsync().args(["show", &nested_name]));
    let tree = "\ncli::Nested\n  inner: cli::Inner\n    flag: Value<bool> = true\n    \
                pair: Value<u32> = 34\n  pairs: [cli::Inner; 2]\n    [0]: cli::Inner\n      \
                flag: Value<bool> = false\n      pair: Value<u32> = 0\n    [1]: cli::Inner\n      \
                flag: Value<bool> = true\n      pair: Value<u32> = 0\n";
    assert!(nested.ends_with(tree), "{nested}");

    let value = &as_json["value"];
    assert_eq!(as_json["layout"], "checked");
    let part = |name: &str| -> &Json {
        (value["parts"].as_array().unwrap().iter())
            .find(|part| part["name"] == name)
            .unwrap_or_else(|| panic!("no part {name}"))
    };
    assert_eq!(part("lock")["kind"], "lock");
    assert_eq!(part("lock")["state"], "held");
    assert_eq!(part("lock")["holder_tid"], me());
    assert_eq!(part("lock")["waiters"], true);
    assert_eq!(part("start")["set"], true);
    assert_eq!(part("slots")["free"], 2);
    assert_eq!(part("slots")["holders"][0]["permits"], 1);
    assert_eq!(part("done")["value"], 17);
    assert_eq!(part("log")["text"], "hello, world");
    assert_eq!(part("jobs")["len"], 3);
    assert_eq!(part("jobs")["capacity"], 8);
}

#[test]
fn a_description_cut_short_shows_the_fields_it_records() {
    let name = ShmName::new("cli-cut");
    let _everything =
        Shared::<Everything>::create_with(&name, |everything| everything.board.done.set(9))
            .expect("created");
    shmsync().args(["show", &name]).assert().success().stdout(
        predicate::str::contains("layout not checked: the description was cut short")
            .and(predicate::str::contains(
                "cli::Everything (its description was cut short: the fields after the cut \
                 are not shown)\n  board: cli::Board\n    lock: Lock: free",
            ))
            .and(predicate::str::contains("    done: Value<u32> = 9"))
            .and(predicate::str::contains("\n  nested:").not()),
    );
}

#[test]
fn a_lock_whose_holder_was_killed_is_shown_owner_died_then_not_recoverable() {
    let name = ShmName::new("cli-died");
    let board = Shared::<Board>::create_with(&name, |board| {
        board.slots = Semaphore::new(2);
    })
    .expect("created");
    let control = control();
    let child = child_holding(&control, || {
        let board = Shared::<Board>::open(&name, HANG).expect("opened");
        std::mem::forget(board.lock.lock().unwrap());
        std::mem::forget(board.slots.permit());
        std::mem::forget(board);
    });
    let pid = child.pid();
    let shown = stdout_of(shmsync().args(["show", &name]));
    assert!(shown.contains(&format!("pid {pid}")), "{shown}");
    assert!(shown.contains("lock: Lock: held by thread"), "{shown}");
    kill(child);

    let shown = stdout_of(shmsync().args(["show", &name]));
    for line in [
        "lock: Lock: free, owner died: its holder died holding it".to_owned(),
        "a holder that died (its permits come back at the next call) ×1".to_owned(),
        format!("gone       pid {pid}: went without leaving"),
    ] {
        assert!(shown.contains(&line), "{line:?} not in:\n{shown}");
    }
    let listed = json_of(shmsync().args(["ls", "--json", &name]));
    assert_eq!(
        (listed[0]["attached"].as_u64(), listed[0]["gone"].as_u64()),
        (Some(1), Some(1))
    );

    // The next locker is told, and holds it until it marks the data consistent.
    let guard = match board.lock.lock() {
        Err(LockError::OwnerDied(guard)) => guard,
        other => panic!("{other:?}"),
    };
    let shown = stdout_of(shmsync().args(["show", &name]));
    let recovering = format!(
        "lock: Lock: held by thread {}, recovering: its previous holder died",
        me()
    );
    assert!(shown.contains(&recovering), "{shown}");
    // Released without marking it consistent: never taken again.
    drop(guard);
    let as_json = json_of(shmsync().args(["show", "--json", &name]));
    assert_eq!(as_json["value"]["parts"][0]["state"], "not-recoverable");
    shmsync()
        .args(["show", &name])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "lock: Lock: not recoverable: a holder died and the data was never marked consistent",
        ));
}

#[test]
fn a_segment_whose_creator_was_killed_is_stale_and_removed_live_ones_are_refused() {
    let _alone = sweeping();
    let stale = ShmName::new("cli-stale");
    let live = ShmName::new("cli-live");
    let control = control();
    let creator = child_holding(&control, || {
        std::mem::forget(Shared::create(&stale, Value::<u64>::new(7)).expect("created"));
    });
    let creator_pid = creator.pid();
    kill(creator);
    let _live = Shared::create(&live, Value::<u64>::new(8)).expect("created");

    let listing = stdout_of(shmsync().args(["ls", &stale, &live]));
    let state_of = |name: &str| {
        let row = listing
            .lines()
            .find(|line| line.starts_with(name))
            .expect("listed");
        row.split_whitespace().skip(7).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(state_of(&stale), "stale", "{listing}");
    assert_eq!(state_of(&live), "live", "{listing}");
    shmsync().args(["show", &stale]).assert().success().stdout(
        predicate::str::contains(format!("gone       pid {creator_pid} (creator)"))
            .and(predicate::str::contains("Value<u64> = 7")),
    );

    // A live one is refused, and stays.
    shmsync()
        .args(["rm", &live])
        .assert()
        .code(1)
        .stderr(format!(
            "shmsync: cannot remove '{}': 1 process is attached (use --force)\n",
            live.0
        ));
    assert!(live.exists());
    // Among names: the stale one goes, the live one stays without a word.
    shmsync()
        .args(["rm", "--stale", "--verbose", &stale, &live])
        .assert()
        .success()
        .stdout(format!("removed '{}'\n", stale.0))
        .stderr("");
    assert!(!stale.exists() && live.exists());
    // Forced, a live name goes; its users keep their memory.
    shmsync()
        .args(["rm", "--force", &live])
        .assert()
        .success()
        .stdout("");
    assert!(!live.exists());
    assert_eq!(_live.get(), 8);
}

#[test]
fn rm_stale_sweeps_dev_shm_of_stale_segments_only() {
    let _alone = sweeping();
    let stale = ShmName::new("cli-sweep-stale");
    let kept = ShmName::new("cli-sweep-kept");
    let foreign = ShmName::new("cli-sweep-foreign");
    let zeros = ShmName::new("cli-sweep-zeros");
    std::fs::write(foreign.path(), b"another program's bytes").unwrap();
    std::fs::write(zeros.path(), [0u8; 64]).unwrap();
    let control = control();
    let creator = child_holding(&control, || {
        std::mem::forget(Shared::create(&stale, Value::<u64>::new(1)).expect("created"));
        let kept = Shared::create(&kept, Value::<u64>::new(2)).expect("created");
        kept.persist().unwrap();
    });
    kill(creator);
    let live = ShmName::new("cli-sweep-live");
    let _live = Shared::create(&live, Value::<u8>::new(0)).expect("created");

    let removed = json_of(shmsync().args(["rm", "--stale", "--json"]));
    let removed: Vec<&str> = (removed["removed"].as_array().unwrap().iter())
        .map(|name| name.as_str().unwrap())
        .collect();
    assert!(removed.contains(&stale.0.as_str()), "{removed:?}");
    for kept in [&kept, &foreign, &zeros, &live] {
        assert!(!removed.contains(&kept.0.as_str()), "{removed:?}");
        assert!(kept.exists(), "{}", kept.0);
    }
    // A name kept on purpose goes when it is named, as nobody is attached.
    shmsync().args(["rm", &kept]).assert().success();
    assert!(!kept.exists());
}

#[test]
fn files_that_are_no_healthy_segment_are_reported_as_such() {
    let _alone = sweeping();
    let foreign = ShmName::new("cli-foreign");
    let garbage = ShmName::new("cli-garbage");
    let cut_header = ShmName::new("cli-cut-header");
    let cut_value = ShmName::new("cli-cut-value");
    let old = ShmName::new("cli-old");
    let empty = ShmName::new("cli-empty");
    let lying = ShmName::new("cli-lying");
    let escaping = ShmName::new("cli-escaping");
    std::fs::write(foreign.path(), b"not ours at all").unwrap();
    std::fs::write(empty.path(), b"").unwrap();
    // shmsync's magic, then noise: a version word no shmsync ever wrote.
    let mut noise = b"SHMSYNC\0".to_vec();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    noise.extend((0..5000).map(|_| {
        seed = seed.rotate_left(13) ^ (seed >> 7) ^ 0x5851_f42d_4c95_7f2d;
        seed as u8
    }));
    std::fs::write(garbage.path(), &noise).unwrap();
    let mut older = b"SHMSYNC\0".to_vec();
    older.extend(2u32.to_ne_bytes());
    older.resize(4096 + 8, 0);
    std::fs::write(old.path(), &older).unwrap();
    // Real segments, kept, then cut short by "another program".
    let control = control();
    let creator = child_holding(&control, || {
        for name in [&cut_header, &cut_value, &lying, &escaping] {
            let board = Shared::<Board>::create_with(name, |board| board.done.set(5)).unwrap();
            board.persist().unwrap();
        }
    });
    control.exit.set();
    assert!(join(creator).success());
    let truncate = |name: &ShmName, len: u64| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(name.path())
            .unwrap();
        file.set_len(len).unwrap();
    };
    truncate(&cut_header, 100);
    truncate(&cut_value, 4096 + 48);
    // Another program's description in the header (at byte 128, 512 bytes).
    let describe = |name: &ShmName, text: &str| {
        use std::os::unix::fs::FileExt;
        let mut field = text.as_bytes().to_vec();
        field.resize(512, 0);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(name.path())
            .unwrap();
        file.write_all_at(&field, 128).unwrap();
    };
    describe(
        &lying,
        "t::Lie (8 bytes, align 8) { far: Lock<Futex, Robust>@100000 }",
    );
    describe(
        &escaping,
        "t::\x1b[2J\x1b]0;pwned\x07 { \u{9b}31m: u8@0 } (8 bytes, align 8)",
    );

    shmsync().args(["show", &lying]).assert().success().stdout(
        predicate::str::contains("layout does not match its fingerprint").and(
            predicate::str::contains("far: Lock: unreadable: outside the value its header sizes"),
        ),
    );
    let shown = shmsync().args(["show", &escaping]).assert().success();
    let shown = String::from_utf8(shown.get_output().stdout.clone()).unwrap();
    assert!(!shown.contains(['\x1b', '\x07', '\u{9b}']), "{shown:?}");
    assert!(shown.contains("t::\\u{1b}[2J"), "{shown}");
    assert!(
        shown.contains("opaque (it describes only its name), not read"),
        "{shown}"
    );
    describe(&escaping, "garbled { without a size");
    shmsync()
        .args(["show", &escaping])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "value not shown: its type's description is not a layout description",
        ));

    shmsync()
        .args(["show", &foreign])
        .assert()
        .code(1)
        .stderr(format!(
            "shmsync: {}: not a shmsync segment (it has no shmsync header)\n",
            foreign.0
        ));
    shmsync()
        .args(["show", &old])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "format version 2; this shmsync reads version",
        ));
    shmsync()
        .args(["show", &garbage])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("format version"));
    shmsync()
        .args(["show", &cut_header])
        .assert()
        .success()
        .stdout(predicate::str::contains("its header is cut short"));
    shmsync()
        .args(["show", &cut_value])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("stale, truncated")
                .or(predicate::str::contains("kept, truncated"))
                .and(predicate::str::contains("another program cut it short"))
                .and(predicate::str::contains("lock: Lock: free"))
                .and(predicate::str::contains("stop: Event: clear"))
                .and(predicate::str::contains(
                    "slots: Semaphore: unreadable: past the end of the file",
                )),
        );
    shmsync()
        .args(["show", &empty])
        .assert()
        .success()
        .stdout(predicate::str::contains("no header"));

    // `ls` lists shmsync's; `ls -a` every file, each as what it is.
    let names = [
        &foreign,
        &garbage,
        &cut_header,
        &cut_value,
        &old,
        &empty,
        &lying,
    ];
    let all = json_of(shmsync().args(["ls", "--all", "--json"]));
    let kind = |name: &ShmName| {
        (all.as_array().unwrap().iter())
            .find(|entry| entry["name"] == name.0.as_str())
            .map(|entry| entry["kind"].as_str().unwrap().to_owned())
    };
    let kinds: Vec<_> = names.iter().map(|name| kind(name)).collect();
    let expected = [
        "foreign",
        "other-version",
        "cut-short",
        "segment",
        "other-version",
        "unwritten",
        "segment",
    ];
    assert_eq!(kinds, expected.map(|kind| Some(kind.to_owned())));
    let ours = stdout_of(shmsync().arg("ls"));
    assert!(
        !ours.contains(&foreign.0) && !ours.contains(&empty.0),
        "{ours}"
    );
    assert!(
        ours.contains(&cut_value.0) && ours.contains(&old.0),
        "{ours}"
    );

    // None is removed by a sweep, nor a foreign file even when forced.
    shmsync()
        .args(["rm", "--force", &foreign])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a shmsync segment"));
    assert!(foreign.exists());
    // A file without a header may be a creator at work for its first second; after
    // that, it may still be another program's.
    let deadline = std::time::Instant::now() + HANG;
    while shmsync::inspect::Segment::look(&empty).unwrap().condition()
        == shmsync::inspect::Condition::Busy
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never older than a second"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    shmsync()
        .args(["rm", &empty])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no shmsync header yet"));
    shmsync()
        .args(["rm", "--force", &empty, &old])
        .assert()
        .success();
    assert!(!empty.exists() && !old.exists());
}

#[test]
fn a_segment_being_initialised_is_shown_without_its_value() {
    let name = ShmName::new("cli-init");
    let control = control();
    let creator = Process::spawn(|| {
        let _board = Shared::<Board>::create_with(&name, |_| {
            control.ready.set();
            control.exit.wait_timeout(HANG);
        });
    })
    .expect("fork");
    assert!(control.ready.wait_timeout(HANG));
    shmsync().args(["show", &name]).assert().success().stdout(
        predicate::str::contains("live, initialising").and(predicate::str::contains(
            "value not shown: its creator has not finished",
        )),
    );
    control.exit.set();
    assert!(join(creator).success());
}

#[test]
fn watch_refreshes_until_its_count_or_ctrl_c() {
    let name = ShmName::new("cli-watch");
    let _value = Shared::create(&name, Value::<u32>::new(3)).expect("created");
    let frames =
        stdout_of(shmsync().args(["show", &name, "--watch", "--count", "3", "--interval", "10"]));
    assert_eq!(frames.matches("Value<u32> = 3").count(), 3, "{frames}");
    let lines = stdout_of(shmsync().args([
        "--json",
        "show",
        &name,
        "-w",
        "--count",
        "2",
        "--interval",
        "1",
    ]));
    let lines: Vec<Json> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["value"]["value"], 3);

    // Unbounded, it stops at Ctrl-C, having finished its frame, with status 0.
    let mut watching = std::process::Command::new(assert_cmd::cargo::cargo_bin("shmsync"))
        .args(["show", &name, "--watch", "--interval", "20"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("started");
    let mut frames = BufReader::new(watching.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("Value<u32> = 3") {
        line.clear();
        assert!(frames.read_line(&mut line).unwrap() > 0, "no frame");
    }
    let pid = nix::unistd::Pid::from_raw(watching.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut frames, &mut rest).unwrap();
    let status = shmsync_tests::wait(&mut watching);
    assert!(status.success(), "{status:?}");
}

#[test]
fn usage_errors_exit_2_and_missing_names_1() {
    shmsync().arg("show").assert().code(2);
    shmsync().arg("rm").assert().code(2);
    shmsync()
        .args(["rm", "--stale", "--force"])
        .assert()
        .code(2);
    shmsync()
        .args(["show", "x", "--count", "3"])
        .assert()
        .code(2);
    shmsync().arg("frobnicate").assert().code(2);
    let missing = ShmName::new("cli-missing");
    shmsync()
        .args(["show", &missing])
        .assert()
        .code(1)
        .stdout("")
        .stderr(format!(
            "shmsync: cannot show '{}': no such segment\n",
            missing.0
        ));
    shmsync()
        .args(["rm", &missing])
        .assert()
        .code(1)
        .stderr(format!(
            "shmsync: cannot remove '{}': no such segment\n",
            missing.0
        ));
    shmsync()
        .args(["show", "no/slash"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "shmsync: cannot show 'no/slash': ",
        ));
    // A reader that goes away early ends the listing quietly.
    let mut head = std::process::Command::new(assert_cmd::cargo::cargo_bin("shmsync"))
        .args(["ls", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(head.stdout.take());
    let status = shmsync_tests::wait(&mut head);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut head.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success() && stderr.is_empty(), "{status:?} {stderr}");
    let _ = std::io::stdout().flush();
}

shm_struct! {
    struct Crew { rlock: shmsync::RLock, gate: shmsync::Barrier, ready: shmsync::Condition, table: shmsync::RwLock }
}

#[test]
fn rlocks_barriers_conditions_and_rwlocks_are_shown() {
    let name = ShmName::new("cli-crew");
    let crew = Shared::<Crew>::create_with(&name, |crew| crew.gate = shmsync::Barrier::new(2))
        .expect("created");
    let _outer = crew.rlock.lock().unwrap();
    let _inner = crew.rlock.lock().unwrap();
    let _writing = crew.table.write().unwrap();
    shmsync().args(["show", &name]).assert().success().stdout(
        predicate::str::contains(format!("rlock: RLock: held by thread {} (2 levels)", me()))
            .and(predicate::str::contains(
                "gate: Barrier: 0 of 2 parties waiting",
            ))
            .and(predicate::str::contains("ready: Condition: nobody waits"))
            .and(predicate::str::contains(format!(
                "table: RwLock: no readers; writer lock held by thread {}, readers turned away",
                me()
            ))),
    );
    let shown = json_of(shmsync().args(["show", "--json", &name]));
    let parts = &shown["value"]["parts"];
    assert_eq!(parts[0]["kind"], "rlock");
    assert_eq!(parts[0]["depth"], 2);
    assert_eq!(parts[0]["holder_tid"], me());
    assert_eq!(parts[1]["parties"], 2);
    assert_eq!(parts[2]["waiting"], 0);
    assert_eq!(parts[3]["writer"]["state"], "held");
    assert_eq!(shown["layout"], "checked");
}
