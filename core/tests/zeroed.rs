//! All-zero bytes, what a fresh shared mapping holds, are each type's plain value: what
//! a value built in place (the hosted crate's `Shared::*_with`) starts as.
#![cfg(not(loom))]

mod common;

use common::yielding::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RwLock, Semaphore, Value,
};
use common::{within_hang, Yield};
use core::mem::MaybeUninit;
use shmsync_core::{
    shm_struct, BarrierError, Queue, ShmSafe, TrackedBoundedSemaphore, TrackedSemaphore, Unowned,
};

/// A `T` made of zero bytes, as a fresh mapping holds it.
fn zeroed<T: ShmSafe>() -> T {
    // SAFETY: a `ShmSafe` type is valid for every bit pattern, zeros included.
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

#[test]
fn zeroed_types_are_their_plain_values() {
    let lock = zeroed::<Lock>();
    assert!(!lock.is_locked());
    drop(lock.lock().unwrap());

    let event = zeroed::<Event>();
    assert!(!event.is_set());
    event.set();
    assert!(event.is_set());

    let semaphore = zeroed::<Semaphore>();
    assert!(!semaphore.try_acquire());
    semaphore.release();
    assert!(semaphore.try_acquire());

    let bounded = zeroed::<BoundedSemaphore>();
    assert!(!bounded.try_acquire());
    assert!(bounded.release().is_err(), "the bound of 0 let a permit in");

    let value = zeroed::<Value<f64>>();
    assert_eq!(value.get(), 0.0);
    let array = zeroed::<Array<i16, 3>>();
    assert_eq!(array.snapshot(), Ok([0; 3]));

    let queue = zeroed::<Queue<u32, 2, Yield, Unowned>>();
    assert!(queue.empty() && !queue.is_closed());
    queue.put(7).unwrap();
    queue.put(8).unwrap();
    assert_eq!(queue.qsize(), 2);
    assert_eq!(queue.get(), Ok(7));
    queue.task_done().unwrap();
}

#[test]
fn zeroed_conditions_and_readers_writer_locks_are_new() {
    within_hang(|| {
        let lock = zeroed::<Lock>();
        let condition = zeroed::<Condition>();
        assert_eq!(condition.notify_all(), 0, "a zeroed condition has waiters");
        let held = condition.wait_for(lock.lock().unwrap(), || true).unwrap();
        drop(held);

        let rwlock = zeroed::<RwLock>();
        assert!(!rwlock.is_locked());
        let (first, second) = (rwlock.read().unwrap(), rwlock.read().unwrap());
        assert!(rwlock.try_write().is_err());
        drop((first, second));
        drop(rwlock.write().unwrap());
    });
}

#[test]
fn a_zeroed_barrier_has_no_parties_until_given_them() {
    within_hang(|| {
        // No number of parties is a sensible default: zero bytes are a barrier of none,
        // broken for every wait (never one that lets everyone through), until the value
        // built in place is given its parties.
        let mut barrier = zeroed::<Barrier>();
        assert_eq!(barrier.parties(), 0);
        assert_eq!(barrier.wait(), Err(BarrierError::Broken));
        barrier = Barrier::new(1);
        assert!(barrier.wait().unwrap().is_leader());
    });
}

#[test]
fn zeroed_tracked_semaphores_are_new_0() {
    // The unbounded one takes any number of releases, as `new(0)` does...
    let tracked = zeroed::<TrackedSemaphore<Yield, Unowned>>();
    assert_eq!(tracked.value(), 0);
    assert!(!tracked.try_acquire());
    tracked.release_n(5);
    assert_eq!(tracked.value(), 5);
    let permit = tracked.permit();
    assert_eq!(tracked.value(), 4);
    drop(permit);
    assert_eq!(tracked.value(), 5);

    // ...and the bounded one none past its bound of 0.
    let bounded = zeroed::<TrackedBoundedSemaphore<Yield, Unowned>>();
    assert_eq!((bounded.value(), bounded.bound()), (0, 0));
    assert!(bounded.release().is_err());
}

shm_struct! {
    struct Mixed {
        lock: Lock,
        counts: [Value<u32>; 2],
        raw: [u64; 3],
    }
}

#[test]
fn zeroed_shm_structs_are_their_fields_zeroed() {
    let mixed = zeroed::<Mixed>();
    assert!(!mixed.lock.is_locked());
    assert_eq!(mixed.counts[1].get(), 0);
    assert_eq!(mixed.raw, [0; 3]);
}
