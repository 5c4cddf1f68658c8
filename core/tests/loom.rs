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
    AtomicU32, BoundedSemaphore, Event, LockError, Ordering, Owner, Semaphore, Timed, TryLockError,
    Wait,
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
    /// (id, the addresses of the words it waits on, woken)
    queued: Vec<(u64, [usize; 2], bool)>,
}

loom::lazy_static! {
    static ref TABLE: (Mutex<Table>, Condvar) = (Mutex::new(Table::default()), Condvar::new());
    static ref CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    /// Whether every release of a lock that others sleep on hands it over (see
    /// `Wait::hand_off_due`), in this execution of a model.
    static ref HAND_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
}

loom::lazy_static! {
    /// The next owner id handed out, from 10 in each execution of a model, so that a
    /// model behaves the same whenever it is replayed (the reader-writer lock spreads
    /// its readers by id).
    static ref NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(10);
}

loom::thread_local! {
    /// The owner id a thread records in locks: its own, unless a model names it.
    static OWNER: std::cell::Cell<u32> = std::cell::Cell::new(
        NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    /// The words of the locks a thread holds, as the kernel's robust list has them, and
    /// the pending one.
    static HELD: std::cell::RefCell<Vec<(usize, u64)>> = std::cell::RefCell::new(Vec::new());
    /// Numbers this thread's holds, so that two holds of one lock differ.
    static HOLDS: std::cell::Cell<u64> = std::cell::Cell::new(0);
    static PENDING: std::cell::Cell<usize> = std::cell::Cell::new(0);
}

/// Gives the calling thread the owner id `id`.
fn call_me(id: u32) {
    OWNER.with(|owner| owner.set(id));
}

const WAITERS: u32 = 1 << 31;
const OWNER_DIED: u32 = 1 << 30;
const ID: u32 = (1 << 30) - 1;

/// The calling thread "dies": the kernel walks its robust list, as Linux does at a
/// thread's exit. (The thread itself returns; what matters is that it never releases
/// what it holds.)
fn die() {
    let me = OWNER.with(|owner| owner.get());
    let pending = PENDING.with(|p| p.replace(0));
    let held = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
    for (address, is_pending) in held
        .into_iter()
        .map(|(a, _)| (a, false))
        .chain((pending != 0).then_some((pending, true)))
    {
        // SAFETY: the model keeps every lock alive across the deaths it stages.
        let word = unsafe { &*(address as *const AtomicU32) };
        let mut current = word.load(Ordering::SeqCst);
        loop {
            if is_pending && current & ID == 0 {
                Futex::wake_one(word);
            } else if current & ID == me {
                // Retried, as the kernel does, when a locker sets WAITERS meanwhile.
                let marked = current & WAITERS | OWNER_DIED;
                if let Err(now) =
                    word.compare_exchange(current, marked, Ordering::SeqCst, Ordering::SeqCst)
                {
                    current = now;
                    continue;
                }
                if current & WAITERS != 0 {
                    Futex::wake_one(word);
                }
            }
            break;
        }
    }
}

/// The kernel's robust list, as the hosted backend uses it.
struct Kernel;

impl Owner for Kernel {
    const NAME: &'static str = "Kernel";
    type Record = ();
    const UNHELD: () = ();
    type Hold = (usize, u64);
    type GuardMarker = *const ();
    // No uninvited looks: the algorithm must not need them, and a lost wake-up then
    // shows as a deadlock.
    const RECHECK_NS: Option<u64> = None;

    fn id() -> u32 {
        OWNER.with(|owner| owner.get())
    }
    fn attempt(word: &AtomicU32, _: &()) {
        PENDING.with(|p| p.set(address(word)));
    }
    fn taken(word: &AtomicU32, _: &()) -> (usize, u64) {
        let hold = (address(word), HOLDS.with(|n| n.replace(n.get() + 1)));
        HELD.with(|held| held.borrow_mut().push(hold));
        PENDING.with(|p| p.set(0));
        hold
    }
    fn missed(_: &AtomicU32, _: &()) {
        PENDING.with(|p| p.set(0));
    }
    fn holding(word: &AtomicU32, _: &()) -> Option<(usize, u64)> {
        let address = address(word);
        HELD.with(|held| held.borrow().iter().copied().find(|&(a, _)| a == address))
    }
    fn releasing(_: &AtomicU32, hold: (usize, u64)) {
        PENDING.with(|p| p.set(hold.0));
        HELD.with(|held| held.borrow_mut().retain(|&h| h != hold));
    }
    fn released(_: (usize, u64)) {
        PENDING.with(|p| p.set(0));
    }
    fn forget(word: &AtomicU32, _: &(), _: bool) {
        let address = address(word);
        HELD.with(|held| held.borrow_mut().retain(|&(a, _)| a != address));
    }
}

type Lock = shmsync_core::Lock<Futex, Kernel>;
type Value<T> = shmsync_core::Value<T, Futex, Kernel>;
type Array<T, const N: usize> = shmsync_core::Array<T, N, Futex, Kernel>;

fn address(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

impl Timed for Futex {}

impl Wait for Futex {
    const NAME: &'static str = "Futex";

    /// Time moves one tick each time anyone looks at the clock, so that every timed
    /// wait ends.
    fn now() -> u64 {
        CLOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        Self::wait_either(word, expected, word, expected, deadline);
    }

    fn wait_either(
        first: &AtomicU32,
        first_expected: u32,
        second: &AtomicU32,
        second_expected: u32,
        deadline: Option<u64>,
    ) {
        let (mutex, condvar) = &*TABLE;
        let mut table = mutex.lock().unwrap();
        if first.load(Ordering::SeqCst) != first_expected
            || second.load(Ordering::SeqCst) != second_expected
        {
            return;
        }
        let id = table.next_id;
        table.next_id += 1;
        table
            .queued
            .push((id, [address(first), address(second)], false));
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
        Self::wake_one_reporting(word);
    }

    fn wake_one_reporting(word: &AtomicU32) -> bool {
        let (mutex, condvar) = &*TABLE;
        let mut table = mutex.lock().unwrap();
        let entry = table
            .queued
            .iter_mut()
            .find(|e| e.1.contains(&address(word)) && !e.2);
        let woke = entry.is_some();
        if let Some(entry) = entry {
            entry.2 = true;
        }
        condvar.notify_all();
        woke
    }

    fn hand_off_due() -> bool {
        HAND_OFF.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn wake_all(word: &AtomicU32) {
        let (mutex, condvar) = &*TABLE;
        let mut table = mutex.lock().unwrap();
        for entry in table
            .queued
            .iter_mut()
            .filter(|e| e.1.contains(&address(word)))
        {
            entry.2 = true;
        }
        condvar.notify_all();
    }
}

/// How many threads are asleep in the futex model.
fn sleepers() -> usize {
    TABLE.0.lock().unwrap().queued.len()
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        hand_off_everywhere_if_asked();
        f()
    });
}

/// A model in which every release of a lock that others sleep on hands it to one of
/// them (eventual fairness), instead of freeing it.
fn model_handing_over(f: impl Fn() + Sync + Send + 'static) {
    model(move || {
        HAND_OFF.store(true, std::sync::atomic::Ordering::SeqCst);
        f()
    });
}

/// For models where a waiter watches a live owner in timed slices: each slice is a
/// few branches, so they need a larger branch budget and fewer preemptions.
fn model_with_slices(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.max_branches = 20_000;
    builder.check(move || {
        hand_off_everywhere_if_asked();
        f()
    });
}

/// With `SHMSYNC_LOOM_HAND_OFF=1` in the environment, every model runs as
/// [`model_handing_over`] does: each primitive built on a lock (the condition's, the
/// queue's, the reader-writer lock's slots) then meets handed-over locks at every turn.
fn hand_off_everywhere_if_asked() {
    if std::env::var_os("SHMSYNC_LOOM_HAND_OFF").is_some_and(|v| v == "1") {
        HAND_OFF.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

const TINY: Duration = Duration::from_nanos(2);

#[test]
fn lock_excludes_and_loses_no_wakeup() {
    model(three_lockers);
}

#[test]
fn lock_handed_over_excludes_and_loses_no_wakeup() {
    model_handing_over(three_lockers);
}

/// Three threads take the lock once each and change the data under it.
fn three_lockers() {
    let lock = Arc::new(Lock::new());
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
}

#[test]
fn lock_timeout_leaves_no_waiter_stranded() {
    model(timed_and_blocking_lockers);
}

#[test]
fn lock_handed_to_a_timed_locker_strands_nobody() {
    model_handing_over(timed_and_blocking_lockers);
}

/// A locker that gives up after a moment and one that does not, while the lock is
/// held and then released.
fn timed_and_blocking_lockers() {
    let lock = Arc::new(Lock::new());
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
}

#[test]
fn lock_release_of_unheld_changes_nothing() {
    model(|| {
        let lock = Arc::new(Lock::new());
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
        let value = Arc::new(Value::<u32>::new(0));
        let updaters: Vec<_> = (0..2)
            .map(|_| {
                let value = value.clone();
                thread::spawn(move || {
                    value.update(|v| v + 1).unwrap();
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
        let array = Arc::new(Array::<u16, 2>::zeroed());
        let writer = {
            let array = array.clone();
            thread::spawn(move || {
                array.write(0, &[1, 1]).unwrap();
                array.write(0, &[2, 2]).unwrap();
            })
        };
        let [a, b] = array.snapshot().unwrap();
        assert_eq!(a, b, "a snapshot saw half of a write");
        writer.join().unwrap();
        assert_eq!(array.snapshot(), Ok([2, 2]));
    });
}

/// Starts a thread with the owner id `id` that takes something (`hold`) and dies
/// holding it; returns once it holds it, perhaps before it has died.
fn dies_once_it_holds(id: u32, hold: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    let holding = Arc::new(Event::<Futex>::new());
    let holder = {
        let holding = holding.clone();
        thread::spawn(move || {
            call_me(id);
            hold();
            holding.set();
            die();
        })
    };
    holding.wait();
    holder
}

/// A thread (owner id 2) takes `lock` and dies holding it.
fn die_holding(lock: &Arc<Lock>) {
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
        let lock = Arc::new(Lock::new());
        let told = Arc::new(AtomicUsize::new(0));
        die_holding(&lock);
        let lock_and_repair = |lock: &Lock, told: &AtomicUsize| match lock.lock() {
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
        let lock = Arc::new(Lock::new());
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
            Some(TryLockError::NotRecoverable)
        );
    });
}

#[test]
fn a_sleeping_locker_is_woken_by_the_kernel_when_the_holder_dies() {
    model(|| {
        let lock = Arc::new(Lock::new());
        let holder = {
            let lock = lock.clone();
            dies_once_it_holds(2, move || std::mem::forget(lock.lock().unwrap()))
        };
        call_me(3);
        // Blocks until the kernel's mark; a wake lost at the death would deadlock here.
        match lock.lock() {
            Err(LockError::OwnerDied(guard)) => guard.mark_consistent(),
            other => panic!("{other:?}"),
        }
        holder.join().unwrap();
        assert!(!lock.is_locked());
    });
}

#[test]
fn update_passes_a_dead_holders_news_on_and_never_repairs() {
    model(|| {
        let value = Arc::new(Value::<u32>::new(1));
        {
            let value = value.clone();
            thread::spawn(move || {
                call_me(2);
                std::mem::forget(value.get_lock().lock().unwrap());
                die();
            })
            .join()
            .unwrap();
        }
        let updater = {
            let value = value.clone();
            thread::spawn(move || value.update(|v| v + 1))
        };
        call_me(3);
        let updated = updater.join().unwrap();
        assert_eq!(updated, Err(shmsync_core::DataError::OwnerDied));
        assert_eq!(value.get(), 1);
        match value.get_lock().lock() {
            Err(LockError::OwnerDied(guard)) => guard.mark_consistent(),
            other => panic!("{other:?}"),
        }
        assert_eq!(value.update(|v| v + 1), Ok(2));
    });
}

#[test]
fn a_stale_guard_never_releases_its_own_threads_later_hold() {
    model(|| {
        let lock = Arc::new(Lock::new());
        let stale = lock.lock().unwrap();
        lock.release().unwrap();
        let held = lock.lock().unwrap();
        drop(stale);
        let other = {
            let lock = lock.clone();
            thread::spawn(move || lock.try_lock().is_err())
        };
        assert!(other.join().unwrap(), "a second holder got in");
        drop(held);
        assert!(!lock.is_locked());
    });
}

#[test]
fn a_guard_never_releases_a_lock_it_no_longer_holds() {
    model(|| {
        let lock = Arc::new(Lock::new());
        let guard = lock.lock().unwrap();
        lock.release().unwrap(); // behind the guard's back
        let other = {
            let lock = lock.clone();
            thread::spawn(move || {
                let taken = lock.lock().unwrap();
                // Whatever the first thread does with its stale guard, this one holds it.
                thread::yield_now();
                assert!(lock.is_locked());
                drop(taken);
            })
        };
        drop(guard);
        other.join().unwrap();
        assert!(!lock.is_locked());
    });
}

type TrackedSemaphore = shmsync_core::TrackedSemaphore<Futex, Kernel>;
type TrackedBoundedSemaphore = shmsync_core::TrackedBoundedSemaphore<Futex, Kernel>;

#[test]
fn tracked_semaphore_never_admits_too_many_nor_loses_a_permit() {
    model(|| {
        let sem = Arc::new(TrackedSemaphore::new(1));
        let data = Arc::new(UnsafeCell::new(0u32));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (sem, data) = (sem.clone(), data.clone());
                thread::spawn(move || {
                    let _permit = sem.permit();
                    data.with_mut(|p| unsafe { *p += 1 });
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap(); // a lost wake-up would deadlock here
        }
        assert_eq!(data.with(|p| unsafe { *p }), 2);
        assert_eq!(sem.value(), 1);
    });
}

#[test]
fn a_dead_holders_permit_comes_back_to_a_sleeping_waiter() {
    model(|| {
        let sem = Arc::new(TrackedBoundedSemaphore::new(1));
        let holder = {
            let sem = sem.clone();
            dies_once_it_holds(2, move || sem.acquire())
        };
        call_me(3);
        // Finds the permit either at once (the holder's slot already marked) or by
        // looking again; in the model a sleeper is woken only by a release, so it uses
        // a timed wait, as the hosted backend's recheck does.
        while !sem.acquire_timeout(TINY) {}
        holder.join().unwrap();
        sem.release().unwrap();
        assert_eq!(sem.value(), 1);
        assert!(sem.release().is_err(), "a death returned a permit twice");
    });
}

#[test]
fn a_timed_waiter_that_leaves_after_a_release_strands_nobody() {
    model(|| {
        let sem = Arc::new(TrackedSemaphore::new(0));
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
        blocking.join().unwrap(); // a wake lost with the timed waiter would deadlock
    });
}

type Queue<T, const N: usize> = shmsync_core::Queue<T, N, Futex, Kernel>;
use shmsync_core::fault::{kill_at, KillPoint};
use shmsync_core::{Closed, GetError};

/// An item of two words, so that a put can die with half of it written.
const DEAD: [u32; 2] = [7, 7];
const LIVE: [u32; 2] = [9, 9];

#[test]
fn queue_hands_items_over_in_order_and_loses_no_wakeup() {
    model(|| {
        let q = Arc::new(Queue::<u32, 1>::new());
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(1).unwrap();
                q.put(2).unwrap(); // waits for room: a lost wake-up deadlocks here
            })
        };
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.get(), Ok(2)); // or here
        producer.join().unwrap();
        assert!(q.empty());
    });
}

#[test]
fn queue_two_producers_each_item_once() {
    model(|| {
        let q = Arc::new(Queue::<u32, 2>::new());
        let producers: Vec<_> = [1, 2]
            .into_iter()
            .map(|n| {
                let q = q.clone();
                thread::spawn(move || q.put(n).unwrap())
            })
            .collect();
        let mut got = [q.get().unwrap(), q.get().unwrap()];
        for p in producers {
            p.join().unwrap();
        }
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(q.unfinished_tasks(), 2);
    });
}

#[test]
fn queue_close_wakes_a_sleeping_getter_and_putter() {
    model(|| {
        let empty = Arc::new(Queue::<u32, 1>::new());
        let full = Arc::new(Queue::<u32, 1>::new());
        full.put(1).unwrap();
        let getter = {
            let empty = empty.clone();
            thread::spawn(move || empty.get())
        };
        let putter = {
            let full = full.clone();
            thread::spawn(move || full.put(2))
        };
        empty.close();
        full.close();
        // A waiter that slept through the close would deadlock here.
        assert_eq!(getter.join().unwrap(), Err(Closed(())));
        assert_eq!(putter.join().unwrap(), Err(Closed(2)));
        assert_eq!(full.get(), Ok(1), "the item put before the close drains");
        assert_eq!(full.get(), Err(Closed(())));
    });
}

#[test]
fn queue_join_returns_once_every_task_is_done() {
    model(|| {
        let q = Arc::new(Queue::<u32, 1>::new());
        q.put(1).unwrap();
        let worker = {
            let q = q.clone();
            thread::spawn(move || {
                q.get().unwrap();
                q.task_done().unwrap();
            })
        };
        q.join(); // a lost wake-up deadlocks here
        assert_eq!(q.unfinished_tasks(), 0);
        worker.join().unwrap();
    });
}

/// Whether a put or get that died at `point` had committed.
fn committed(point: KillPoint) -> bool {
    matches!(point, KillPoint::Committed | KillPoint::Unlocked)
}

const PUT_POINTS: [KillPoint; 5] = [
    KillPoint::Locked,
    KillPoint::HalfWritten,
    KillPoint::BeforeCommit,
    KillPoint::Committed,
    KillPoint::Unlocked,
];

#[test]
fn a_put_killed_anywhere_delivers_its_item_whole_or_not_at_all() {
    for point in PUT_POINTS {
        model(move || {
            let q = Arc::new(Queue::<[u32; 2], 2>::new());
            let dying = {
                let q = q.clone();
                thread::spawn(move || {
                    call_me(2);
                    kill_at(point, die);
                    let _ = q.put(DEAD);
                })
            };
            call_me(1);
            // A get racing the death, and one after it (which finds the lock of the
            // dead, if it died holding it).
            let early = q.get_timeout(TINY);
            dying.join().unwrap();
            let late = q.try_get();
            let got: Vec<_> = [early, late].into_iter().filter_map(Result::ok).collect();
            assert!(
                got.iter().all(|&item| item == DEAD),
                "half an item: {got:?}"
            );
            assert_eq!(got.len(), usize::from(committed(point)), "{point:?}");
            // Not wedged: a put and a get that wait, if they must, for ever.
            q.put(LIVE).unwrap();
            assert_eq!(q.get(), Ok(LIVE));
        });
    }
}

/// A thread (owner id 2) that dies at `point` of a get from `q`.
fn get_and_die<T: shmsync_core::Pod, const N: usize>(
    q: &Arc<Queue<T, N>>,
    point: KillPoint,
) -> thread::JoinHandle<()> {
    let q = q.clone();
    thread::spawn(move || {
        call_me(2);
        kill_at(point, die);
        let _ = q.get();
    })
}

#[test]
fn a_get_killed_anywhere_takes_its_item_or_leaves_it() {
    for point in [
        KillPoint::Locked,
        KillPoint::BeforeCommit,
        KillPoint::Committed,
        KillPoint::Unlocked,
    ] {
        model(move || {
            let q = Arc::new(Queue::<[u32; 2], 2>::new());
            q.put(DEAD).unwrap();
            let dying = get_and_die(&q, point);
            call_me(1);
            q.put(LIVE).unwrap(); // racing the death
            dying.join().unwrap();
            // The dead consumer's item is gone exactly if its get committed; the live
            // one is there, whole, in order.
            if !committed(point) {
                assert_eq!(q.try_get(), Ok(DEAD), "{point:?}");
            }
            assert_eq!(q.try_get(), Ok(LIVE), "{point:?}");
            assert_eq!(q.try_get(), Err(GetError::Empty));
        });
    }
}

#[test]
fn a_locker_killed_once_woken_holds_up_the_others_only_until_they_look() {
    model_with_slices(|| {
        let lock = Arc::new(Lock::new());
        call_me(1);
        let guard = lock.lock().unwrap();
        let dying = {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(2);
                // Killed, if at all, woken by the release and before it looks: the
                // release after then counts on it and wakes nobody.
                drop(dying_at(KillPoint::LockerWoken, || lock.lock()));
            })
        };
        let looking = {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(3);
                // A sleeper looks again on its own (the hosted backend's recheck), here
                // in timed slices.
                while lock.lock_timeout(Duration::from_nanos(6)).is_err() {
                    thread::yield_now(); // time passes
                }
            })
        };
        drop(guard);
        looking.join().unwrap();
        dying.join().unwrap();
    });
}

