//! The shared footprint and layout of each type: small, fixed and position-independent.
#![cfg(not(loom))]

use core::mem::{align_of, size_of};
use shmsync_core::spin::{Array, BoundedSemaphore, Event, Lock, Semaphore, Value};
use shmsync_core::ShmSafe;

#[test]
fn sizes_are_as_documented() {
    assert_eq!(size_of::<Lock>(), 4);
    assert_eq!(size_of::<Event>(), 4);
    assert_eq!(size_of::<Semaphore>(), 8);
    assert_eq!(size_of::<BoundedSemaphore>(), 12);
    assert_eq!(size_of::<Value<u8>>(), 8);
    assert_eq!(size_of::<Value<i32>>(), 8);
    assert_eq!(size_of::<Value<f64>>(), 16);
    assert_eq!(size_of::<Array<u8, 16>>(), 20);
    assert_eq!(size_of::<Array<u64, 4>>(), 40);
    assert_eq!(align_of::<Lock>(), 4);
    assert_eq!(align_of::<Value<u64>>(), 8);
}

fn assert_shareable<T: ShmSafe + Send + Sync>() {}

#[test]
fn every_type_may_be_shared() {
    assert_shareable::<Lock>();
    assert_shareable::<Event>();
    assert_shareable::<Semaphore>();
    assert_shareable::<BoundedSemaphore>();
    assert_shareable::<Value<f32>>();
    assert_shareable::<Array<bool, 3>>();
    assert_shareable::<[Value<u16>; 2]>();
}

/// The state is bytes and nothing else: copied to another address (as a second process
/// sees it), it means the same.
#[test]
fn state_means_the_same_at_another_address() {
    let lock: Lock = Lock::new();
    let sem: Semaphore = Semaphore::new(5);
    let value: Value<i16> = Value::new(-7);
    core::mem::forget(lock.lock().unwrap());
    sem.acquire();

    let moved_lock: Lock = unsafe { core::ptr::read(&lock) };
    let moved_sem: Semaphore = unsafe { core::ptr::read(&sem) };
    let moved_value: Value<i16> = unsafe { core::ptr::read(&value) };
    assert!(moved_lock.is_locked());
    assert_eq!(moved_lock.release(), Ok(()));
    assert_eq!(moved_sem.value(), 4);
    assert_eq!(moved_value.get(), -7);
}

#[test]
fn constructors_are_const() {
    static LOCK: Lock = Lock::new();
    static EVENT: Event = Event::new();
    static SEM: BoundedSemaphore = BoundedSemaphore::new(2);
    static RATIO: Value<f64> = Value::new(0.5);
    static NAME: Array<u8, 8> = Array::new(*b"shmsync\0");
    static ZEROS: Array<i64, 3> = Array::zeroed();
    assert!(!LOCK.is_locked());
    assert!(!EVENT.is_set());
    assert_eq!(SEM.value(), 2);
    assert_eq!(RATIO.get(), 0.5);
    assert_eq!(NAME.value().unwrap().as_slice(), b"shmsync");
    assert_eq!(ZEROS.snapshot(), Ok([0; 3]));
}
