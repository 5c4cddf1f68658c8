//! One shared scalar, as Python's `multiprocessing.Value`.
//!
//! ```
//! use shmsync_core::spin::Value;
//!
//! static COUNTER: Value<i32> = Value::new(0); // Value('i', 0)
//! COUNTER.fetch_add(1);                      // lock-free, never loses an update
//! COUNTER.update(|v| v * 10).unwrap();       // any function, under the value's lock
//! assert_eq!(COUNTER.get(), 10);
//! ```

use core::fmt;
use core::marker::PhantomData;

use crate::error::DataError;
use crate::lock::Lock;
use crate::owner::Owner;
use crate::scalar::sealed::AtomicBits;
use crate::scalar::{Bitwise, Number, Scalar};
use crate::sync::Ordering;

// A write publishes everything before it to the read that sees it (release/acquire),
// which is what code under a lock, or handing data over through a value, relies on.
// Read-modify-writes are single atomic instructions either way.
const READ: Ordering = Ordering::Acquire;
const WRITE: Ordering = Ordering::Release;
const MODIFY: Ordering = Ordering::AcqRel;
use crate::wait::Wait;

/// A scalar shared between threads or processes, with a lock of its own.
///
/// `T` is one of the types behind Python's typecodes (see [`Scalar`]). Reads, writes and
/// `fetch_*` arithmetic are single atomic instructions where the width is native.
/// [`update`](Self::update) applies any function without losing a concurrent change:
/// the `v.value += 1` that loses updates in Python (cpython #106691) cannot lose them
/// here.
///
/// `#[repr(C)]`: a [`Lock`] followed by the value's bits (with [`Unowned`](crate::Unowned), 8 bytes for
/// a 32-bit `T` and 16 for a 64-bit one).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Value;
///
/// let hits: Value<u64> = Value::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| for _ in 0..1000 { hits.update(|v| v + 1).unwrap(); });
///     }
/// });
/// assert_eq!(hits.get(), 4000);
/// ```
#[repr(C)]
pub struct Value<T: Scalar, W, O: Owner> {
    lock: Lock<W, O>,
    bits: T::Atomic,
    _type: PhantomData<T>,
}

impl<T: Scalar, W, O: Owner> Value<T, W, O> {
    /// A value holding `value` (Python's `Value(typecode, value)`).
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Self {
        // SAFETY: `Bits` promises that `T` and `T::Atomic` have the same size and that
        // `T`'s bytes are a valid `T::Atomic` holding `T::to_bits(value)`.
        let bits = unsafe { core::mem::transmute_copy::<T, T::Atomic>(&value) };
        Value {
            lock: Lock::new(),
            bits,
            _type: PhantomData,
        }
    }

    /// A value holding `value` (Python's `Value(typecode, value)`).
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Value {
            lock: Lock::new(),
            bits: T::Atomic::new(value.to_bits()),
            _type: PhantomData,
        }
    }

    /// The current value (Python's `v.value`).
    pub fn get(&self) -> T {
        T::from_bits(self.bits.load(READ))
    }

    /// Replaces the value (Python's `v.value = x`).
    pub fn set(&self, value: T) {
        self.bits.store(value.to_bits(), WRITE)
    }

    /// Replaces the value and returns the old one.
    pub fn swap(&self, value: T) -> T {
        T::from_bits(self.bits.swap(value.to_bits(), MODIFY))
    }

    /// Stores `new` if the value is `current` (compared bit for bit, which matters for
    /// floats: `-0.0` is not `0.0`, and a NaN can match; a `bool` compares by value, so
    /// any non-zero byte is `true`). Returns the previous value: `Ok` if it was
    /// `current`, `Err` otherwise.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        let wanted = current.to_bits();
        let mut seen = wanted;
        loop {
            match self
                .bits
                .compare_exchange(seen, new.to_bits(), MODIFY, READ)
            {
                Ok(_) => return Ok(T::from_bits(seen)),
                // Another pattern of the same value (a `bool` byte 2 a peer wrote):
                // it is `current`, so try again with that pattern.
                Err(now) if !T::ONE_PATTERN_PER_VALUE && T::canonical(now) == wanted => seen = now,
                Err(now) => return Err(T::from_bits(now)),
            }
        }
    }

    /// Replaces the value with `f(value)` by compare-and-swap, calling `f` again if
    /// another writer got in first. Returns the previous and the new value.
    fn modify(&self, mut f: impl FnMut(T) -> T) -> (T, T) {
        let mut current = self.bits.load(READ);
        loop {
            let new = f(T::from_bits(current));
            match self
                .bits
                .compare_exchange(current, new.to_bits(), MODIFY, READ)
            {
                Ok(_) => return (T::from_bits(current), new),
                Err(now) => current = now,
            }
        }
    }

    /// The value's lock (Python's `get_lock()`), for updates that span several values.
    ///
    /// It is not re-entrant: [`update`](Self::update) takes it, so do not call `update`
    /// while holding it. `get`, `set` and the `fetch_*` operations never take it.
    pub fn get_lock(&self) -> &Lock<W, O> {
        &self.lock
    }
}

