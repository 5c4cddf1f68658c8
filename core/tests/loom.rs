//! Model checks of every primitive's algorithm, over a model of the futex.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p shmsync-core --test loom --release`.
//! Each model explores the interleavings of 2 or 3 threads (preemptions bounded so a run
//! finishes in minutes); a lost wakeup shows up as a deadlock, a broken exclusion as a
//! data race or a failed assertion.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use shmsync_core::{
    Array, AtomicU32, BoundedSemaphore, Event, Lock, LockError, Ordering, Semaphore, Value, Wait,
};
use std::time::Duration;

/// A futex: waiting checks the word and queues in one step (under the table's mutex,
/// as the kernel does under its hash-bucket lock); a wake marks queued waiters.
/// A timed wait queues, lets the world run once, then leaves: woken or timed out,
/// whichever the schedule made it.
struct Futex;

#[derive(Default)]
struct Table {
    next_id: u64,
    /// (id, word address, woken)
    queued: Vec<(u64, usize, bool)>,
}

loom::lazy_static! {
    static ref TABLE: (Mutex<Table>, Condvar) = (Mutex::new(Table::default()), Condvar::new());
    static ref CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    /// Owner ids of the threads that "died".
    static ref DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
}

loom::thread_local! {
    /// The owner id a thread records in locks (0: none).
    static OWNER: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

/// Gives the calling thread the owner id `id`.
fn call_me(id: u32) {
    OWNER.with(|owner| owner.set(id));
}

/// The calling thread "dies": its id counts as dead from now on. (The thread itself
/// returns; what matters is that it never releases what it holds.)
fn die() {
    DEAD.lock().unwrap().push(OWNER.with(|owner| owner.get()));
}

fn address(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

impl Wait for Futex {
    /// Time moves one tick each time anyone looks at the clock, so that every timed
    /// wait ends.
    fn now() -> u64 {
        CLOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        let (mutex, condvar) = &*TABLE;
        let mut table = mutex.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.queued.push((id, address(word), false));
        if deadline.is_some() {
            drop(table);
            // Time passes: others run (a loop of timed waits must not starve them).
            thread::yield_now();
            table = mutex.lock().unwrap();
        } else {
            while !table.queued.iter().any(|&(i, _, woken)| i == id && woken) {
                table = condvar.wait(table).unwrap();
            }
        }
        table.queued.retain(|&(i, _, _)| i != id);
    }

    fn wake_one(word: &AtomicU32) {
        let (mutex, condvar) = &*TABLE;
        let mut table = mutex.lock().unwrap();
        if let Some(entry) = table
            .queued
            .iter_mut()
            .find(|e| e.1 == address(word) && !e.2)
        {
            entry.2 = true;
        }
        condvar.notify_all();
    }

    fn wake_all(word: &AtomicU32) {
        let (mutex, condvar) = &*TABLE;
        let mut table = mutex.lock().unwrap();
        for entry in table.queued.iter_mut().filter(|e| e.1 == address(word)) {
            entry.2 = true;
        }
        condvar.notify_all();
    }

    fn owner_id() -> u32 {
        OWNER.with(|owner| owner.get())
    }

    fn owner_incarnation(owner: u32) -> Option<u64> {
        (!DEAD.lock().unwrap().contains(&owner)).then_some(0)
    }
}

/// How many threads are asleep in the futex model.
fn sleepers() -> usize {
    TABLE.0.lock().unwrap().queued.len()
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// For models where a waiter watches a live owner in timed slices: each slice is a
/// few branches, so they need a larger branch budget and fewer preemptions.
fn model_with_slices(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.max_branches = 20_000;
    builder.check(f);
}

const TINY: Duration = Duration::from_nanos(2);

#[test]
fn lock_excludes_and_loses_no_wakeup() {
    model(|| {
        let lock = Arc::new(Lock::<Futex>::new());
        let data = Arc::new(UnsafeCell::new(0u32));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, data) = (lock.clone(), data.clone());
                thread::spawn(move || {
                    let _guard = lock.lock().unwrap();
                    // A plain read-modify-write: loom reports a race if two threads
                    // are ever inside at once.
                    data.with_mut(|p| unsafe { *p += 1 });
                })
            })
            .collect();
        {
            let _guard = lock.lock().unwrap();
            data.with_mut(|p| unsafe { *p += 1 });
        }
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(data.with(|p| unsafe { *p }), 3);
        assert!(!lock.is_locked());
    });
}

