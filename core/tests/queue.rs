//! The queue under real std threads on the host (its async forms: `tasks.rs`).
#![cfg(not(loom))]

#[allow(dead_code)] // the other primitives' aliases
mod common;

use common::{within_hang, Yield};
use shmsync_core::{pod_struct, Closed, GetError, NoTaskPending, PutError, Unowned};
use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

type Queue<T, const N: usize> = shmsync_core::Queue<T, N, Yield, Unowned>;

/// An item that says who put it and in which order.
fn item(producer: u64, n: u64) -> u64 {
    producer << 32 | n
}

#[test]
fn items_come_out_in_order_and_the_capacity_holds() {
    let q: Queue<u64, 3> = Queue::new();
    assert_eq!(q.capacity(), 3);
    for round in 0..10 {
        for n in 0..3 {
            q.try_put(round * 10 + n).unwrap();
        }
        assert!(q.full());
        assert_eq!(q.try_put(99), Err(PutError::Full(99)));
        for n in 0..3 {
            assert_eq!(q.try_get(), Ok(round * 10 + n));
        }
        assert!(q.empty());
        assert_eq!(q.try_get(), Err(GetError::Empty));
    }
}

pod_struct! {
    #[derive(Debug, PartialEq)]
    struct Odd {
        wide: u64,
        seven: [u8; 7],
        one: u8,
        pair: [u16; 3],
        tail: [u8; 2],
    }
}

#[test]
fn items_of_any_plain_shape_round_trip_byte_for_byte() {
    let q: Queue<Odd, 2> = Queue::new();
    let odd = |k: u8| Odd {
        wide: u64::MAX - u64::from(k),
        seven: [k; 7],
        one: !k,
        pair: [u16::from(k) << 8 | 0xa5; 3],
        tail: [k, k ^ 0xff],
    };
    for k in 0..=255u8 {
        q.put(odd(k)).unwrap();
        assert_eq!(q.get(), Ok(odd(k)));
    }
    let bytes: Queue<[u8; 13], 4> = Queue::new();
    bytes.put(*b"hello, world!").unwrap();
    assert_eq!(&bytes.get().unwrap(), b"hello, world!");
    let nothing: Queue<(), 2> = Queue::new();
    nothing.put(()).unwrap();
    assert_eq!((nothing.qsize(), nothing.get()), (1, Ok(())));
}

#[test]
fn two_producers_two_consumers_deliver_each_item_once_in_each_producers_order() {
    within_hang(|| {
        const EACH: u64 = 200_000;
        let q: Queue<u64, 16> = Queue::new();
        let taken: Vec<Vec<u64>> = thread::scope(|s| {
            for producer in 0..2 {
                let q = &q;
                s.spawn(move || {
                    for n in 0..EACH {
                        q.put(item(producer, n)).unwrap();
                    }
                });
            }
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut taken = Vec::new();
                        while let Ok(item) = q.get() {
                            taken.push(item);
                        }
                        taken
                    })
                })
                .collect();
            while q.unfinished_tasks() < 2 * EACH as usize {
                thread::yield_now();
            }
            q.close();
            consumers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let mut seen = HashSet::new();
        for consumer in &taken {
            // What one consumer took, it took in each producer's order.
            let mut last = [None::<u64>; 2];
            for &item in consumer {
                let (producer, n) = ((item >> 32) as usize, item & 0xffff_ffff);
                assert!(last[producer].is_none_or(|l| l < n), "out of order");
                last[producer] = Some(n);
                assert!(seen.insert(item), "{item:#x} delivered twice");
            }
        }
        assert_eq!(seen.len() as u64, 2 * EACH, "items lost");
    });
}

