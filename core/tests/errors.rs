//! Bad input gets a typed error and leaves the state as it was.
#![cfg(not(loom))]

use shmsync_core::spin::{Array, BoundedSemaphore, Lock, Semaphore};
use shmsync_core::{ArrayError, IndexError, NotHeld, OverRelease, RangeError};
use std::error::Error;

fn message(error: &dyn Error) -> String {
    error.to_string()
}

#[test]
fn array_index_out_of_range() {
    let array: Array<i32, 3> = Array::new([1, 2, 3]);
    assert_eq!(array.get(3), Err(IndexError { index: 3, len: 3 }));
    assert_eq!(
        array.set(usize::MAX, 9),
        Err(ArrayError::Index(IndexError {
            index: usize::MAX,
            len: 3
        }))
    );
    assert_eq!(
        array.lock().unwrap().set(3, 9),
        Err(IndexError { index: 3, len: 3 })
    );
    assert_eq!(array.snapshot(), Ok([1, 2, 3]));
    assert_eq!(
        message(&array.get(5).unwrap_err()),
        "index 5 is out of range for an array of length 3"
    );
}

#[test]
fn array_runs_that_do_not_fit_write_nothing() {
    let array: Array<u16, 4> = Array::new([1, 2, 3, 4]);
    assert_eq!(
        array.write(2, &[9, 9, 9]),
        Err(ArrayError::Range(RangeError {
            start: 2,
            count: 3,
            len: 4
        }))
    );
    assert_eq!(
        array.write(usize::MAX, &[9]),
        Err(ArrayError::Range(RangeError {
            start: usize::MAX,
            count: 1,
            len: 4
        }))
    );
    assert_eq!(array.snapshot(), Ok([1, 2, 3, 4]));

    let mut out = [7u16; 5];
    assert_eq!(
        array.read(0, &mut out),
        Err(ArrayError::Range(RangeError {
            start: 0,
            count: 5,
            len: 4
        }))
    );
    assert_eq!(out, [7; 5]);
    assert!(message(&array.write(2, &[0; 3]).unwrap_err()).contains("nothing was written"));

    // Empty runs fit anywhere up to the end.
    assert_eq!(array.write(4, &[]), Ok(()));
}

#[test]
fn byte_strings_longer_than_the_array_are_refused() {
    let name: Array<u8, 4> = Array::zeroed();
    name.set_value(b"abcd").unwrap(); // exactly full: no NUL, as in Python
    assert_eq!(name.value().unwrap().as_slice(), b"abcd");
    assert_eq!(
        name.set_value(b"abcde"),
        Err(ArrayError::Range(RangeError {
            start: 0,
            count: 5,
            len: 4
        }))
    );
    assert_eq!(name.snapshot(), Ok(*b"abcd"));
    name.set_value(b"x").unwrap();
    assert_eq!(name.value().unwrap().as_slice(), b"x");
    assert_eq!(name.snapshot(), Ok(*b"x\0cd")); // Python leaves the tail too
}

#[test]
fn releasing_an_unheld_lock() {
    let lock: Lock = Lock::new();
    assert_eq!(lock.release(), Err(NotHeld));
    assert!(!lock.is_locked());
    lock.acquire().unwrap();
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(NotHeld));
    assert!(!lock.is_locked());
    assert!(message(&NotHeld).contains("not held"));
}

#[test]
fn over_releasing_a_bounded_semaphore() {
    let sem: BoundedSemaphore = BoundedSemaphore::new(3);
    assert!(sem.try_acquire());
    assert_eq!(
        sem.release_n(2),
        Err(OverRelease {
            released: 2,
            value: 2,
            bound: 3
        })
    );
    assert_eq!(sem.value(), 2);
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(
        sem.release(),
        Err(OverRelease {
            released: 1,
            value: 3,
            bound: 3
        })
    );
    assert_eq!(sem.value(), 3);
    assert_eq!(
        message(&sem.release().unwrap_err()),
        "releasing 1 permit(s) would raise the semaphore from 3 above its bound of 3; \
         each release must match one acquire"
    );
}

#[test]
#[should_panic(expected = "above its bound of 4294967295")]
fn overflowing_a_semaphore_is_a_bug() {
    let sem: Semaphore = Semaphore::new(u32::MAX);
    sem.release();
}
