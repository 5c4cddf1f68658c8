//! Model checks of the `Cores` backend, over a model of the sleep instruction.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p shmsync-core --test loom_cores --release`.
//!
//! Each loom thread is a core, or an interrupt handler on a core. Every core has an event
//! latch, as the `Doorbell` contract says (Arm's event register; on RISC-V, a hart's
//! pending software interrupt): a ring sets every latch and wakes the sleepers; a sleep
//! blocks until its core's latch is set, then clears it. The clear is a step of its own,
//! as on RISC-V, where a hart clears its `msip` after `wfi` returns: another ring may
//! land in between and be cleared with it. (On Arm, `wfe` clears the register as it
//! wakes: one of the interleavings modelled.) The latch's mutex orders memory as the
//! doorbell's barrier does on hardware (`dsb` before `sev`, `fence` before the
//! interrupt).
//!
//! A lost wake-up shows up as a deadlock. Two broken doorbells show that the models
//! catch one: a sleep without a latch (`wfi` waiting only for what comes after it), and
//! a ring that does not set its own core's latch (an interrupt handler's wake-up of the
//! task it interrupted is lost).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use shmsync_core::{Clock, Cores, Doorbell, Event, NoClock, Ordering, Semaphore, Unowned};
use std::cell::Cell;
use std::time::Duration;

/// Cores plus interrupt handlers: more than any model runs.
const CORES: usize = 4;

struct Latches {
    set: [bool; CORES],
    /// How many rings there have been, for the doorbell without a latch.
    rings: u64,
}

loom::lazy_static! {
    static ref LATCHES: (Mutex<Latches>, Condvar) =
        (Mutex::new(Latches { set: [false; CORES], rings: 0 }), Condvar::new());
    static ref CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
}

loom::thread_local! {
    static CORE: Cell<usize> = Cell::new(0);
}

/// Runs the calling thread on core `n` (the main thread is core 0).
fn on_core(n: usize) {
    CORE.with(|core| core.set(n));
}

fn this_core() -> usize {
    CORE.with(|core| core.get())
}

/// Sleeps until this core's latch is set, then clears it in a step of its own.
fn sleep_on_latch() {
    let (mutex, condvar) = &*LATCHES;
    let me = this_core();
    let mut latches = mutex.lock().unwrap();
    while !latches.set[me] {
        latches = condvar.wait(latches).unwrap();
    }
    drop(latches);
    mutex.lock().unwrap().set[me] = false;
}

/// The doorbell as the contract has it.
struct EventRegister;

impl Doorbell for EventRegister {
    const NAME: &'static str = "EventRegister";

    fn ring() {
        let (mutex, condvar) = &*LATCHES;
        mutex.lock().unwrap().set = [true; CORES];
        condvar.notify_all();
    }

    fn sleep() {
        sleep_on_latch();
    }
}

/// Broken: the sleep waits for a ring that comes after it, as a bare `wfi` does for
/// interrupts. A ring between the waiter's look at the word and its sleep is lost.
struct NoLatch;

impl Doorbell for NoLatch {
    const NAME: &'static str = "NoLatch";

    fn ring() {
        let (mutex, condvar) = &*LATCHES;
        mutex.lock().unwrap().rings += 1;
        condvar.notify_all();
    }

    fn sleep() {
        let (mutex, condvar) = &*LATCHES;
        let mut latches = mutex.lock().unwrap();
        let seen = latches.rings;
        while latches.rings == seen {
            latches = condvar.wait(latches).unwrap();
        }
    }
}

/// Broken: the ring sets the other cores' latches only (an inter-processor interrupt
/// sent to the others). An interrupt handler that rings between its task's look and its
/// sleep does not wake that task.
struct OthersOnly;

impl Doorbell for OthersOnly {
    const NAME: &'static str = "OthersOnly";

    fn ring() {
        let (mutex, condvar) = &*LATCHES;
        let me = this_core();
        let mut latches = mutex.lock().unwrap();
        for (core, latch) in latches.set.iter_mut().enumerate() {
            *latch |= core != me;
        }
        drop(latches);
        condvar.notify_all();
    }

    fn sleep() {
        sleep_on_latch();
    }
}

/// Time moves one tick each time anyone looks at the clock, so that every timed wait
/// ends.
struct Ticks;

impl Clock for Ticks {
    fn now_ns() -> u64 {
        CLOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }
}

type Chip = Cores<EventRegister, NoClock>;
type Lock = shmsync_core::Lock<Chip, Unowned>;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Checks that the models catch a broken doorbell: runs `broken` in a child process
/// (this test binary, running only `test`), because loom aborts the process when it
/// finds a deadlock, and expects loom's deadlock report.
fn must_deadlock(test: &str, broken: fn()) {
    const CHILD: &str = "SHMSYNC_LOOM_BROKEN_DOORBELL";
    if std::env::var_os(CHILD).is_some() {
        broken();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && report.contains("deadlock; threads"),
        "the broken doorbell was not caught:\n{report}"
    );
}