#[test]
fn a_putter_asleep_on_a_full_queue_gets_in_after_its_waker_dies() {
    for point in [KillPoint::Committed, KillPoint::Unlocked] {
        model_with_slices(move || {
            let q = Arc::new(Queue::<u32, 1>::new());
            q.put(1).unwrap();
            let dying = get_and_die(&q, point);
            call_me(1);
            // The dead consumer made room but may never wake us: a sleeper looks again
            // on its own (the hosted backend's recheck), here in timed slices.
            while q.put_timeout(2, Duration::from_nanos(6)).is_err() {
                thread::yield_now(); // time passes
            }
            dying.join().unwrap();
            assert_eq!(q.try_get(), Ok(2));
        });
    }
}

// ---------------------------------------------------------------------------------
// Threads that vanish in the middle of an operation.

impl shmsync_core::DistinctIds for Kernel {}

/// Runs `operation` in the calling thread, which dies (the kernel walks its robust
/// list, and the operation unwinds, running nothing more) when it reaches `point`;
/// returns `None` if it did.
fn dying_at<R>(point: KillPoint, operation: impl FnOnce() -> R) -> Option<R> {
    kill_at(point, die);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(operation)) {
        Ok(result) => Some(result),
        Err(payload) if payload.is::<shmsync_core::fault::Killed>() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Runs `f` on a thread with the owner id `id`, which then dies holding whatever it
/// holds, and waits for it.
fn in_a_thread_that_dies(id: u32, f: impl FnOnce() + Send + 'static) {
    thread::spawn(move || {
        call_me(id);
        f();
        die();
    })
    .join()
    .unwrap();
}

type RLock = shmsync_core::RLock<Futex, Kernel>;
type Condition = shmsync_core::Condition<Futex, Kernel, 2>;
type Barrier = shmsync_core::Barrier<Futex, Kernel>;
type RwLock = shmsync_core::RwLock<Futex, Kernel, 2>;

#[test]
fn rlock_reenters_and_excludes() {
    model(|| {
        let lock = Arc::new(RLock::new());
        let data = Arc::new(UnsafeCell::new(0u32));
        let other = {
            let (lock, data) = (lock.clone(), data.clone());
            thread::spawn(move || {
                let _outer = lock.lock().unwrap();
                let _inner = lock.lock().unwrap();
                data.with_mut(|p| unsafe { *p += 1 });
            })
        };
        {
            let outer = lock.lock().unwrap();
            let inner = lock.lock().unwrap();
            drop(outer); // out of order: the lock is held until the last level goes
            data.with_mut(|p| unsafe { *p += 1 });
            drop(inner);
        }
        other.join().unwrap();
        assert_eq!(data.with(|p| unsafe { *p }), 2);
        assert!(!lock.is_locked());
    });
}

#[test]
fn rlock_of_a_holder_dead_at_depth_two_goes_to_one_locker_at_depth_one() {
    model(|| {
        let lock = Arc::new(RLock::new());
        {
            let lock = lock.clone();
            in_a_thread_that_dies(2, move || {
                lock.acquire().unwrap();
                lock.acquire().unwrap();
            });
        }
        let other = {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(3);
                match lock.lock() {
                    Ok(_) => false,
                    Err(LockError::OwnerDied(guard)) => {
                        guard.mark_consistent();
                        true
                    }
                    Err(error) => panic!("{error}"),
                }
            })
        };
        call_me(1);
        let mine = match lock.lock() {
            Ok(guard) => {
                assert_eq!(lock.recursion_count(), 1);
                drop(guard);
                false
            }
            Err(LockError::OwnerDied(guard)) => {
                assert_eq!(lock.recursion_count(), 1);
                guard.mark_consistent();
                true
            }
            Err(error) => panic!("{error}"),
        };
        let theirs = other.join().unwrap();
        assert!(mine != theirs, "exactly one locker is told");
        assert!(!lock.is_locked());
    });
}