impl<T: Scalar, W: Wait, O: Owner> Value<T, W, O> {
    /// Applies `f` to the value under the value's lock and returns the new value.
    ///
    /// Nothing is lost, by construction: writers that hold the lock are serialised, and
    /// the store is a compare-and-swap, so a lock-free writer (`set`, `fetch_add`) that
    /// slips in between the read and the write makes `f` run again on its result
    /// rather than being overwritten.
    ///
    /// # Errors
    ///
    /// If a holder of [`get_lock`](Self::get_lock) died holding it, the data it guards
    /// (this value, and whatever else the program keeps under that lock) may be
    /// half-updated: `f` does not run, the result is [`DataError::OwnerDied`], and the
    /// next `get_lock().lock()` is told the owner died, to repair the data. `update`
    /// never decides on its own that the data is consistent.
    pub fn update(&self, f: impl FnMut(T) -> T) -> Result<T, DataError> {
        self.lock.run_locked(|| self.modify(f).1)
    }
}

impl<T: Number, W, O: Owner> Value<T, W, O> {
    /// Adds `delta` and returns the previous value. Integers wrap around on overflow.
    pub fn fetch_add(&self, delta: T) -> T {
        if T::NATIVE_ADD {
            T::from_bits(self.bits.fetch_add(delta.to_bits(), MODIFY))
        } else {
            self.modify(|v| v.add(delta)).0
        }
    }

    /// Subtracts `delta` and returns the previous value. Integers wrap around.
    pub fn fetch_sub(&self, delta: T) -> T {
        if T::NATIVE_ADD {
            T::from_bits(self.bits.fetch_sub(delta.to_bits(), MODIFY))
        } else {
            self.modify(|v| v.sub(delta)).0
        }
    }
}

impl<T: Bitwise, W, O: Owner> Value<T, W, O> {
    /// Bitwise and; returns the previous value.
    pub fn fetch_and(&self, bits: T) -> T {
        if T::ONE_PATTERN_PER_VALUE {
            T::from_bits(self.bits.fetch_and(bits.to_bits(), MODIFY))
        } else {
            self.modify(|v| v.and(bits)).0
        }
    }

    /// Bitwise or; returns the previous value.
    pub fn fetch_or(&self, bits: T) -> T {
        if T::ONE_PATTERN_PER_VALUE {
            T::from_bits(self.bits.fetch_or(bits.to_bits(), MODIFY))
        } else {
            self.modify(|v| v.or(bits)).0
        }
    }

    /// Bitwise exclusive or; returns the previous value.
    pub fn fetch_xor(&self, bits: T) -> T {
        if T::ONE_PATTERN_PER_VALUE {
            T::from_bits(self.bits.fetch_xor(bits.to_bits(), MODIFY))
        } else {
            self.modify(|v| v.xor(bits)).0
        }
    }
}

impl<T: Scalar + Default, W, O: Owner> Default for Value<T, W, O> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Scalar, W, O: Owner> fmt::Debug for Value<T, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Value").field(&self.get()).finish()
    }
}