#[test]
fn close_wakes_every_waiter_and_lets_the_items_left_drain() {
    within_hang(|| {
        let empty: Queue<u32, 2> = Queue::new();
        let full: Queue<u32, 1> = Queue::new();
        full.put(1).unwrap();
        thread::scope(|s| {
            let getters: Vec<_> = (0..2).map(|_| s.spawn(|| empty.get())).collect();
            let full = &full;
            let putters: Vec<_> = (0..2).map(|k| s.spawn(move || full.put(10 + k))).collect();
            thread::sleep(Duration::from_millis(20)); // all asleep
            empty.close();
            full.close();
            for getter in getters {
                assert_eq!(getter.join().unwrap(), Err(Closed(())));
            }
            let mut back: Vec<u32> = putters
                .into_iter()
                .map(|p| p.join().unwrap().unwrap_err().into_inner())
                .collect();
            back.sort();
            assert_eq!(back, [10, 11], "a put that failed gives its item back");
        });
        // Closed: no more puts; the item already in comes out, then Closed.
        assert!(full.is_closed());
        assert_eq!(full.try_put(3), Err(PutError::Closed(3)));
        assert_eq!(full.get(), Ok(1));
        assert_eq!(full.try_get(), Err(GetError::Closed));
        full.close(); // again: nothing changes
        assert_eq!(full.get(), Err(Closed(())));
    });
}

#[test]
fn timed_calls_wait_their_time_then_give_up() {
    let q: Queue<u8, 1> = Queue::new();
    let timeout = Duration::from_millis(20);
    let began = Instant::now();
    assert_eq!(q.get_timeout(timeout), Err(GetError::Empty));
    assert!(began.elapsed() >= timeout);
    q.put(7).unwrap();
    let began = Instant::now();
    assert_eq!(q.put_timeout(8, timeout), Err(PutError::Full(8)));
    assert!(began.elapsed() >= timeout);
    // One that is answered in time succeeds.
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(5));
            q.get().unwrap()
        });
        assert_eq!(q.put_timeout(9, Duration::from_secs(10)), Ok(()));
    });
    assert_eq!(q.get_timeout(Duration::from_secs(10)), Ok(9));
}

#[test]
fn join_waits_for_one_task_done_per_item() {
    within_hang(|| {
        let q: Queue<u32, 4> = Queue::new();
        assert_eq!(q.task_done(), Err(NoTaskPending));
        for n in 0..3 {
            q.put(n).unwrap();
        }
        assert_eq!(q.unfinished_tasks(), 3);
        assert!(!q.join_timeout(Duration::from_millis(5)));
        thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..3 {
                    q.get().unwrap();
                    thread::sleep(Duration::from_millis(2));
                    q.task_done().unwrap();
                }
            });
            q.join();
            assert_eq!(q.unfinished_tasks(), 0);
        });
        assert_eq!(q.task_done(), Err(NoTaskPending), "more calls than items");
        assert!(q.join_timeout(Duration::ZERO));
    });
}

#[test]
fn errors_print_a_sentence() {
    let full: PutError<u8> = PutError::Full(1);
    assert!(full.to_string().contains("full"));
    assert!(GetError::Empty.to_string().contains("empty"));
    assert!(Closed(()).to_string().contains("closed"));
    assert!(NoTaskPending.to_string().contains("task_done"));
    assert_eq!(format!("{:?}", PutError::Closed(5u8)), "Closed(..)");
}

#[test]
fn the_layout_names_the_items_and_the_backend() {
    use shmsync_core::ShmSafe;
    type Spun<T, const N: usize> = shmsync_core::spin::Queue<T, N>;
    let layout = <Spun<u16, 2> as ShmSafe>::LAYOUT;
    assert_eq!(
        layout.description().as_str(),
        "shmsync_core::Queue (28 bytes, align 4) { lock: Lock<Spin, Unowned>@0, tail: u32@8, \
         head: u32@12, done: u32@16, slots: [shmsync_core::queue::Slot { item: u16@0 }; 2]@20 }"
    );
    // Another item type, capacity or backend is another layout.
    let others = [
        <Spun<i16, 2> as ShmSafe>::LAYOUT,
        <Spun<u16, 3> as ShmSafe>::LAYOUT,
        <Queue<u16, 2> as ShmSafe>::LAYOUT,
    ];
    for other in others {
        assert_ne!(
            other.fingerprint(),
            layout.fingerprint(),
            "{}",
            other.description()
        );
    }
}