#[test]
fn lock_timeout_leaves_no_waiter_stranded() {
    model(|| {
        let lock = Arc::new(Lock::<Futex>::new());
        let guard = lock.lock().unwrap();
        let timed = {
            let lock = lock.clone();
            thread::spawn(move || lock.lock_timeout(TINY).is_ok())
        };
        let blocking = {
            let lock = lock.clone();
            thread::spawn(move || drop(lock.lock().unwrap()))
        };
        drop(guard);
        timed.join().unwrap();
        blocking.join().unwrap(); // a lost wakeup would deadlock here
        assert!(!lock.is_locked());
    });
}

#[test]
fn lock_release_of_unheld_changes_nothing() {
    model(|| {
        let lock = Arc::new(Lock::<Futex>::new());
        lock.acquire().unwrap();
        let other = {
            let lock = lock.clone();
            thread::spawn(move || lock.release())
        };
        let mine = lock.release();
        let theirs = other.join().unwrap();
        // Exactly one of two releases of a once-acquired lock succeeds.
        assert!(mine.is_ok() != theirs.is_ok());
        assert!(!lock.is_locked());
    });
}

#[test]
fn semaphore_never_admits_too_many_nor_loses_a_permit() {
    model(|| {
        let sem = Arc::new(Semaphore::<Futex>::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    sem.acquire();
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders of one permit"
                    );
                    inside.fetch_sub(1, Ordering::SeqCst);
                    sem.release();
                })
            })
            .collect();
        sem.acquire();
        assert_eq!(
            inside.fetch_add(1, Ordering::SeqCst),
            0,
            "two holders of one permit"
        );
        inside.fetch_sub(1, Ordering::SeqCst);
        sem.release();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(sem.value(), 1);
    });
}

#[test]
fn semaphore_timeout_passes_on_the_permit() {
    model(|| {
        let sem = Arc::new(Semaphore::<Futex>::new(0));
        let timed = {
            let sem = sem.clone();
            thread::spawn(move || {
                if sem.acquire_timeout(TINY) {
                    sem.release();
                }
            })
        };
        let blocking = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire())
        };
        sem.release();
        timed.join().unwrap();
        blocking.join().unwrap(); // a permit stranded by the timed waiter would deadlock
        assert_eq!(sem.value(), 0);
    });
}

#[test]
fn bounded_semaphore_over_release_is_refused_atomically() {
    model(|| {
        let sem = Arc::new(BoundedSemaphore::<Futex>::new(1));
        sem.acquire();
        let other = {
            let sem = sem.clone();
            thread::spawn(move || sem.release())
        };
        let mine = sem.release();
        let theirs = other.join().unwrap();
        assert!(mine.is_ok() != theirs.is_ok());
        assert_eq!(sem.value(), 1);
    });
}

#[test]
fn event_start_gun_releases_every_waiter() {
    model(|| {
        let event = Arc::new(Event::<Futex>::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || event.wait())
            })
            .collect();
        event.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(event.is_set());
    });
}

#[test]
fn event_set_then_clear_still_wakes_a_sleeping_waiter() {
    model(|| {
        let event = Arc::new(Event::<Futex>::new());
        let waiter = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        while sleepers() == 0 {
            thread::yield_now();
        }
        event.set();
        event.clear(); // the ABA a plain flag would lose
        waiter.join().unwrap();
        assert!(!event.is_set());
    });
}

