//! The async forms with real concurrency on the host: tasks on several threads, each
//! driven by a small executor, and futures dropped half-way.
#![cfg(all(feature = "embassy", not(loom)))]

#[allow(dead_code)] // the yielding backend, which the tasks do not use
mod common;

use common::within_hang;
use shmsync_core::embassy::{Barrier, Condition, Event, Lock, RwLock, Semaphore, Value};
use shmsync_core::BarrierError;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

/// Wakes a thread that parks while its future is pending.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        thread::park();
    }
}

/// Polls `future` once, with a waker that counts its wakes.
fn poll_once<F: Future + Unpin>(future: &mut F, wakes: &Arc<Counter>) -> Poll<F::Output> {
    let waker = Waker::from(wakes.clone());
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

use std::pin::Pin;

#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn async_lock_makes_read_modify_write_exact() {
    within_hang(|| {
        let lock = Lock::new();
        let total = Value::<u64>::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    block_on(async {
                        for _ in 0..20_000 {
                            let _held = lock.lock_async().await.unwrap();
                            total.set(total.get() + 1);
                        }
                    })
                });
            }
        });
        assert_eq!(total.get(), 80_000);
        assert!(!lock.is_locked());
    });
}

#[test]
fn async_semaphore_admits_at_most_k() {
    within_hang(|| {
        let sem = Semaphore::new(2);
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    block_on(async {
                        for _ in 0..5_000 {
                            sem.acquire_async().await;
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            inside.fetch_sub(1, Ordering::SeqCst);
                            sem.release();
                        }
                    })
                });
            }
        });
        assert!((1..=2).contains(&most.into_inner()));
        assert_eq!(sem.value(), 2);
    });
}

#[test]
fn async_event_start_gun() {
    within_hang(|| {
        let start = Event::new();
        let started = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    block_on(start.wait_async());
                    started.fetch_add(1, Ordering::SeqCst);
                });
            }
            thread::sleep(Duration::from_millis(20));
            assert_eq!(started.load(Ordering::SeqCst), 0);
            start.set();
        });
        assert_eq!(started.into_inner(), 4);
    });
}

#[test]
fn a_dropped_acquire_takes_no_permit_and_swallows_no_wake() {
    let sem = Semaphore::new(0);
    let (first_wakes, second_wakes) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
    let mut first = Box::pin(sem.acquire_async());
    let mut second = Box::pin(sem.acquire_async());
    assert!(poll_once(&mut first, &first_wakes).is_pending());
    assert!(poll_once(&mut second, &second_wakes).is_pending());
    sem.release();
    // The wake reached both; the first is dropped without taking the permit.
    assert_eq!(first_wakes.0.load(Ordering::SeqCst), 1);
    assert_eq!(second_wakes.0.load(Ordering::SeqCst), 1);
    drop(first);
    assert_eq!(sem.value(), 1);
    assert!(poll_once(&mut second, &second_wakes).is_ready());
    assert_eq!(sem.value(), 0);
}

#[test]
fn a_dropped_lock_future_leaves_the_lock_to_the_next() {
    let lock = Lock::new();
    let held = lock.lock().unwrap();
    let wakes = Arc::new(Counter::default());
    let mut dropped = Box::pin(lock.lock_async());
    assert!(poll_once(&mut dropped, &wakes).is_pending());
    let mut next = Box::pin(lock.lock_async());
    assert!(poll_once(&mut next, &wakes).is_pending());
    drop(dropped);
    drop(held);
    assert!(wakes.0.load(Ordering::SeqCst) >= 1);
    match poll_once(&mut next, &wakes) {
        Poll::Ready(Ok(guard)) => drop(guard),
        other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
    }
    assert!(!lock.is_locked());
}

#[test]
fn timeouts_come_from_a_timer_future() {
    within_hang(|| {
        let sem = Semaphore::new(0);
        let event = Event::new();
        let lock = Lock::new();
        let _held = lock.lock().unwrap();
        let short = embassy_time::Duration::from_millis(20);
        block_on(async {
            assert!(embassy_time::with_timeout(short, sem.acquire_async())
                .await
                .is_err());
            assert!(embassy_time::with_timeout(short, event.wait_async())
                .await
                .is_err());
            assert!(embassy_time::with_timeout(short, lock.lock_async())
                .await
                .is_err());
        });
        // Nothing was taken by the futures that timed out.
        assert_eq!(sem.value(), 0);
        sem.release();
        block_on(sem.acquire_async());
    });
}

