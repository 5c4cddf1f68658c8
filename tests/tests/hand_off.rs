//! The fair hand-off of a contended `Lock` (a release that hands the lock to a sleeper)
//! against every kind of locker at once: blocking, timed, `try_lock`, condition
//! waiters, lockers in other processes. Over the owner-less futex lock, which never
//! looks again uninvited, a hand-off that strands its lock hangs for good, so the
//! watchdog catches it; over the robust lock, the suite counts the blocking calls that
//! only the 50 ms re-look ended.

use shmsync::{shm_struct, Futex, Process, Shared, Value};
use shmsync_core::{LockState, TryLockError, Unowned};
use shmsync_tests::{daemon, join, XorShift};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

type BareLock = shmsync_core::Lock<Futex, Unowned>;
type BareCondition = shmsync_core::Condition<Futex, Unowned, 8>;

shm_struct! {
    /// `a` and `b` move together under the lock.
    struct Bare {
        lock: BareLock,
        a: Value<u64>,
        b: Value<u64>,
        /// Entries that found `a != b`: two holders at once.
        torn: Value<u64>,
        rounds: Value<u64>,
    }
}

/// One round under a held lock: the invariant is broken in between.
fn inside(shared: &Bare, work: u32) {
    if shared.a.get() != shared.b.get() {
        shared.torn.fetch_add(1);
    }
    shared.a.fetch_add(1);
    for _ in 0..work {
        std::hint::spin_loop();
    }
    shared.b.fetch_add(1);
    shared.rounds.fetch_add(1);
}

/// How long the suite runs its lockers.
const RUN: Duration = Duration::from_secs(4);
/// No round at all for this long is a stranded lock (the owner-less lock never looks
/// again by itself).
const STUCK: Duration = Duration::from_secs(20);

/// Waits while the lockers run, until `done()` holds. If they stop making rounds, the
/// test fails by ending its process: a panic here would wait for ever for the stranded
/// lockers' threads.
fn watch(shared: &Bare, mut done: impl FnMut() -> bool) {
    let mut last = (shared.rounds.get(), Instant::now());
    while !done() {
        std::thread::sleep(Duration::from_millis(5));
        let rounds = shared.rounds.get();
        if rounds != last.0 {
            last = (rounds, Instant::now());
        }
        if last.1.elapsed() >= STUCK {
            eprintln!(
                "no round for {STUCK:?}: the lock is {:?} (someone waits: {})",
                shared.lock.state(),
                shared.lock.sleepers_announced()
            );
            std::process::exit(101);
        }
    }
}

#[test]
fn every_kind_of_locker_meets_handed_over_locks_and_nobody_is_stranded() {
    let shared = Shared::<Bare>::anonymous_with(|_| {}).unwrap();
    let condition = BareCondition::new();
    let stop = AtomicBool::new(false);
    let timed_taken = AtomicU64::new(0);
    let tried_taken = AtomicU64::new(0);
    let waits = AtomicU64::new(0);
    let handed_seen = AtomicU64::new(0);
    let slowest = AtomicU64::new(0);
    // Two processes lock and unlock for ever (killed at the end).
    let children: Vec<Process> = (0..2u32)
        .map(|i| {
            let shared = &*shared;
            let mut child = Process::spawn(move || {
                // Killed with the test's thread, should `watch` end the test's process.
                // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a signal number for this
                // process.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                loop {
                    let guard = shared.lock.lock().unwrap();
                    inside(shared, 100 + 200 * i);
                    drop(guard);
                }
            })
            .unwrap();
            child.set_daemon(true);
            child
        })
        .collect();
    std::thread::scope(|s| {
        let shared = &*shared;
        let (stop, condition) = (&stop, &condition);
        let mut lockers = Vec::new();
        // Blocking lockers, which say how long their longest wait was.
        let slowest = &slowest;
        for work in [0, 500] {
            lockers.push(s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let guard = shared.lock.lock().unwrap();
                    let waited = began.elapsed().as_micros() as u64;
                    slowest.fetch_max(waited, Ordering::Relaxed);
                    inside(shared, work);
                    drop(guard);
                }
            }));
        }
        // A timed locker with timeouts from nothing to a few hundred microseconds.
        let timed_taken = &timed_taken;
        lockers.push(s.spawn(move || {
            let mut random = XorShift(0x7173_0000_0000_0001);
            while !stop.load(Ordering::Relaxed) {
                let timeout = Duration::from_nanos(random.below(300_000));
                match shared.lock.lock_timeout(timeout) {
                    Ok(guard) => {
                        inside(shared, 50);
                        drop(guard);
                        timed_taken.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TryLockError::WouldBlock) => {}
                    Err(error) => panic!("{error}"),
                }
            }
        }));
        // A try_lock spinner, with Python's names.
        let tried_taken = &tried_taken;
        lockers.push(s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if shared.lock.try_acquire().is_ok() {
                    inside(shared, 10);
                    shared.lock.release().unwrap();
                    tried_taken.fetch_add(1, Ordering::Relaxed);
                }
                std::hint::spin_loop();
            }
        }));
        // A condition waiter that re-takes the lock after each (timed) wait, and a
        // notifier.
        let waits = &waits;
        lockers.push(s.spawn(move || {
            let mut guard = shared.lock.lock().unwrap();
            while !stop.load(Ordering::Relaxed) {
                inside(shared, 20);
                let (back, _) = condition
                    .wait_timeout(guard, Duration::from_micros(300))
                    .unwrap();
                guard = back;
                waits.fetch_add(1, Ordering::Relaxed);
            }
        }));
        lockers.push(s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let guard = shared.lock.lock().unwrap();
                inside(shared, 20);
                condition.notify_all();
                drop(guard);
            }
        }));
        let handed_seen = &handed_seen;
        s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if shared.lock.state() == LockState::HandedOver {
                    handed_seen.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
        });
        let began = Instant::now();
        watch(shared, || began.elapsed() >= RUN);
        // A watcher kept off the CPUs (by a loaded machine) can miss every short window
        // in which the lock is handed over: the lockers go on until it sees one.
        let began = Instant::now();
        watch(shared, || {
            handed_seen.load(Ordering::Relaxed) > 0 || began.elapsed() >= shmsync_tests::HANG
        });
        stop.store(true, Ordering::Relaxed);
        // A lock stranded now, or shortly before, keeps a locker from ever seeing the
        // stop, and the scope from ending: watched until they are through their last
        // calls (the children go on making rounds meanwhile).
        let began = Instant::now();
        watch(shared, || {
            if began.elapsed() >= shmsync_tests::HANG {
                let hang = shmsync_tests::HANG;
                eprintln!("the lockers still run {hang:?} after the stop");
                std::process::exit(101);
            }
            lockers.iter().all(|locker| locker.is_finished())
        });
    });
    for child in children {
        child.kill().unwrap();
        let _ = join(child);
    }
    eprintln!(
        "{} rounds; timed {}, tried {}, condition waits {}; seen handed over {} times; \
         longest blocking wait {} us",
        shared.rounds.get(),
        timed_taken.load(Ordering::Relaxed),
        tried_taken.load(Ordering::Relaxed),
        waits.load(Ordering::Relaxed),
        handed_seen.load(Ordering::Relaxed),
        slowest.load(Ordering::Relaxed),
    );
    assert_eq!(shared.torn.get(), 0, "two holders at once");
    assert!(handed_seen.load(Ordering::Relaxed) > 0, "never handed over");
}

