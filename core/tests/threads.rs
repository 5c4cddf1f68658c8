//! The primitives under real std threads on the host.
#![cfg(not(loom))]

mod common;

use common::within_hang;
use common::yielding::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RwLock, Semaphore, Value,
};
use shmsync_core::TryLockError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const ROUNDS: u64 = 100_000;

#[test]
fn lock_makes_read_modify_write_exact() {
    within_hang(|| {
        let lock = Lock::new();
        let total = Value::<u64>::new(0);
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        let _held = lock.lock().unwrap();
                        total.set(total.get() + 1); // two steps: only the lock makes it exact
                    }
                });
            }
        });
        assert_eq!(total.get(), THREADS as u64 * ROUNDS);
        assert!(!lock.is_locked());
    });
}

#[test]
fn value_update_and_fetch_add_lose_nothing() {
    within_hang(|| {
        let total = Value::<i64>::new(0);
        thread::scope(|s| {
            for worker in 0..THREADS {
                let total = &total;
                s.spawn(move || {
                    for _ in 0..ROUNDS {
                        if worker % 2 == 0 {
                            total.update(|v| v + 1).unwrap();
                        } else {
                            total.fetch_add(1);
                        }
                    }
                });
            }
        });
        assert_eq!(total.get(), THREADS as i64 * ROUNDS as i64);
    });
}

fn most_at_once(acquire: impl Fn() + Sync, release: impl Fn() + Sync) -> usize {
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..5_000 {
                    acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::hint::spin_loop();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    release();
                }
            });
        }
    });
    most.into_inner()
}

#[test]
fn semaphore_admits_at_most_k() {
    within_hang(|| {
        let sem = Semaphore::new(3);
        let most = most_at_once(|| sem.acquire(), || sem.release());
        assert!((1..=3).contains(&most), "{most} inside a Semaphore(3)");
        assert_eq!(sem.value(), 3, "a permit was lost or made up");
    });
}

#[test]
fn bounded_semaphore_admits_at_most_k() {
    within_hang(|| {
        let sem = BoundedSemaphore::new(2);
        let most = most_at_once(|| sem.acquire(), || sem.release().unwrap());
        assert!(
            (1..=2).contains(&most),
            "{most} inside a BoundedSemaphore(2)"
        );
        assert_eq!(sem.value(), 2);
    });
}

#[test]
fn event_start_gun_releases_every_waiter() {
    within_hang(|| {
        let start = Event::new();
        let started = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    start.wait();
                    started.fetch_add(1, Ordering::SeqCst);
                });
            }
            assert_eq!(started.load(Ordering::SeqCst), 0);
            start.set();
        });
        assert_eq!(started.into_inner(), 8);
    });
}

#[test]
fn array_snapshots_are_never_torn() {
    within_hang(|| {
        let array = Array::<u32, 16>::zeroed();
        let stop = Event::new();
        thread::scope(|s| {
            s.spawn(|| {
                for round in 1..=20_000u32 {
                    array.write(0, &[round; 16]).unwrap();
                }
                stop.set();
            });
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.is_set() {
                        let snapshot = array.snapshot().unwrap();
                        assert!(
                            snapshot.iter().all(|&x| x == snapshot[0]),
                            "torn: {snapshot:?}"
                        );
                        let mut part = [0; 4];
                        array.read(6, &mut part).unwrap();
                        assert!(part.iter().all(|&x| x == part[0]), "torn: {part:?}");
                    }
                });
            }
        });
        assert_eq!(array.snapshot(), Ok([20_000; 16]));
    });
}

#[test]
fn timeouts_wait_at_least_their_duration_and_then_give_up() {
    let lock = Lock::new();
    let sem = Semaphore::new(0);
    let event = Event::new();
    let _held = lock.lock().unwrap();
    let timeout = Duration::from_millis(20);

    let began = Instant::now();
    assert_eq!(
        lock.lock_timeout(timeout).err(),
        Some(TryLockError::WouldBlock)
    );
    assert!(began.elapsed() >= timeout, "gave up early");

    let began = Instant::now();
    assert!(!sem.acquire_timeout(timeout));
    assert!(began.elapsed() >= timeout, "gave up early");

    let began = Instant::now();
    assert!(!event.wait_timeout(timeout));
    assert!(began.elapsed() >= timeout, "gave up early");
}