/// A waiter that counts itself in `ready` under the lock, then waits for `go` (also
/// under the lock): once the notifier sees it counted, it is waiting.
fn waiter(
    lock: &Arc<Lock>,
    condition: &Arc<Condition>,
    ready: &Arc<AtomicUsize>,
    go: &Arc<AtomicUsize>,
) -> thread::JoinHandle<()> {
    let (lock, condition, ready, go) = (lock.clone(), condition.clone(), ready.clone(), go.clone());
    thread::spawn(move || {
        let held = lock.lock().unwrap();
        ready.fetch_add(1, Ordering::SeqCst);
        let held = condition
            .wait_for(held, || go.load(Ordering::SeqCst) > 0)
            .unwrap();
        go.fetch_sub(1, Ordering::SeqCst);
        drop(held);
    })
}

/// Takes `lock` once `ready` reaches `n`: every waiter counted is waiting.
fn lock_when_ready<'a>(
    lock: &'a Lock,
    ready: &AtomicUsize,
    n: usize,
) -> shmsync_core::LockGuard<'a, Futex, Kernel> {
    loop {
        let held = lock.lock().unwrap();
        if ready.load(Ordering::SeqCst) >= n {
            return held;
        }
        drop(held);
        thread::yield_now();
    }
}

#[test]
fn condition_notify_one_wakes_exactly_one() {
    model_with_slices(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let (ready, go) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let waiters = [
            waiter(&lock, &condition, &ready, &go),
            waiter(&lock, &condition, &ready, &go),
        ];
        let held = lock_when_ready(&lock, &ready, 2);
        go.store(2, Ordering::SeqCst);
        // Both wait: each notify wakes one, and the second does not find the first's.
        assert_eq!(condition.notify(1), 1);
        assert_eq!(condition.notify(1), 1);
        assert_eq!(condition.notify(1), 0);
        drop(held);
        for w in waiters {
            w.join().unwrap(); // a lost wake-up deadlocks here
        }
        assert_eq!(go.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn condition_ping_pong_on_one_condition_steals_nothing() {
    // Each side notifies, then waits on the same condition: a notify that the notifier
    // itself could take back would leave both asleep.
    model(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let turn = Arc::new(AtomicUsize::new(0));
        let other = {
            let (lock, condition, turn) = (lock.clone(), condition.clone(), turn.clone());
            thread::spawn(move || {
                let held = lock.lock().unwrap();
                let held = condition
                    .wait_for(held, || turn.load(Ordering::SeqCst) == 1)
                    .unwrap();
                turn.store(2, Ordering::SeqCst);
                condition.notify(1);
                drop(held);
            })
        };
        let held = lock.lock().unwrap();
        turn.store(1, Ordering::SeqCst);
        condition.notify(1);
        let held = condition
            .wait_for(held, || turn.load(Ordering::SeqCst) == 2)
            .unwrap();
        drop(held);
        other.join().unwrap();
    });
}

#[test]
fn condition_timed_out_waiter_takes_no_wake_up() {
    model_with_slices(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let ready = Arc::new(AtomicUsize::new(0));
        let timed = {
            let (lock, condition, ready) = (lock.clone(), condition.clone(), ready.clone());
            thread::spawn(move || {
                let held = lock.lock().unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                let (held, result) = condition.wait_timeout(held, TINY).unwrap();
                drop(held);
                !result.timed_out()
            })
        };
        let woken = Arc::new(AtomicUsize::new(0));
        let blocking = {
            let (lock, condition, ready, woken) = (
                lock.clone(),
                condition.clone(),
                ready.clone(),
                woken.clone(),
            );
            thread::spawn(move || {
                let held = lock.lock().unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                let held = condition.wait(held).unwrap();
                woken.fetch_add(1, Ordering::SeqCst);
                drop(held);
            })
        };
        let held = lock_when_ready(&lock, &ready, 2);
        let first = condition.notify(1);
        drop(held);
        let timed_was_notified = timed.join().unwrap();
        // The notify woke one waiter in a slot: the timed one (which then says so), or
        // else the blocking one. If it went to the timed one, the blocking one needs
        // another; if the timed one timed out, it must not have taken it.
        assert_eq!(first, 1);
        if timed_was_notified {
            let held = lock.lock().unwrap();
            condition.notify(1);
            drop(held);
        }
        blocking.join().unwrap(); // a wake-up lost with the timed waiter deadlocks here
        assert_eq!(woken.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn condition_waiter_killed_while_waiting_takes_no_wake_up() {
    model(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let (ready, go) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let doomed = {
            let (lock, condition, ready) = (lock.clone(), condition.clone(), ready.clone());
            thread::spawn(move || {
                call_me(2);
                let held = lock.lock().unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                // Dies waiting, its lock released: only its slot remains, which the live
                // waiter takes over if it comes after the death, and not if before.
                assert!(dying_at(KillPoint::ConditionWaiting, || condition.wait(held)).is_none());
            })
        };
        let live = waiter(&lock, &condition, &ready, &go);
        doomed.join().unwrap();
        let held = lock_when_ready(&lock, &ready, 2);
        go.fetch_add(1, Ordering::SeqCst);
        assert_eq!(condition.notify(1), 1);
        drop(held);
        live.join().unwrap(); // deadlocks if the notify went to the dead waiter
    });
}

#[test]
fn condition_wake_up_of_a_waiter_killed_after_it_is_passed_on() {
    model(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let (ready, go) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let doomed = {
            let (lock, condition, ready) = (lock.clone(), condition.clone(), ready.clone());
            thread::spawn(move || {
                call_me(2);
                let held = lock.lock().unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                // Chosen by the notify, then killed before it takes the lock back.
                assert!(dying_at(KillPoint::ConditionWoken, || condition.wait(held)).is_none());
            })
        };
        // The doomed waiter is the older, so the first notify chooses it.
        drop(lock_when_ready(&lock, &ready, 1));
        let live = waiter(&lock, &condition, &ready, &go);
        let held = lock_when_ready(&lock, &ready, 2);
        assert_eq!(condition.notify(1), 1);
        drop(held);
        doomed.join().unwrap();
        // Its wake-up is passed on by the next notify, which then finds nobody new.
        let held = lock.lock().unwrap();
        go.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            condition.notify(1),
            0,
            "the dead waiter's wake-up was not passed on"
        );
        drop(held);
        live.join().unwrap();
    });
}

#[test]
fn condition_waiter_retaking_a_lock_whose_holder_died_is_told() {
    model(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let ready = Arc::new(AtomicUsize::new(0));
        let waiting = {
            let (lock, condition, ready) = (lock.clone(), condition.clone(), ready.clone());
            thread::spawn(move || {
                call_me(3);
                let held = lock.lock().unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                match condition.wait(held) {
                    Err(LockError::OwnerDied(guard)) => guard.mark_consistent(),
                    other => panic!("{:?}", other.map(drop)),
                }
            })
        };
        {
            let (lock, condition, ready) = (lock.clone(), condition.clone(), ready.clone());
            in_a_thread_that_dies(2, move || {
                let held = lock_when_ready(&lock, &ready, 1);
                condition.notify(1);
                std::mem::forget(held); // dies holding the lock
            });
        }
        waiting.join().unwrap();
        assert!(!lock.is_locked());
    });
}

#[test]
fn condition_waits_on_an_rlock_at_depth_two_and_comes_back_at_depth_two() {
    model(|| {
        let (lock, condition) = (Arc::new(RLock::new()), Arc::new(Condition::new()));
        let flag = Arc::new(AtomicUsize::new(0));
        let notifier = {
            let (lock, condition, flag) = (lock.clone(), condition.clone(), flag.clone());
            thread::spawn(move || {
                let held = lock.lock().unwrap();
                flag.store(1, Ordering::SeqCst);
                condition.notify(1);
                drop(held);
            })
        };
        let outer = lock.lock().unwrap();
        let inner = lock.lock().unwrap();
        let inner = condition
            .wait_for(inner, || flag.load(Ordering::SeqCst) == 1)
            .unwrap();
        assert_eq!(lock.recursion_count(), 2);
        drop(inner);
        assert!(lock.is_owned_by_current_thread());
        drop(outer);
        notifier.join().unwrap();
        assert!(!lock.is_locked());
    });
}

#[test]
fn barrier_generations_have_one_leader_and_nobody_leaves_early() {
    model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let arrived = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let leaders = Arc::new(AtomicUsize::new(0));
        let party = {
            let (barrier, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
            move || {
                for generation in 0..2 {
                    arrived[generation].fetch_add(1, Ordering::SeqCst);
                    let result = barrier.wait().unwrap();
                    assert_eq!(arrived[generation].load(Ordering::SeqCst), 2, "left early");
                    if result.is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        };
        let other = thread::spawn(party.clone());
        party();
        other.join().unwrap();
        assert_eq!(leaders.load(Ordering::SeqCst), 2);
        assert_eq!(barrier.n_waiting(), 0);
    });
}

#[test]
fn barrier_timeout_breaks_it_for_the_waiting_party() {
    model(|| {
        let barrier = Arc::new(Barrier::new(3));
        let blocking = {
            let barrier = barrier.clone();
            thread::spawn(move || barrier.wait())
        };
        let timed = barrier.wait_timeout(TINY);
        // The third party never comes: whoever is left waiting is freed by the timeout.
        let blocked = blocking.join().unwrap();
        assert_eq!(timed, Err(shmsync_core::BarrierError::TimedOut));
        assert_eq!(blocked, Err(shmsync_core::BarrierError::Broken));
        assert!(barrier.is_broken());
        barrier.reset();
        assert!(!barrier.is_broken());
    });
}

#[test]
fn barrier_abort_and_reset_free_the_waiting_parties() {
    model(|| {
        let barrier = Arc::new(Barrier::new(3));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                thread::spawn(move || barrier.wait())
            })
            .collect();
        barrier.reset(); // ends the generation whoever arrived was in
        barrier.abort(); // breaks the one whoever arrives later is in
        for w in waiting {
            assert_eq!(w.join().unwrap(), Err(shmsync_core::BarrierError::Broken));
        }
        barrier.reset();
        assert_eq!(barrier.n_waiting(), 0);
    });
}