/// Waits until the process `pid` is asleep in the kernel (state S).
fn until_asleep(pid: u32) {
    let began = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'))
        {
            return;
        }
        assert!(began.elapsed() < STUCK, "the locker never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Makes the calling thread's next contended release hand its lock over: sixteen
/// contended releases of a lock of its own (WAITERS set by hand), then a pause of more
/// than the futex's hand-off period.
fn make_hand_off_due() {
    const WAITERS: u32 = 1 << 31;
    let own = BareLock::new();
    // SAFETY: Lock is #[repr(C)] with its word first, and Unowned records nothing after
    // it: the lock is its word.
    let word = unsafe { &*(&own as *const BareLock).cast::<shmsync_core::AtomicU32>() };
    for _ in 0..16 {
        // Timed: a release below may hand the lock over to a waiter that is not there.
        own.acquire_timeout(shmsync_tests::HANG).unwrap();
        word.fetch_or(WAITERS, shmsync_core::Ordering::Relaxed);
        own.release().unwrap();
    }
    std::thread::sleep(Duration::from_millis(2));
}

/// A locker killed after a release woke it to hand it the lock, before it took the
/// lock, over the owner-less futex lock (no uninvited re-looks): it never held the
/// lock, so a newcomer takes it. Before lockers looked again soon at a lock handed
/// over, such a lock stayed handed over for ever: no newcomer, blocking or
/// `try_lock`, took it again.
#[test]
fn a_woken_locker_killed_before_it_takes_a_handed_over_lock_does_not_strand_it() {
    // One CPU for this thread and its children, so that a woken child waits for it.
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes within it;
    // sched_setaffinity reads it.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut one);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one),
            0
        );
    }
    let mut handed_over = 0;
    for _ in 0..20 {
        let shared = Shared::<Bare>::anonymous_with(|_| {}).unwrap();
        shared.lock.acquire().unwrap();
        let lock = &shared.lock;
        // A daemon: it parks for ever, to be killed, not waited for, if the test fails
        // before it kills it.
        let child = daemon(
            Process::spawn(move || {
                // SAFETY: nice(2) has no memory-safety preconditions.
                unsafe { libc::nice(19) };
                std::mem::forget(lock.lock());
                loop {
                    std::thread::park();
                }
            })
            .unwrap(),
        );
        until_asleep(child.pid());
        make_hand_off_due();
        shared.lock.release().unwrap();
        child.kill().unwrap();
        let _ = join(child);
        let state = shared.lock.state();
        if matches!(state, LockState::Held { .. }) {
            // The locker took the lock first and died holding it, which an owner-less
            // lock never recovers from: again.
            continue;
        }
        handed_over += u32::from(state == LockState::HandedOver);
        let mut newcomer = Process::spawn(move || drop(lock.lock())).unwrap();
        let took = newcomer
            .join_timeout(Duration::from_secs(5))
            .unwrap()
            .is_some();
        let tried = shared.lock.try_lock().err();
        if !took {
            newcomer.kill().unwrap();
            let _ = join(newcomer);
        }
        assert!(
            took,
            "a lock handed to a locker killed before it took it is stranded: a newcomer \
             waited 5 s for it (the lock is {:?}; try_lock: {tried:?})",
            shared.lock.state(),
        );
    }
    eprintln!("{handed_over} of 20 killed lockers had been handed the lock");
    assert!(handed_over > 0, "no killed locker had been handed the lock");
}
