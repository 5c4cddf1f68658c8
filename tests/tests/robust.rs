//! A Lock whose owner dies: SIGKILLed processes and exited threads. The survivors never
//! hang, are told exactly when the lock was held, and can repair the data.

use shmsync::inspect::LockState;
use shmsync::{
    shm_struct, ArrayError, DataError, Lock, LockError, Process, Shared, TryLockError, Value,
};
use shmsync_tests::{join, until, XorShift};
use std::time::{Duration, Instant};

shm_struct! {
    /// `a` and `b` move together under the lock; a death between the two leaves them
    /// apart, which the next holder must repair.
    struct Ledger { lock: Lock, a: Value<u64>, b: Value<u64>, rounds: Value<u64> }
}

impl Ledger {
    fn new() -> Ledger {
        Ledger {
            lock: Lock::new(),
            a: Value::new(0),
            b: Value::new(0),
            rounds: Value::new(0),
        }
    }

    /// One locked round: the invariant `a == b` is broken in between.
    fn round(&self, work: u32) {
        let guard = self
            .lock
            .lock()
            .expect("only the child locks while it lives");
        self.update(guard, work);
    }

    /// Moves `a` and `b` on together under `guard`, `work` spins apart, and counts the
    /// round once the lock is released.
    fn update(&self, guard: shmsync::LockGuard<'_>, work: u32) {
        self.a.fetch_add(1);
        for _ in 0..work {
            std::hint::spin_loop();
        }
        self.b.fetch_add(1);
        drop(guard);
        self.rounds.fetch_add(1);
    }
}

#[test]
fn sigkill_fault_suite() {
    const TRIALS: u32 = 200;
    let mut random = XorShift(0x5eed_1234_abcd_0001);
    let (mut held_at_death, mut recoveries) = (0, 0);
    let mut slowest = Duration::ZERO;
    for trial in 0..TRIALS {
        let ledger = Shared::anonymous(Ledger::new()).unwrap();
        let work = random.below(2_000) as u32;
        let mut child = Process::spawn(|| loop {
            ledger.round(work);
        })
        .unwrap();
        // It loops for ever: killed, not waited for, if the test fails first.
        child.set_daemon(true);
        until(|| ledger.rounds.get() > 0, "the child's first round");
        std::thread::sleep(Duration::from_micros(random.below(500)));
        child.kill().unwrap();
        assert!(join(child).signal().is_some());

        let died = Instant::now();
        // The kernel marks the lock at the death: no longer held, its holder died.
        let held = ledger.lock.holder_died();
        assert!(!ledger.lock.is_locked(), "trial {trial}: held by the dead");
        held_at_death += u32::from(held);
        match ledger.lock.lock_timeout(Duration::from_secs(10)) {
            Ok(_guard) => assert!(!held, "trial {trial}: held at death, yet no owner-died"),
            Err(TryLockError::OwnerDied(guard)) => {
                assert!(held, "trial {trial}: owner-died for a lock that was free");
                slowest = slowest.max(died.elapsed());
                ledger.b.set(ledger.a.get()); // the repair
                guard.mark_consistent();
                recoveries += 1;
            }
            Err(error) => panic!("trial {trial}: {error}"),
        }
        assert_eq!(
            ledger.a.get(),
            ledger.b.get(),
            "trial {trial}: invariant broken"
        );
        assert!(
            ledger.lock.try_lock().is_ok(),
            "trial {trial}: lock not usable after"
        );
    }
    eprintln!(
        "{TRIALS} trials: {held_at_death} kills while the lock was held, {recoveries} \
         recoveries, slowest detection {slowest:?}"
    );
    assert_eq!(recoveries, held_at_death);
    assert!(
        held_at_death > 0,
        "no kill landed inside the lock: the suite tested nothing"
    );
}

#[test]
fn a_thread_that_exits_holding_the_lock_is_detected() {
    let lock = Lock::new();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(lock.lock().unwrap()));
    });
    match lock.lock() {
        Err(LockError::OwnerDied(guard)) => guard.mark_consistent(),
        other => panic!("{other:?}"),
    }
    assert!(!lock.is_locked());
    assert!(lock.lock().is_ok());
}

