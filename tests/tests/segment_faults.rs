//! Named segments under SIGKILL: processes that create, initialise, open, use and drop
//! one segment die at random points of each, from a kill by another process or by
//! their own hand at a chosen step. After every trial:
//! - no stale name is left that a later `create` cannot reclaim;
//! - no live segment was removed under a user: while attached, each user's name leads
//!   to its own segment;
//! - nobody saw a half-built segment, and nothing hung.
//!
//! It prints a summary line: trials, kills, reclaimed names, hangs.

use shmsync::{shm_struct, Event, Origin, Process, Shared, ShmError, Unlink, Value};
use shmsync_tests::{join, ShmName, XorShift, HANG};
use std::os::fd::AsFd;
use std::time::Duration;

const TRIALS: u64 = 200;
const PROCESSES: u64 = 4;
/// What an initialiser writes last: a user that sees it not is seeing half-built memory.
const FINISHED: u64 = 0x5e67_0000_f1e1_d5ed;

shm_struct! {
    /// The named segment.
    struct Board {
        initialised: Value<u32>,
        finished: Value<u64>,
        uses: Value<u64>,
    }
}

shm_struct! {
    /// What the processes of a trial report (an anonymous segment).
    struct Report {
        go: Event,
        removed_under_user: Value<u32>,
        half_built: Value<u32>,
        unexpected: Value<u32>,
        reclaimed: Value<u32>,
        self_kills: Value<u32>,
        checked_stale: Value<u32>,
    }
}

/// Where a process may kill itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Initialising,
    Opened,
    Using,
    Dropping,
    Never,
}

impl Step {
    fn pick(random: &mut XorShift) -> Step {
        [
            Step::Initialising,
            Step::Opened,
            Step::Using,
            Step::Dropping,
            Step::Never,
            Step::Never,
        ][random.below(6) as usize]
    }
}

/// Writes `message` to standard error from a forked child, whose printing the test
/// harness does not capture.
fn say(message: &str) {
    use std::io::Write;
    let _ = std::fs::File::from(
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup stderr"),
    )
    .write_all(message.as_bytes());
}