#[test]
fn rwlock_never_lets_a_writer_in_with_a_reader() {
    model_with_slices(|| {
        let lock = Arc::new(RwLock::new());
        let data = Arc::new(UnsafeCell::new(0u32));
        let reader = {
            let (lock, data) = (lock.clone(), data.clone());
            thread::spawn(move || {
                let _reading = lock.read().unwrap();
                data.with(|p| unsafe { *p })
            })
        };
        let writer = {
            let (lock, data) = (lock.clone(), data.clone());
            thread::spawn(move || {
                let _writing = lock.write().unwrap();
                data.with_mut(|p| unsafe { *p += 1 });
            })
        };
        {
            let _reading = lock.read().unwrap();
            data.with(|p| unsafe { *p });
        }
        let seen = reader.join().unwrap();
        writer.join().unwrap();
        assert!(seen <= 1);
        assert!(!lock.is_locked());
    });
}

#[test]
fn rwlock_reader_killed_reading_lets_the_writer_in() {
    model(|| {
        let lock = Arc::new(RwLock::new());
        let reader = {
            let lock = lock.clone();
            dies_once_it_holds(2, move || std::mem::forget(lock.read().unwrap()))
        };
        call_me(3);
        let writing = lock.write();
        assert!(writing.is_ok(), "a reader's death is no writer's business");
        drop(writing);
        reader.join().unwrap();
        assert!(!lock.is_locked());
    });
}

