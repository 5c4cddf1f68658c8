//! How a waiter spins before it sleeps, and how the spin gives way on a crowded machine:
//! with more runnable threads than CPUs, a spin can only take the time its partner
//! needs, so a waiter then sleeps at once.
//!
//! The backend here keeps a clock that moves 100 ns at each look, counts what the
//! waiter does, and stands in for the partner: its `wait` gives the waiter what it
//! sleeps for.
#![cfg(not(loom))]

#[allow(dead_code)] // the yielding backend, which these tests do not use
mod common;

use common::within_hang;
use shmsync_core::{AtomicU32, Lock, Ordering, Semaphore, Unowned, Wait};
use std::cell::Cell;

#[derive(Default, Clone, Copy, Debug, PartialEq)]
struct Seen {
    yields: u32,
    sleeps: u32,
    clock_looks: u32,
}

thread_local! {
    static SEEN: Cell<Seen> = Cell::new(Seen::default());
    static CLOCK: Cell<u64> = const { Cell::new(0) };
    /// What the backend answers to `crowded()`.
    static CROWDED: Cell<bool> = const { Cell::new(false) };
    /// What the backend's `yield_now` answers: whether the CPU went to another thread.
    static YIELD_GIVES_CPU_AWAY: Cell<bool> = const { Cell::new(false) };
    /// What the partner does to the word while the waiter sleeps.
    static ANSWER: Cell<fn(&AtomicU32)> = const { Cell::new(release_a_permit) };
}

fn release_a_permit(permits: &AtomicU32) {
    permits.fetch_add(1, Ordering::Release);
}

/// The lock the locker test takes; a locker sleeps on its bell, not on its word, so the
/// partner releases it by name.
static LOCK: Lock<Scripted, Unowned> = Lock::new();

fn release_the_lock(_bell: &AtomicU32) {
    LOCK.release().unwrap();
}

fn count(what: impl FnOnce(&mut Seen)) {
    SEEN.with(|seen| {
        let mut now = seen.get();
        what(&mut now);
        seen.set(now);
    });
}

struct Scripted;

impl Wait for Scripted {
    const NAME: &'static str = "Scripted";
    const SPIN_NS: u64 = 10_000;

    fn now() -> u64 {
        count(|seen| seen.clock_looks += 1);
        CLOCK.with(|clock| {
            clock.set(clock.get() + 100);
            clock.get()
        })
    }

    /// The partner answers while the waiter sleeps.
    fn wait(word: &AtomicU32, expected: u32, _: Option<u64>) {
        count(|seen| seen.sleeps += 1);
        if word.load(Ordering::Relaxed) == expected {
            ANSWER.with(Cell::get)(word);
        }
    }

    fn wake_one(_: &AtomicU32) {}
    fn wake_all(_: &AtomicU32) {}

    fn yield_now() -> bool {
        count(|seen| seen.yields += 1);
        YIELD_GIVES_CPU_AWAY.with(Cell::get)
    }

    fn crowded() -> bool {
        CROWDED.with(Cell::get)
    }
}

/// Acquires a semaphore that has no permit, on a machine that is `crowded` and where a
/// yield `gives_cpu_away`; returns what the waiter did.
fn acquire_empty(crowded: bool, gives_cpu_away: bool) -> Seen {
    script(crowded, gives_cpu_away, release_a_permit);
    let semaphore: Semaphore<Scripted> = Semaphore::new(0);
    semaphore.acquire();
    SEEN.with(Cell::get)
}

fn script(crowded: bool, gives_cpu_away: bool, answer: fn(&AtomicU32)) {
    CROWDED.with(|c| c.set(crowded));
    YIELD_GIVES_CPU_AWAY.with(|y| y.set(gives_cpu_away));
    ANSWER.with(|a| a.set(answer));
    SEEN.with(|seen| seen.set(Seen::default()));
}

#[test]
fn with_cpus_to_spare_a_waiter_spins_its_whole_budget_offering_the_cpu_as_it_goes() {
    within_hang(|| {
        let seen = acquire_empty(false, false);
        // The clock passed the 10 µs budget (100 ns a look), with a yield every sixteenth
        // of it or so, then the sleep.
        assert!(seen.clock_looks >= 100, "{seen:?}");
        assert!(seen.yields >= 8, "{seen:?}");
        assert_eq!(seen.sleeps, 1, "{seen:?}");
    });
}

#[test]
fn a_yield_that_gave_the_cpu_away_ends_the_spin() {
    within_hang(|| {
        let seen = acquire_empty(false, true);
        assert_eq!(seen.yields, 1, "{seen:?}");
        assert_eq!(seen.sleeps, 1, "{seen:?}");
    });
}

#[test]
fn on_a_crowded_machine_a_waiter_offers_its_cpu_once_then_sleeps() {
    within_hang(|| {
        let seen = acquire_empty(true, true);
        assert_eq!(
            seen,
            Seen {
                yields: 1,
                sleeps: 1,
                clock_looks: 0
            }
        );
    });
}

#[test]
fn on_a_crowded_machine_a_locker_still_spins_for_the_release() {
    within_hang(|| {
        script(true, true, release_the_lock);
        LOCK.acquire().unwrap(); // held by "another thread": any thread may release it
        let guard = LOCK.lock().unwrap();
        let seen = SEEN.with(Cell::get);
        // The whole budget, offering the CPU every sixteenth of it, before the sleep in
        // which the holder lets go.
        assert!(seen.clock_looks >= 100, "{seen:?}");
        assert!(seen.yields >= 8, "{seen:?}");
        assert_eq!(seen.sleeps, 1, "{seen:?}");
        drop(guard);
    });
}

#[test]
fn a_waiter_that_need_not_wait_neither_spins_nor_reads_the_clock() {
    script(false, false, release_a_permit);
    let semaphore: Semaphore<Scripted> = Semaphore::new(1);
    semaphore.acquire();
    assert_eq!(SEEN.with(Cell::get), Seen::default());
}