#[test]
fn zero_timeouts_are_tries_and_max_timeouts_do_not_overflow() {
    within_hang(|| {
        let lock = Lock::new();
        let sem = Semaphore::new(1);
        let event = Event::new();

        let held = lock.lock_timeout(Duration::MAX).expect("free lock");
        assert_eq!(
            lock.lock_timeout(Duration::ZERO).err(),
            Some(TryLockError::WouldBlock)
        );
        assert!(sem.acquire_timeout(Duration::MAX));
        assert!(!sem.acquire_timeout(Duration::ZERO));
        assert!(!event.wait_timeout(Duration::ZERO));

        // Blocked with Duration::MAX, they wake when the condition comes true.
        thread::scope(|s| {
            s.spawn(|| assert!(lock.lock_timeout(Duration::MAX).is_ok()));
            s.spawn(|| assert!(sem.acquire_timeout(Duration::MAX)));
            s.spawn(|| assert!(event.wait_timeout(Duration::MAX)));
            thread::sleep(Duration::from_millis(10));
            drop(held);
            sem.release();
            event.set();
        });
    });
}

#[test]
fn condition_hands_items_over_with_exact_wake_ups() {
    within_hang(|| {
        let lock = Lock::new();
        let ready = Condition::new();
        let items = Value::<u32>::new(0);
        let done = Value::<u32>::new(0);
        let (taken, woken, notified) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    let mut held = lock.lock().unwrap();
                    loop {
                        if items.get() > 0 {
                            items.set(items.get() - 1);
                            taken.fetch_add(1, Ordering::SeqCst);
                        } else if done.get() == 1 {
                            return;
                        } else {
                            held = ready.wait(held).unwrap();
                            woken.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
            for _ in 0..20_000 {
                let _held = lock.lock().unwrap();
                items.set(items.get() + 1);
                notified.fetch_add(ready.notify(1), Ordering::SeqCst);
            }
            let _held = lock.lock().unwrap();
            done.set(1);
            notified.fetch_add(ready.notify_all(), Ordering::SeqCst);
        });
        assert_eq!(taken.into_inner(), 20_000);
        assert_eq!(woken.into_inner(), notified.into_inner());
    });
}

#[test]
fn barrier_generations_have_one_leader_each() {
    within_hang(|| {
        let barrier = Barrier::new(THREADS as u32);
        let (arrived, leaders, early) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for round in 1..=2_000 {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        if barrier.wait().unwrap().is_leader() {
                            leaders.fetch_add(1, Ordering::SeqCst);
                        }
                        if arrived.load(Ordering::SeqCst) < round * THREADS {
                            early.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(leaders.into_inner(), 2_000);
        assert_eq!(early.into_inner(), 0, "a party left before all arrived");
    });
}

#[test]
fn rwlock_never_lets_a_writer_in_with_anyone() {
    within_hang(|| {
        let lock = RwLock::new();
        let (low, high) = (Value::<u64>::new(0), Value::<u64>::new(0));
        let torn = AtomicUsize::new(0);
        thread::scope(|s| {
            for worker in 0..THREADS {
                let (lock, low, high, torn) = (&lock, &low, &high, &torn);
                s.spawn(move || {
                    for _ in 0..20_000 {
                        if worker == 0 {
                            let _writing = lock.write().unwrap();
                            low.set(low.get() + 1);
                            high.set(low.get());
                        } else {
                            let _reading = lock.read().unwrap();
                            if low.get() != high.get() {
                                torn.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(torn.into_inner(), 0);
        assert_eq!(low.get(), 20_000);
        assert!(!lock.is_locked());
    });
}