#[test]
fn rwlock_reader_killed_before_it_checks_blocks_no_writer() {
    model(|| {
        let lock = Arc::new(RwLock::new());
        let reader = {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(2);
                let read = dying_at(KillPoint::ReaderInSlot, || {
                    drop(lock.read());
                });
                assert!(read.is_none());
            })
        };
        call_me(3);
        drop(lock.write().unwrap());
        reader.join().unwrap();
        assert!(lock.read().is_ok());
    });
}

#[test]
fn rwlock_writer_killed_waiting_for_readers_is_forgotten() {
    model(|| {
        let lock = Arc::new(RwLock::new());
        let reading = lock.read().unwrap();
        let writer = {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(2);
                assert!(dying_at(KillPoint::WriterWaitingForReaders, || {
                    drop(lock.write());
                })
                .is_none());
            })
        };
        writer.join().unwrap();
        drop(reading);
        call_me(3);
        // Readers are let in again, and the next writer too, unharmed.
        drop(lock.read().unwrap());
        drop(lock.write().unwrap());
        assert!(!lock.writer_died());
    });
}

#[test]
fn rwlock_writer_killed_writing_hands_the_repair_to_the_next_comer() {
    model(|| {
        let lock = Arc::new(RwLock::new());
        {
            let lock = lock.clone();
            in_a_thread_that_dies(2, move || std::mem::forget(lock.write().unwrap()));
        }
        let repairs = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (lock, repairs) = (lock.clone(), repairs.clone());
            thread::spawn(move || {
                call_me(3);
                loop {
                    match lock.read() {
                        Ok(_reading) => return,
                        Err(LockError::OwnerDied(writing)) => {
                            repairs.fetch_add(1, Ordering::SeqCst);
                            writing.mark_consistent();
                        }
                        Err(error) => panic!("{error}"),
                    }
                }
            })
        };
        call_me(4);
        match lock.write() {
            Ok(_) => {}
            Err(LockError::OwnerDied(writing)) => {
                repairs.fetch_add(1, Ordering::SeqCst);
                writing.mark_consistent();
            }
            Err(error) => panic!("{error}"),
        }
        reader.join().unwrap();
        assert_eq!(
            repairs.load(Ordering::SeqCst),
            1,
            "one repair, by whoever came first"
        );
        assert!(!lock.writer_died());
    });
}