#[test]
fn async_condition_hands_items_over_exactly() {
    within_hang(|| {
        let lock = Lock::new();
        let ready = Condition::new();
        let items = Value::<u32>::new(0);
        let (taken, woken, notified) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let done = Value::<u32>::new(0);
        thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    block_on(async {
                        let mut held = lock.lock_async().await.unwrap();
                        loop {
                            if items.get() > 0 {
                                items.set(items.get() - 1);
                                taken.fetch_add(1, Ordering::SeqCst);
                            } else if done.get() == 1 {
                                return;
                            } else {
                                held = ready.wait_async(held).await.unwrap();
                                woken.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                });
            }
            for _ in 0..2_000 {
                let _held = lock.lock().unwrap();
                items.set(items.get() + 1);
                notified.fetch_add(ready.notify(1), Ordering::SeqCst);
            }
            let _held = lock.lock().unwrap();
            done.set(1);
            notified.fetch_add(ready.notify_all(), Ordering::SeqCst);
        });
        assert_eq!(taken.into_inner(), 2_000);
        // Every return from a wait was a wake-up a notify counted.
        assert_eq!(woken.into_inner(), notified.into_inner());
    });
}

#[test]
fn a_dropped_condition_wait_passes_its_wake_up_on() {
    within_hang(|| {
        let lock = Lock::new();
        let ready = Condition::new();
        let wakes = Arc::new(Counter::default());
        let mut dropped = Box::pin(ready.wait_async(lock.lock().unwrap()));
        assert!(poll_once(&mut dropped, &wakes).is_pending());
        let mut next = Box::pin(ready.wait_async(lock.lock().unwrap()));
        assert!(poll_once(&mut next, &wakes).is_pending());
        // The notify chooses the older waiter, whose future is then dropped: the wake-up
        // goes to the other.
        assert_eq!(ready.notify(1), 1);
        drop(dropped);
        match poll_once(&mut next, &wakes) {
            Poll::Ready(Ok(guard)) => drop(guard),
            other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
        }
        assert!(!lock.is_locked());
        assert_eq!(ready.notify(1), 0, "a dropped wait left a waiter behind");
    });
}

#[test]
fn async_barrier_generations() {
    within_hang(|| {
        let barrier = Barrier::new(3);
        let leaders = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    block_on(async {
                        for _ in 0..1_000 {
                            if barrier.wait_async().await.unwrap().is_leader() {
                                leaders.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                });
            }
        });
        assert_eq!(leaders.into_inner(), 1_000);
    });
}

#[test]
fn a_dropped_barrier_wait_breaks_the_barrier() {
    within_hang(|| {
        let barrier = Barrier::new(2);
        let wakes = Arc::new(Counter::default());
        let mut left = Box::pin(barrier.wait_async());
        assert!(poll_once(&mut left, &wakes).is_pending());
        drop(left); // it arrived and left: the others must not count it
        assert_eq!(block_on(barrier.wait_async()), Err(BarrierError::Broken));
        barrier.reset();
        let mut first = Box::pin(barrier.wait_async());
        assert!(poll_once(&mut first, &wakes).is_pending());
        assert!(block_on(barrier.wait_async()).unwrap().is_leader());
        assert!(matches!(poll_once(&mut first, &wakes), Poll::Ready(Ok(_))));
    });
}