#[test]
fn unrepaired_data_is_refused_to_every_later_locker() {
    let ledger = Shared::anonymous(Ledger::new()).unwrap();
    let dying = Process::spawn(|| std::mem::forget(ledger.lock.lock().unwrap())).unwrap();
    assert!(join(dying).success());
    assert!(!ledger.lock.is_locked(), "held by the dead"); // so the lock cannot block
    match ledger.lock.lock() {
        Err(LockError::OwnerDied(guard)) => drop(guard), // no repair
        other => panic!("{other:?}"),
    }
    let later = Process::spawn(|| {
        let refused = matches!(ledger.lock.lock(), Err(LockError::NotRecoverable))
            && matches!(ledger.lock.try_lock(), Err(TryLockError::NotRecoverable));
        std::process::exit(if refused { 0 } else { 1 });
    })
    .unwrap();
    assert!(join(later).success(), "a later process was not refused");
    assert!(matches!(
        ledger.lock.acquire(),
        Err(LockError::NotRecoverable)
    ));
    assert!(ledger.lock.release().is_err());
}

#[test]
fn python_style_acquire_reports_owner_death_too() {
    let lock = Shared::anonymous(Lock::new()).unwrap();
    let dying = Process::spawn(|| lock.acquire().unwrap()).unwrap();
    assert!(join(dying).success()); // exited without release
    assert!(!lock.is_locked(), "held by the dead"); // so the acquire cannot block
    assert_eq!(lock.acquire(), Err(LockError::OwnerDied(())));
    lock.mark_consistent().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.acquire_timeout(Duration::from_secs(1)), Ok(()));
    lock.release().unwrap();
}

#[test]
fn arrays_report_a_dead_writer_to_their_lockers_and_one_call_operations_never_repair() {
    use shmsync::Array;
    let array = Shared::anonymous(Array::<u32, 4>::zeroed()).unwrap();
    let writer = Process::spawn(|| {
        let mut items = array.lock().unwrap();
        items.write(0, &[1, 1]).unwrap();
        std::mem::forget(items); // dies before writing the other half
    })
    .unwrap();
    assert!(join(writer).success());
    match array.lock() {
        Err(LockError::OwnerDied(mut items)) => {
            assert_eq!(items.snapshot(), [1, 1, 0, 0]);
            items.write(0, &[0, 0]).unwrap(); // roll back
            items.mark_consistent();
        }
        other => panic!("{other:?}"),
    }
    let writer = Process::spawn(|| {
        let mut items = array.lock().unwrap();
        items.write(0, &[2, 2]).unwrap();
        std::mem::forget(items); // dies half-way again
    })
    .unwrap();
    assert!(join(writer).success());
    // One-call operations do nothing and pass the news on, however often they are asked.
    for _ in 0..2 {
        assert_eq!(
            array.write(0, &[7; 4]),
            Err(ArrayError::Data(DataError::OwnerDied))
        );
        assert_eq!(array.snapshot(), Err(DataError::OwnerDied));
    }
    match array.lock() {
        Err(LockError::OwnerDied(items)) => {
            assert_eq!(items.snapshot(), [2, 2, 0, 0]);
            items.mark_consistent();
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(array.snapshot(), Ok([2, 2, 0, 0]));
}

/// How soon a locker asleep on the lock learns that its holder was killed: the time
/// from the kill to its `OwnerDied`, printed (a measurement, not an assertion).
#[test]
fn a_sleeping_locker_learns_of_a_kill_at_once() {
    const TRIALS: usize = 50;
    let mut latencies = Vec::with_capacity(TRIALS);
    for trial in 0..TRIALS {
        let ledger = Shared::anonymous(Ledger::new()).unwrap();
        let mut child = Process::spawn(|| {
            let _held = ledger.lock.lock().unwrap();
            ledger.rounds.set(1);
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap();
        child.set_daemon(true);
        until(|| ledger.rounds.get() > 0, "the child to take the lock");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let outcome = ledger.lock.lock_timeout(Duration::from_secs(30));
                let woke = Instant::now();
                match outcome {
                    Err(TryLockError::OwnerDied(guard)) => guard.mark_consistent(),
                    other => panic!("trial {trial}: {other:?}"),
                }
                woke
            });
            // Let the waiter fall asleep on the word first.
            std::thread::sleep(Duration::from_millis(5));
            let killed_at = Instant::now();
            child.kill().unwrap();
            let woke = waiter.join().unwrap();
            latencies.push(woke.saturating_duration_since(killed_at));
        });
        assert!(join(child).signal().is_some());
    }
    latencies.sort();
    eprintln!(
        "{TRIALS} kills of a holder with a locker asleep: detection median {:?}, 90th percentile {:?}, max {:?}",
        latencies[TRIALS / 2],
        latencies[TRIALS * 9 / 10],
        latencies[TRIALS - 1]
    );
}