fn die_at(step: Step, here: Step, report: &Report) {
    if step == here {
        report.self_kills.fetch_add(1);
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// The initialisation: what every user checks it sees.
fn finish(board: &mut Board) {
    board.initialised.fetch_add(1);
    board.finished.set(FINISHED);
}

fn pause(random: &mut XorShift, most_us: u64) {
    std::thread::sleep(Duration::from_micros(random.below(most_us)));
}

/// One process's visit: create, open or open-or-create the segment, use it, leave.
fn visit(name: &ShmName, report: &Report, seed: u64) {
    let mut random = XorShift(seed);
    let dies_at = Step::pick(&mut random);
    let init_pause = random.below(2_000);
    let init = |board: &mut Board| {
        die_at(dies_at, Step::Initialising, report);
        std::thread::sleep(Duration::from_micros(init_pause));
        finish(board);
    };
    let opened = match random.below(3) {
        0 => match Shared::<Board>::create_with(name, init) {
            Err(ShmError::AlreadyExists { .. }) => {
                Shared::<Board>::open(name, Duration::from_millis(50))
            }
            created => created,
        },
        1 => Shared::<Board>::open(name, Duration::from_millis(50)),
        _ => Shared::<Board>::open_or_create(name, Duration::from_millis(500), init),
    };
    let segment = match opened {
        Ok(segment) => segment,
        // What others' deaths may leave a process to find.
        Err(
            ShmError::NotFound { .. }
            | ShmError::NotReady { .. }
            | ShmError::Abandoned { .. }
            | ShmError::AlreadyExists { .. },
        ) => return,
        Err(error) => {
            say(&format!("unexpected: {error}\n"));
            report.unexpected.fetch_add(1);
            return;
        }
    };
    if matches!(segment.origin(), Origin::Reclaimed(_)) {
        report.reclaimed.fetch_add(1);
    }
    segment.set_unlink(Unlink::ByLastOut).unwrap();
    if segment.finished.get() != FINISHED || segment.initialised.get() != 1 {
        report.half_built.fetch_add(1);
    }
    die_at(dies_at, Step::Opened, report);
    for _ in 0..1 + random.below(4) {
        segment.uses.fetch_add(1);
        if let Some(elsewhere) = name.leads_elsewhere(&segment) {
            report.removed_under_user.fetch_add(1);
            say(&format!(
                "removed under its user ({:?}, pid {}): {elsewhere}\n",
                segment.origin(),
                std::process::id()
            ));
        }
        pause(&mut random, 1_000);
        die_at(dies_at, Step::Using, report);
    }
    die_at(dies_at, Step::Dropping, report);
    drop(segment);
}

/// Creates the segment as a later program would, which must succeed: nobody is left
/// attached. Returns whether it reclaimed a stale one.
fn create_after(name: &ShmName, trial: u64) -> (Shared<Board>, bool) {
    match Shared::<Board>::create_with(name, finish) {
        Ok(segment) => {
            let reclaimed = matches!(segment.origin(), Origin::Reclaimed(_));
            (segment, reclaimed)
        }
        Err(error) => panic!("trial {trial}: a stale name cannot be reclaimed: {error}"),
    }
}

#[test]
fn sigkill_segment_suite() {
    let name = ShmName::new("sigkill");
    let mut random = XorShift(0x5e65_0000_0000_0001);
    let (mut kills, mut self_kills, mut reclaimed, mut by_processes, mut hangs) = (0, 0, 0, 0, 0);
    for trial in 0..TRIALS {
        let report = Shared::<Report>::anonymous_with(|_| {}).unwrap();
        let mut processes: Vec<Process> = (0..PROCESSES)
            .map(|index| {
                let seed = (trial << 8 | index) * 0x9e37_79b9 + 1;
                let (name, report) = (&name, &report);
                let mut process = Process::spawn(move || {
                    assert!(report.go.wait_timeout(HANG));
                    visit(name, report, seed);
                })
                .unwrap();
                process.set_daemon(true);
                process
            })
            .collect();
        report.go.set();
        pause(&mut random, 6_000);
        for process in &processes {
            if random.below(2) == 0 {
                let _ = process.kill();
            }
        }
        for process in &mut processes {
            let status = match process.join_timeout(HANG).unwrap() {
                Some(status) => status,
                None => {
                    hangs += 1;
                    let _ = process.kill();
                    process.join_timeout(HANG).unwrap().expect("killed")
                }
            };
            if status.signal().is_some() {
                kills += 1;
            } else {
                assert!(status.success(), "trial {trial}: a process failed");
            }
        }
        assert_eq!(report.removed_under_user.get(), 0, "trial {trial}");
        assert_eq!(report.half_built.get(), 0, "trial {trial}");
        assert_eq!(report.unexpected.get(), 0, "trial {trial}");
        self_kills += report.self_kills.get();
        by_processes += report.reclaimed.get();

        // Everyone is gone: a later program's `create` must find the name free or
        // reclaim it. Every other trial, that program dies too, leaving its segment
        // stale for the next trial's processes.
        if trial % 2 == 0 {
            let (segment, was_stale) = create_after(&name, trial);
            reclaimed += u32::from(was_stale);
            drop(segment);
            assert!(!name.exists(), "trial {trial}: its creator left the name");
        } else {
            let checker = Process::spawn(|| {
                let (segment, was_stale) = create_after(&name, trial);
                report.checked_stale.set(u32::from(was_stale));
                std::mem::forget(segment); // as if killed
            })
            .unwrap();
            assert!(join(checker).success(), "trial {trial}");
            reclaimed += report.checked_stale.get();
        }
    }
    let (segment, was_stale) = create_after(&name, TRIALS);
    reclaimed += u32::from(was_stale);
    drop(segment);
    eprintln!(
        "segment SIGKILL suite: {TRIALS} trials, {kills} processes killed ({self_kills} by \
         their own hand), {} reclaimed ({reclaimed} by a later create, {by_processes} by \
         the trials' processes), {hangs} hangs",
        reclaimed + by_processes
    );
    assert_eq!(hangs, 0, "processes hung");
    assert!(kills > 0, "nobody was killed: the suite tested nothing");
    assert!(reclaimed + by_processes > 0, "nothing was reclaimed");
}