#[test]
fn barrier_party_killed_after_arriving_still_counts() {
    model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let doomed = {
            let barrier = barrier.clone();
            thread::spawn(move || {
                // Dies once it has arrived and waits; arriving last, it trips the
                // barrier and lives.
                if let Some(tripped) = dying_at(KillPoint::BarrierArrived, || barrier.wait()) {
                    assert!(tripped.unwrap().is_leader());
                }
            })
        };
        // Whether the other dies before or after this party arrives, it had arrived
        // (or trips the barrier itself): this one goes on.
        let result = barrier.wait();
        doomed.join().unwrap();
        assert!(result.is_ok());
        assert_eq!(barrier.n_waiting(), 0);
    });
}

#[test]
fn rwlock_repair_given_up_is_not_recoverable_for_anyone() {
    model(|| {
        let lock = Arc::new(RwLock::new());
        {
            let lock = lock.clone();
            in_a_thread_that_dies(2, move || std::mem::forget(lock.write().unwrap()));
        }
        {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(3);
                let told = lock.write().err().map(|e| e.map(drop));
                assert!(matches!(told, Some(LockError::OwnerDied(()))));
                // Dropped unmarked above: and what if it dies while it lets go?
            })
            .join()
            .unwrap();
        }
        call_me(4);
        assert!(matches!(lock.write(), Err(LockError::NotRecoverable)));
        assert!(matches!(lock.read(), Err(LockError::NotRecoverable)));
        assert!(lock.writer_died());
    });
}

