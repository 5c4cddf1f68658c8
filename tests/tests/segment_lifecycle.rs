//! The life of a named segment across processes: `open` waits for the name, stale names
//! are reclaimed visibly and live ones never, participants are recorded until they
//! leave, the name goes by the segment's rule (even when the last one leaves as another
//! opens), and `open_or_create` lets exactly one of many racing processes initialise.

use shmsync::{shm_struct, Event, Origin, Process, Shared, ShmError, ShmSafe, Unlink, Value};
use shmsync_tests::{in_child, join, join_all_reaped, until, ShmName};
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(50);
/// Longer than any step of a test takes, so that only a bug reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

shm_struct! {
    /// How a test and its children tell each other where they are.
    struct Signals {
        created: Event,
        opened: Event,
        release: Event,
        go: Event,
        value: Value<u64>,
    }
}

fn signals() -> Shared<Signals> {
    Shared::<Signals>::anonymous_with(|_| {}).unwrap()
}

/// A forked child that is killed (and reaped) if the test fails before joining it.
fn child(f: impl FnOnce()) -> Process {
    let mut process = Process::spawn(f).expect("fork");
    process.set_daemon(true);
    process
}

/// A child that creates `name` holding `value`, says so (and its pid) in `signals`,
/// and then stays until killed.
fn creator<'a>(name: &'a ShmName, signals: &'a Signals, value: u64) -> Process {
    let creator = child(|| {
        let _segment = Shared::create(name, Value::<u64>::new(value)).unwrap();
        signals.value.set(u64::from(std::process::id()));
        signals.created.set();
        std::thread::sleep(PATIENCE);
    });
    assert!(signals.created.wait_timeout(PATIENCE));
    creator
}

/// Kills `process` and reaps it.
fn kill(process: Process) {
    process.kill().unwrap();
    assert!(join(process).signal().is_some());
}

/// `create` until it succeeds: a process that just died may still hold its lease for a
/// moment.
fn create_once_free(name: &str, value: u64) -> Shared<Value<u64>> {
    let began = Instant::now();
    loop {
        match Shared::create(name, Value::new(value)) {
            Err(ShmError::AlreadyExists { .. }) if began.elapsed() < PATIENCE => {
                std::thread::sleep(Duration::from_millis(1))
            }
            created => return created.unwrap(),
        }
    }
}

#[test]
fn open_waits_for_the_name_to_appear() {
    let name = ShmName::new("appears");
    let opener = std::thread::spawn({
        let name = name.0.clone();
        move || Shared::<Value<u64>>::open(&name, PATIENCE).map(|value| value.get())
    });
    std::thread::sleep(SHORT);
    let _segment = Shared::create(&name, Value::<u64>::new(7)).unwrap();
    assert_eq!(opener.join().unwrap().unwrap(), 7);
}

#[test]
fn open_gives_up_on_a_missing_name_after_its_timeout() {
    let name = ShmName::new("never");
    let began = Instant::now();
    let error = Shared::<Value<u64>>::open(&name, SHORT).unwrap_err();
    assert!(matches!(error, ShmError::NotFound { .. }), "{error}");
    assert!(began.elapsed() >= SHORT, "it did not wait");
}