shm_struct! {
    /// What contending processes share: the ledger, and what they report.
    struct Contended {
        ledger: Ledger,
        /// Entries that found `a != b` though the lock said nobody had died in it.
        torn: Value<u64>,
        /// Repairs after an `OwnerDied`.
        repairs: Value<u64>,
    }
}

/// Takes the ledger's lock as a contending worker does: a death is repaired, a torn
/// ledger under a clean lock is counted (two holders at once).
fn contended_round(shared: &Contended, work: u32) {
    let ledger = &shared.ledger;
    let guard = match ledger.lock.lock() {
        Ok(guard) => {
            if ledger.a.get() != ledger.b.get() {
                shared.torn.fetch_add(1);
            }
            guard
        }
        Err(LockError::OwnerDied(guard)) => {
            ledger.b.set(ledger.a.get());
            guard.mark_consistent();
            shared.repairs.fetch_add(1);
            guard
        }
        Err(LockError::NotRecoverable) => panic!("a repaired lock became not recoverable"),
    };
    ledger.update(guard, work);
}

#[test]
fn contending_processes_killed_at_random_never_share_nor_strand_the_lock() {
    // Four processes take the lock in turn, so that its releases hand it to sleeping
    // lockers now and then; one of them is killed every few milliseconds (a holder, a
    // locker just woken for a hand-off, a releaser between its release and its
    // wake-up) and replaced. The others go on, one at a time.
    const KILLS: u64 = 150;
    const WORKERS: usize = 4;
    // Zero is every part's plain value: a free lock, counts at 0.
    let shared = Shared::<Contended>::anonymous_with(|_| {}).unwrap();
    let mut random = XorShift(0x5eed_fa1e_0000_0001);
    let spawn = |work: u32| {
        let shared = &*shared;
        let mut worker = Process::spawn(move || loop {
            contended_round(shared, work);
        })
        .unwrap();
        worker.set_daemon(true);
        worker
    };
    let mut workers: Vec<Process> = (0..WORKERS as u32).map(|i| spawn(i * 300)).collect();
    let mut handed_over_seen = 0;
    for _ in 0..KILLS {
        // Progress since the last kill: nobody is stranded.
        let before = shared.ledger.rounds.get();
        shmsync_tests::faults::wait_for_rounds(&shared.ledger.rounds, before + 20);
        // A moment before the next kill, watching for hand-offs meanwhile.
        let moment = Duration::from_micros(random.below(3_000));
        let began = Instant::now();
        while began.elapsed() < moment {
            handed_over_seen += u32::from(shared.ledger.lock.state() == LockState::HandedOver);
        }
        let victim = random.below(WORKERS as u64) as usize;
        let replacement = spawn(random.below(1_000) as u32);
        let killed = std::mem::replace(&mut workers[victim], replacement);
        killed.kill().unwrap();
        assert!(join(killed).signal().is_some());
    }
    // A watcher kept off the CPUs (by a loaded machine) can miss every short window in
    // which the lock is handed over above: it watches on, the workers still going,
    // until it sees one.
    let began = Instant::now();
    while handed_over_seen == 0 && began.elapsed() < shmsync_tests::HANG {
        handed_over_seen += u32::from(shared.ledger.lock.state() == LockState::HandedOver);
    }
    for worker in workers {
        worker.kill().unwrap();
        let _ = join(worker);
    }
    let ledger = &shared.ledger;
    match ledger.lock.lock_timeout(Duration::from_secs(10)) {
        Ok(_guard) => assert_eq!(ledger.a.get(), ledger.b.get()),
        Err(TryLockError::OwnerDied(guard)) => guard.mark_consistent(),
        Err(error) => panic!("the lock after every worker died: {error}"),
    }
    eprintln!(
        "{KILLS} kills of contending processes: {} rounds, {} repairs, the lock seen \
         handed over {handed_over_seen} times",
        ledger.rounds.get(),
        shared.repairs.get()
    );
    assert_eq!(shared.torn.get(), 0, "two processes held the lock at once");
    assert!(shared.repairs.get() > 0, "no kill landed inside the lock");
    assert!(handed_over_seen > 0, "no release handed the lock over");
}