#[test]
fn cores_lock_excludes_and_loses_no_wakeup() {
    model(|| {
        let lock = Arc::new(Lock::new());
        let data = Arc::new(UnsafeCell::new(0u32));
        let others: Vec<_> = (1..3)
            .map(|core| {
                let (lock, data) = (lock.clone(), data.clone());
                thread::spawn(move || {
                    on_core(core);
                    let _guard = lock.lock().unwrap();
                    // A plain read-modify-write: loom reports a race if two cores are
                    // ever inside at once.
                    data.with_mut(|p| unsafe { *p += 1 });
                })
            })
            .collect();
        {
            let _guard = lock.lock().unwrap();
            data.with_mut(|p| unsafe { *p += 1 });
        }
        for core in others {
            core.join().unwrap();
        }
        assert_eq!(data.with(|p| unsafe { *p }), 3);
        assert!(!lock.is_locked());
    });
}

/// One core hands items to another through a semaphore; the consumer sleeps whenever
/// it runs ahead.
fn hand_off<D: Doorbell + 'static>() {
    model(|| {
        let items = Arc::new(Semaphore::<Cores<D, NoClock>>::new(0));
        let consumer = {
            let items = items.clone();
            thread::spawn(move || {
                on_core(1);
                items.acquire();
                items.acquire();
            })
        };
        items.release();
        items.release();
        consumer.join().unwrap();
        assert_eq!(items.value(), 0);
    });
}

#[test]
fn cores_semaphore_hands_off_across_cores() {
    hand_off::<EventRegister>();
}

#[test]
fn a_sleep_without_a_latch_loses_a_wake_up() {
    must_deadlock(
        "a_sleep_without_a_latch_loses_a_wake_up",
        hand_off::<NoLatch>,
    );
}

#[test]
fn cores_event_start_gun_releases_every_core() {
    model(|| {
        let start = Arc::new(Event::<Chip>::new());
        let others: Vec<_> = (1..3)
            .map(|core| {
                let start = start.clone();
                thread::spawn(move || {
                    on_core(core);
                    start.wait();
                })
            })
            .collect();
        start.set();
        for core in others {
            core.join().unwrap();
        }
    });
}

/// A task on core 1 waits for work that an interrupt handler on core 1 hands it (and
/// for an event the handler sets), while core 0 also hands it work. The handler may
/// run between any two steps of the task: between its look at the word and its sleep
/// too.
fn interrupt_hands_off<D: Doorbell + 'static>() {
    model(|| {
        let work = Arc::new(Semaphore::<Cores<D, NoClock>>::new(0));
        let task = {
            let work = work.clone();
            thread::spawn(move || {
                on_core(1);
                work.acquire();
                work.acquire();
            })
        };
        let handler = {
            let work = work.clone();
            thread::spawn(move || {
                on_core(1);
                work.release(); // never waits: safe in an interrupt handler
            })
        };
        work.release();
        handler.join().unwrap();
        task.join().unwrap();
        assert_eq!(work.value(), 0);
    });
}

#[test]
fn cores_interrupt_handler_wakes_the_task_it_interrupted() {
    interrupt_hands_off::<EventRegister>();
}

#[test]
fn cores_interrupt_handler_sets_the_event_its_task_waits_for() {
    interrupt_sets::<EventRegister>();
}

#[test]
fn a_ring_that_skips_its_own_core_loses_an_interrupt_handlers_wake_up() {
    must_deadlock(
        "a_ring_that_skips_its_own_core_loses_an_interrupt_handlers_wake_up",
        interrupt_sets::<OthersOnly>,
    );
}

/// An interrupt handler on core 1 sets the event its task on core 1 waits for.
fn interrupt_sets<D: Doorbell + 'static>() {
    model(|| {
        let ready = Arc::new(Event::<Cores<D, NoClock>>::new());
        let task = {
            let ready = ready.clone();
            thread::spawn(move || {
                on_core(1);
                ready.wait();
            })
        };
        on_core(1); // this thread is the task's interrupt handler
        ready.set();
        task.join().unwrap();
    });
}

#[test]
fn cores_timed_locker_polls_and_strands_no_sleeper() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.max_branches = 20_000;
    builder.check(|| {
        type Lock = shmsync_core::Lock<Cores<EventRegister, Ticks>, Unowned>;
        let lock = Arc::new(Lock::new());
        let guard = lock.lock().unwrap();
        let timed = {
            let lock = lock.clone();
            thread::spawn(move || {
                on_core(1);
                lock.lock_timeout(Duration::from_nanos(2)).is_ok()
            })
        };
        let sleeping = {
            let lock = lock.clone();
            thread::spawn(move || {
                on_core(2);
                drop(lock.lock().unwrap());
            })
        };
        drop(guard);
        timed.join().unwrap();
        sleeping.join().unwrap(); // a sleeper stranded by the timed locker would deadlock
        assert!(!lock.is_locked());
    });
}

#[test]
fn cores_many_rings_one_sleep_still_sees_the_last_change() {
    // Two producers on two cores ring while the consumer wakes and clears its latch:
    // a ring cleared with an earlier one must still be seen through the word.
    model(|| {
        let items = Arc::new(Semaphore::<Chip>::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (1..3)
            .map(|core| {
                let items = items.clone();
                thread::spawn(move || {
                    on_core(core);
                    items.release();
                })
            })
            .collect();
        for _ in 0..2 {
            items.acquire();
            seen.fetch_add(1, Ordering::SeqCst);
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    });
}