#[test]
fn a_killed_creators_name_is_reclaimed_visibly() {
    let name = ShmName::new("reclaimed");
    let signals = signals();
    let creator = creator(&name, &signals, 5);
    let pid = signals.value.get() as u32;
    kill(creator);
    assert!(name.exists(), "a killed creator removes nothing");

    let segment = create_once_free(&name, 9);
    match segment.origin() {
        Origin::Reclaimed(stale) => {
            assert_eq!(stale.creator_pid, Some(pid));
            assert!(stale.initialised);
            let held = stale.held.as_ref().expect("its header says what it held");
            assert_eq!(held.fingerprint, Value::<u64>::LAYOUT.fingerprint());
            assert_eq!(
                &*held.description,
                "Value<u64, Futex, Robust> (48 bytes, align 8)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(segment.get(), 9, "the old data was reused");
}

#[test]
fn a_creator_killed_while_initialising_leaves_an_abandoned_segment() {
    let name = ShmName::new("half-made");
    let signals = signals();
    let creator = child(|| {
        let _never = Shared::<Value<u64>>::create_with(&name, |_| {
            signals.created.set();
            std::thread::sleep(PATIENCE);
        });
    });
    assert!(signals.created.wait_timeout(PATIENCE));
    // Alive: it is only slow.
    assert!(matches!(
        Shared::<Value<u64>>::open(&name, SHORT),
        Err(ShmError::NotReady { .. })
    ));
    kill(creator);
    // Dead: nobody will finish it.
    let error = Shared::<Value<u64>>::open(&name, SHORT).unwrap_err();
    assert!(matches!(error, ShmError::Abandoned { .. }), "{error}");
    assert!(error.to_string().contains("died"), "{error}");

    let segment = Shared::<Value<u64>>::open_or_create(&name, PATIENCE, |v| v.set(3)).unwrap();
    match segment.origin() {
        Origin::Reclaimed(stale) => assert!(!stale.initialised),
        other => panic!("{other:?}"),
    }
    assert_eq!(segment.get(), 3);
}

#[test]
fn a_header_less_leftover_is_reclaimed_once_its_creator_had_time() {
    let name = ShmName::new("header-less");
    // What a creator killed between making the file and writing its header leaves.
    let signals = signals();
    let creator = child(|| {
        let path = std::ffi::CString::new(format!("/{}", name.0)).unwrap();
        let fd = nix::sys::mman::shm_open(
            path.as_c_str(),
            nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL | nix::fcntl::OFlag::O_RDWR,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        signals.created.set();
        std::thread::sleep(PATIENCE);
        drop(fd);
    });
    assert!(signals.created.wait_timeout(PATIENCE));
    kill(creator);
    let segment = Shared::create(&name, Value::<u64>::new(1)).unwrap();
    match segment.origin() {
        Origin::Reclaimed(stale) => {
            assert_eq!((stale.creator_pid, stale.initialised), (None, false))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_name_in_use_is_never_reclaimed() {
    let name = ShmName::new("in-use");
    let signals = signals();
    let creator = creator(&name, &signals, 1);
    let opener = child(|| {
        // Opened on a thread that then exits: the process stays attached.
        let segment = std::thread::spawn({
            let name = name.0.clone();
            move || Shared::<Value<u64>>::open(&name, PATIENCE).unwrap()
        })
        .join()
        .unwrap();
        signals.opened.set();
        assert!(signals.release.wait_timeout(PATIENCE));
        assert!(name.leads_to(&segment), "removed under its user");
        assert_eq!(segment.fetch_add(1), 1);
    });
    assert!(signals.opened.wait_timeout(PATIENCE));
    kill(creator);
    for _ in 0..3 {
        assert!(matches!(
            Shared::create(&name, Value::<u64>::new(2)),
            Err(ShmError::AlreadyExists { .. })
        ));
    }
    signals.release.set();
    assert!(join(opener).success());
    assert!(matches!(
        create_once_free(&name, 3).origin(),
        Origin::Reclaimed(_)
    ));
}

#[test]
fn a_child_forked_from_a_participant_keeps_it_attached() {
    let name = ShmName::new("forked-user");
    let signals = signals();
    let creator = child(|| {
        let segment = Shared::create(&name, Value::<u64>::new(1)).unwrap();
        // A child of the creator uses the segment it inherited...
        let mut user = Process::spawn(|| {
            signals.opened.set();
            assert!(signals.release.wait_timeout(PATIENCE));
            assert!(name.leads_to(&segment), "removed under its user");
            segment.fetch_add(1);
        })
        .unwrap();
        user.set_daemon(false);
        std::mem::forget(user); // outlives the creator
        signals.created.set();
        std::thread::sleep(PATIENCE);
    });
    assert!(signals.created.wait_timeout(PATIENCE));
    assert!(signals.opened.wait_timeout(PATIENCE));
    // ...after the creator is killed.
    kill(creator);
    assert!(matches!(
        Shared::create(&name, Value::<u64>::new(2)),
        Err(ShmError::AlreadyExists { .. })
    ));
    let opened = Shared::<Value<u64>>::open(&name, SHORT).unwrap();
    signals.release.set();
    until(|| opened.get() == 2, "the creator's child to add its 1");
    drop(opened);
    assert!(matches!(
        create_once_free(&name, 3).origin(),
        Origin::Reclaimed(_)
    ));
}

#[test]
fn a_persisted_name_is_kept_for_later_processes() {
    in_child(|| {
        let name = ShmName::new("kept");
        let segment = Shared::create(&name, Value::<u64>::new(4)).unwrap();
        segment.persist().unwrap();
        drop(segment);
        assert!(matches!(
            Shared::create(&name, Value::<u64>::new(5)),
            Err(ShmError::AlreadyExists { .. })
        ));
        let later = Shared::<Value<u64>>::open_or_create(&name, SHORT, |_| panic!("kept")).unwrap();
        assert_eq!((later.origin(), later.get()), (&Origin::Opened, 4));
        assert_eq!(later.unlink_rule(), Some(Unlink::Never));
    });
}

#[test]
fn participants_are_recorded_until_they_leave() {
    let name = ShmName::new("participants");
    let signals = signals();
    let segment = Shared::create(&name, Value::<u64>::new(0)).unwrap();
    let openers: Vec<Process> = (0..2)
        .map(|_| {
            child(|| {
                let _mine = Shared::<Value<u64>>::open(&name, PATIENCE).unwrap();
                signals.value.fetch_add(1);
                assert!(signals.release.wait_timeout(PATIENCE));
            })
        })
        .collect();
    until(
        || signals.value.get() >= 2,
        "both openers to open the segment",
    );
    let mut pids: Vec<u32> = segment
        .participants()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p.creator, p.pid == std::process::id());
            p.pid
        })
        .collect();
    pids.sort_unstable();
    let mut expected: Vec<u32> = openers.iter().map(Process::pid).collect();
    expected.push(std::process::id());
    expected.sort_unstable();
    assert_eq!(pids, expected);

    signals.release.set();
    join_all_reaped(openers);
    let left = segment.participants().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].creator);
}

#[test]
fn the_last_one_out_removes_the_name() {
    // Two unrelated processes (neither forked from the other, which would share the
    // other's attachment).
    let name = ShmName::new("last-out");
    let signals = signals();
    let creator = child(|| {
        let segment = Shared::create(&name, Value::<u64>::new(0)).unwrap();
        segment.set_unlink(Unlink::ByLastOut).unwrap();
        signals.created.set();
        assert!(signals.opened.wait_timeout(PATIENCE));
    });
    assert!(signals.created.wait_timeout(PATIENCE));
    let opener = child(|| {
        let mine = Shared::<Value<u64>>::open(&name, PATIENCE).unwrap();
        assert_eq!(mine.unlink_rule(), Some(Unlink::ByLastOut));
        signals.opened.set();
        assert!(signals.release.wait_timeout(PATIENCE));
    });
    assert!(join(creator).success());
    assert!(name.exists(), "removed while another was attached");
    signals.release.set();
    assert!(join(opener).success());
    assert!(!name.exists(), "the last one out left the name");
}

#[test]
fn the_last_one_out_never_removes_a_name_another_is_opening() {
    // Processes come and go, each setting the rule as it attaches, so that the name's
    // last user removes it while others open it at that very moment.
    const PROCESSES: usize = 6;
    const VISITS: usize = 60;
    let name = ShmName::new("last-out-race");
    let signals = signals();
    let visitors: Vec<Process> = (0..PROCESSES)
        .map(|_| {
            child(|| {
                assert!(signals.go.wait_timeout(PATIENCE));
                for _ in 0..VISITS {
                    let segment =
                        Shared::<Value<u64>>::open_or_create(&name, PATIENCE, |_| {}).unwrap();
                    segment.set_unlink(Unlink::ByLastOut).unwrap();
                    segment.fetch_add(1);
                    assert!(name.leads_to(&segment), "removed under its user");
                    std::thread::yield_now();
                    assert!(name.leads_to(&segment), "removed under its user");
                }
            })
        })
        .collect();
    signals.go.set();
    join_all_reaped(visitors);
    assert!(!name.exists(), "the last one out left the name");
}

shm_struct! {
    /// The segment the racers open or create.
    struct Meeting {
        initialised: Value<u32>,
        attached: Value<u32>,
        everyone_here: Event,
    }
}

shm_struct! {
    /// What the racers report.
    struct Tally {
        go: Event,
        created: Value<u32>,
        saw_uninitialised: Value<u32>,
    }
}

#[test]
fn exactly_one_of_many_racing_processes_creates() {
    const RACERS: u32 = 16;
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let name = ShmName::new("race");
        let tally = Shared::<Tally>::anonymous_with(|_| {}).unwrap();
        let racers: Vec<Process> = (0..RACERS)
            .map(|_| {
                child(|| {
                    assert!(tally.go.wait_timeout(PATIENCE));
                    let meeting = Shared::<Meeting>::open_or_create(&name, PATIENCE, |m| {
                        m.initialised.fetch_add(1);
                    })
                    .unwrap();
                    if meeting.initialised.get() != 1 {
                        tally.saw_uninitialised.fetch_add(1);
                    }
                    if *meeting.origin() != Origin::Opened {
                        tally.created.fetch_add(1);
                    }
                    // Everyone must be in the same segment: wait for all.
                    if meeting.attached.fetch_add(1) + 1 == RACERS {
                        meeting.everyone_here.set();
                    }
                    assert!(
                        meeting.everyone_here.wait_timeout(PATIENCE),
                        "not everyone reached the same segment"
                    );
                })
            })
            .collect();
        tally.go.set();
        join_all_reaped(racers);
        assert_eq!(tally.created.get(), 1, "round {round}: creators");
        assert_eq!(tally.saw_uninitialised.get(), 0, "round {round}");
        assert!(!name.exists(), "round {round}: its creator left the name");
    }
}

#[test]
fn an_opener_racing_the_creator_waits_for_it_and_reports_nothing_false() {
    // A creator sizes its file, writes the header, initialises the value, marks it
    // ready and (here) leaves at once. An opener that looks in the middle of that must
    // not take the new file's size for a cut-short segment, nor a creator that finished
    // and left for one that died initialising.
    const ROUNDS: u64 = 20_000;
    let name = ShmName::new("racing-creator");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Stops the opener however the test ends, so that the scope can end.
        let _done = shmsync_tests::Stop(&done);
        let opener = scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match Shared::<Value<u64>>::open(&name, Duration::ZERO) {
                    Ok(_)
                    | Err(
                        ShmError::NotFound { .. }
                        | ShmError::NotReady { .. }
                        | ShmError::Unavailable { .. },
                    ) => {}
                    Err(error) => panic!("an opener racing the creator was told: {error}"),
                }
            }
        });
        for round in 0..ROUNDS {
            drop(Shared::create(&name, Value::new(round)).unwrap());
            if opener.is_finished() {
                break;
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        opener.join().unwrap();
    });
}

#[test]
fn open_or_create_creates_a_name_removed_while_it_looked() {
    // A segment is being removed: its gate is held exclusively (as a remover holds
    // it), so `open_or_create` can neither reclaim it nor enter it; then its name goes,
    // and nobody else will create it. The caller must create it, not wait for someone
    // else to (which the last one out of a busy name can leave it doing).
    let name = ShmName::new("removed-meanwhile");
    let segment = Shared::create(&name, Value::<u64>::new(1)).unwrap();
    segment.persist().unwrap();
    drop(segment);
    let gate = name.hold_gate();
    std::thread::scope(|s| {
        let opener = s.spawn(|| {
            let began = Instant::now();
            let opened = Shared::<Value<u64>>::open_or_create(&name, PATIENCE, |v| v.set(2));
            (
                opened.map(|segment| (segment.origin().clone(), segment.get())),
                began.elapsed(),
            )
        });
        std::thread::sleep(SHORT);
        Shared::<Value<u64>>::unlink(&name).unwrap();
        drop(gate);
        let (opened, took) = opener.join().unwrap();
        assert_eq!(opened.unwrap(), (Origin::Created, 2), "after {took:?}");
    });
}