#[test]
fn async_rwlock_never_lets_a_writer_in_with_a_reader() {
    within_hang(|| {
        let lock = RwLock::new();
        let (low, high, torn) = (
            Value::<u64>::new(0),
            Value::<u64>::new(0),
            AtomicUsize::new(0),
        );
        thread::scope(|s| {
            for worker in 0..4 {
                let (lock, low, high, torn) = (&lock, &low, &high, &torn);
                s.spawn(move || {
                    block_on(async {
                        for _ in 0..5_000 {
                            if worker == 0 {
                                let _writing = lock.write_async().await.unwrap();
                                low.set(low.get() + 1);
                                high.set(low.get());
                            } else {
                                let _reading = lock.read_async().await.unwrap();
                                if low.get() != high.get() {
                                    torn.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                    })
                });
            }
        });
        assert_eq!(torn.into_inner(), 0);
        assert_eq!(low.get(), 5_000);
        assert!(!lock.is_locked());
    });
}

#[test]
fn a_dropped_write_lets_the_readers_in() {
    within_hang(|| {
        let lock = RwLock::new();
        let reading = lock.read().unwrap();
        let wakes = Arc::new(Counter::default());
        let mut write = Box::pin(lock.write_async());
        // It shuts new readers out while it waits for this one.
        assert!(poll_once(&mut write, &wakes).is_pending());
        assert!(lock.try_read().is_err());
        drop(write);
        assert!(lock.try_read().is_ok(), "a dropped write kept readers out");
        drop(reading);
        assert!(block_on(lock.write_async()).is_ok());
    });
}

/// The queue's async forms: tasks that put and get, futures dropped half-way, a close
/// that wakes a pending get.
mod queue {
    use super::{block_on, poll_once, within_hang, Counter};
    use shmsync_core::embassy::Queue;
    use shmsync_core::Closed;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::task::Poll;
    use std::thread;

    #[test]
    fn async_producers_and_consumers_lose_nothing() {
        within_hang(|| {
            static Q: Queue<u64, 4> = Queue::new();
            const EACH: u64 = 20_000;
            let sums: Vec<u64> = thread::scope(|s| {
                let producers: Vec<_> = (0..2u64)
                    .map(|p| {
                        s.spawn(move || {
                            block_on(async {
                                for n in 0..EACH {
                                    Q.put_async(p * EACH + n).await.unwrap();
                                }
                            })
                        })
                    })
                    .collect();
                let consumers: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            block_on(async {
                                let mut sum = 0;
                                while let Ok(item) = Q.get_async().await {
                                    sum += item;
                                    Q.task_done().unwrap();
                                }
                                sum
                            })
                        })
                    })
                    .collect();
                for producer in producers {
                    producer.join().unwrap();
                }
                block_on(Q.join_async()); // every item taken and marked done
                Q.close();
                consumers.into_iter().map(|c| c.join().unwrap()).collect()
            });
            let n = 2 * EACH;
            assert_eq!(sums.iter().sum::<u64>(), n * (n - 1) / 2);
        });
    }

    #[test]
    fn a_dropped_get_takes_nothing_and_close_wakes_a_pending_one() {
        let q: Queue<u32, 2> = Queue::new();
        let wakes = Arc::new(Counter::default());
        {
            let mut dropped = Box::pin(q.get_async());
            assert!(poll_once(&mut dropped, &wakes).is_pending());
        }
        q.put(5).unwrap();
        assert_eq!(q.qsize(), 1, "the dropped get took nothing");
        assert_eq!(q.try_get(), Ok(5));
        let mut pending = Box::pin(q.get_async());
        assert!(poll_once(&mut pending, &wakes).is_pending());
        let before = wakes.0.load(Ordering::SeqCst);
        q.close();
        assert!(
            wakes.0.load(Ordering::SeqCst) > before,
            "close woke the task"
        );
        assert_eq!(
            poll_once(&mut pending, &wakes),
            Poll::Ready(Err(Closed(())))
        );
        let mut put = Box::pin(q.put_async(1));
        assert_eq!(poll_once(&mut put, &wakes), Poll::Ready(Err(Closed(1))));
    }

    #[test]
    fn a_pending_put_is_woken_by_a_get() {
        let q: Queue<u32, 1> = Queue::new();
        q.put(1).unwrap();
        let wakes = Arc::new(Counter::default());
        let mut put = Box::pin(q.put_async(2));
        assert!(poll_once(&mut put, &wakes).is_pending());
        assert_eq!(q.get(), Ok(1));
        assert!(wakes.0.load(Ordering::SeqCst) > 0, "the get woke the task");
        assert_eq!(poll_once(&mut put, &wakes), Poll::Ready(Ok(())));
        assert_eq!(q.get(), Ok(2));
    }
}