#[test]
fn event_timed_wait_sees_a_set_that_stays() {
    model(|| {
        let event = Arc::new(Event::<Futex>::new());
        let timed = {
            let event = event.clone();
            thread::spawn(move || event.wait_timeout(TINY))
        };
        let blocking = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        event.set();
        let saw = timed.join().unwrap();
        blocking.join().unwrap();
        // It may time out before the set; once it says "set", it was.
        assert!(!saw || event.is_set());
    });
}

#[test]
fn value_update_loses_nothing() {
    model(|| {
        let value = Arc::new(Value::<u32, Futex>::new(0));
        let updaters: Vec<_> = (0..2)
            .map(|_| {
                let value = value.clone();
                thread::spawn(move || {
                    value.update(|v| v + 1);
                })
            })
            .collect();
        value.fetch_add(10); // a lock-free writer racing the locked ones
        for u in updaters {
            u.join().unwrap();
        }
        assert_eq!(value.get(), 12);
    });
}

#[test]
fn array_snapshot_is_never_torn() {
    model(|| {
        let array = Arc::new(Array::<u16, 2, Futex>::zeroed());
        let writer = {
            let array = array.clone();
            thread::spawn(move || {
                array.write(0, &[1, 1]).unwrap();
                array.write(0, &[2, 2]).unwrap();
            })
        };
        let [a, b] = array.snapshot();
        assert_eq!(a, b, "a snapshot saw half of a write");
        writer.join().unwrap();
        assert_eq!(array.snapshot(), [2, 2]);
    });
}

/// A thread (owner id 2) takes `lock` and dies holding it.
fn die_holding(lock: &Arc<Lock<Futex>>) {
    let lock = lock.clone();
    thread::spawn(move || {
        call_me(2);
        std::mem::forget(lock.lock().unwrap());
        die();
    })
    .join()
    .unwrap();
}

#[test]
fn a_dead_owner_is_detected_by_exactly_one_locker() {
    model_with_slices(|| {
        let lock = Arc::new(Lock::<Futex>::new());
        let told = Arc::new(AtomicUsize::new(0));
        die_holding(&lock);
        let lock_and_repair = |lock: &Lock<Futex>, told: &AtomicUsize| match lock.lock() {
            Ok(_guard) => {}
            Err(LockError::OwnerDied(guard)) => {
                told.fetch_add(1, Ordering::SeqCst);
                guard.mark_consistent();
            }
            Err(error) => panic!("{error}"),
        };
        let other = {
            let (lock, told) = (lock.clone(), told.clone());
            thread::spawn(move || {
                call_me(3);
                lock_and_repair(&lock, &told);
            })
        };
        call_me(1);
        lock_and_repair(&lock, &told);
        other.join().unwrap();
        // The first of the two to take it is told, and repairs; the second gets it
        // cleanly from the first.
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert!(!lock.is_locked());
    });
}

#[test]
fn an_unrepaired_lock_is_not_recoverable() {
    model(|| {
        let lock = Arc::new(Lock::<Futex>::new());
        die_holding(&lock);
        let waiter = {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(3);
                lock.lock().err().map(|e| e.map(drop))
            })
        };
        call_me(1);
        let mine = lock.lock().err().map(|e| e.map(drop));
        // Whoever came first was told the owner died and dropped the guard unrepaired
        // (the `map(drop)` above); whoever came second finds it not recoverable.
        let theirs = waiter.join().unwrap();
        let mut outcomes = [mine, theirs];
        outcomes.sort_by_key(|e| matches!(e, Some(LockError::NotRecoverable)));
        assert_eq!(
            outcomes,
            [
                Some(LockError::OwnerDied(())),
                Some(LockError::NotRecoverable)
            ]
        );
        assert_eq!(
            lock.try_lock().err().map(|e| e.map(|_| ())),
            Some(LockError::NotRecoverable)
        );
    });
}