#[test]
fn rwlock_repairer_killed_as_it_gives_up_leaves_it_not_recoverable() {
    model(|| {
        let lock = Arc::new(RwLock::new());
        {
            let lock = lock.clone();
            in_a_thread_that_dies(2, move || std::mem::forget(lock.write().unwrap()));
        }
        {
            let lock = lock.clone();
            thread::spawn(move || {
                call_me(3);
                let gave_up = dying_at(KillPoint::WriteReleased, || {
                    drop(lock.write()); // told OwnerDied, dropped unrepaired
                });
                assert!(gave_up.is_none());
            })
            .join()
            .unwrap();
        }
        call_me(4);
        assert!(matches!(lock.write(), Err(LockError::NotRecoverable)));
        assert!(matches!(lock.read(), Err(LockError::NotRecoverable)));
    });
}

#[test]
fn condition_waiter_killed_holding_the_lock_again_is_reported_and_passes_its_wake_up_on() {
    model(|| {
        let (lock, condition) = (Arc::new(Lock::new()), Arc::new(Condition::new()));
        let (ready, go) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let doomed = {
            let (lock, condition, ready) = (lock.clone(), condition.clone(), ready.clone());
            thread::spawn(move || {
                call_me(2);
                let held = lock.lock().unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                // Chosen, takes the lock back, and dies before it leaves its slot.
                let outcome = dying_at(KillPoint::ConditionLockRetaken, || {
                    condition.wait(held).map(std::mem::forget).is_ok()
                });
                assert!(outcome.is_none());
            })
        };
        drop(lock_when_ready(&lock, &ready, 1));
        let live = waiter(&lock, &condition, &ready, &go);
        let held = lock_when_ready(&lock, &ready, 2);
        assert_eq!(condition.notify(1), 1); // the doomed one, the older
        drop(held);
        doomed.join().unwrap();
        call_me(3);
        match lock.lock() {
            Err(LockError::OwnerDied(held)) => {
                held.mark_consistent();
                go.fetch_add(1, Ordering::SeqCst);
                // Its wake-up goes to the live waiter; nobody new is waiting.
                assert_eq!(condition.notify(1), 0);
            }
            other => panic!("{:?}", other.map(drop)),
        }
        live.join().unwrap();
    });
}
