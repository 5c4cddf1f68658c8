//! A fixed-size shared array, as Python's `multiprocessing.Array`.
//!
//! ```
//! use shmsync_core::spin::Array;
//!
//! static SAMPLES: Array<f64, 4> = Array::zeroed(); // Array('d', 4)
//! SAMPLES.write(0, &[1.0, 2.0]).unwrap();         // one atomic multi-item write
//! assert_eq!(SAMPLES.snapshot(), Ok([1.0, 2.0, 0.0, 0.0]));
//! assert!(SAMPLES.set(4, 9.0).is_err());           // out of range: an error, not a panic
//! ```

use core::fmt;
use core::marker::PhantomData;

use crate::error::{ArrayError, DataError, IndexError, LockError, RangeError, TryLockError};
use crate::lock::{Lock, LockGuard, LockResult, TryLockResult};
use crate::owner::Owner;
use crate::scalar::sealed::AtomicBits;
use crate::scalar::Scalar;
use crate::sync::Ordering;

// A write publishes everything before it to the read that sees it (release/acquire),
// which is what code under a lock, or handing data over through a value, relies on.
const READ: Ordering = Ordering::Acquire;
const WRITE: Ordering = Ordering::Release;
use crate::wait::{Timed, Wait};

/// `N` scalars shared between threads or processes, with a lock of their own.
///
/// Every write goes through the array's lock, so a [`snapshot`](Self::snapshot) (also
/// taken under the lock) is a state the array really was in: a reader never sees half
/// of a multi-item [`write`](Self::write). A single [`get`](Self::get) is one atomic
/// load and takes no lock. Indexes out of range are errors ([`IndexError`],
/// [`RangeError`]), never panics or silent truncation.
///
/// `#[repr(C)]`: a [`Lock`] followed by `N` items of `T`'s width.
///
/// If a writer dies holding the array's lock, the items may be half-written:
/// [`lock`](Self::lock) reports [`LockError::OwnerDied`] with the guard, to check and
/// repair them. The one-call operations (`set`, `write`, `read`, `snapshot`) never
/// decide that on their own: they do nothing and return [`DataError::OwnerDied`]
/// (inside [`ArrayError::Data`] where the call has other errors too), and leave the
/// news for the next `lock()`.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Array;
///
/// let a: Array<i32, 5> = Array::new([1, 2, 3, 4, 5]); // Array('i', [1, 2, 3, 4, 5])
/// assert_eq!(a.get(2), Ok(3));
/// a.set(2, 30).unwrap();
/// {
///     let mut items = a.lock().unwrap(); // several steps as one
///     let sum = items.get(0).unwrap() + items.get(1).unwrap();
///     items.set(4, sum).unwrap();
/// }
/// assert_eq!(a.snapshot(), Ok([1, 2, 30, 4, 3]));
/// assert_eq!((&a).into_iter().sum::<i32>(), 40);
/// ```
#[repr(C)]
pub struct Array<T: Scalar, const N: usize, W, O: Owner> {
    lock: Lock<W, O>,
    items: [T::Atomic; N],
    _type: PhantomData<T>,
}

/// The locked [`Array`], from [`Array::lock`]: several reads and writes as one step.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Array;
/// let a: Array<u32, 2> = Array::new([5, 0]);
/// let mut items = a.lock().unwrap();
/// let moved = items.get(0).unwrap();
/// items.write(0, &[0, moved]).unwrap();
/// drop(items);
/// assert_eq!(a.snapshot(), Ok([0, 5]));
/// ```
pub struct ArrayGuard<'a, T: Scalar, const N: usize, W: Wait, O: Owner> {
    array: &'a Array<T, N, W, O>,
    guard: LockGuard<'a, W, O>,
}

impl<T: Scalar, const N: usize, W, O: Owner> Array<T, N, W, O> {
    /// An array holding `values` (Python's `Array(typecode, [..])`).
    #[cfg(not(loom))]
    pub const fn new(values: [T; N]) -> Self {
        // SAFETY: `Bits` promises that `T` and `T::Atomic` have the same size and that
        // `T`'s bytes are a valid `T::Atomic`; arrays of them have the same layout too.
        let items = unsafe { core::mem::transmute_copy::<[T; N], [T::Atomic; N]>(&values) };
        Array {
            lock: Lock::new(),
            items,
            _type: PhantomData,
        }
    }

    /// An array holding `values` (Python's `Array(typecode, [..])`).
    #[cfg(loom)]
    pub fn new(values: [T; N]) -> Self {
        let items = core::array::from_fn(|i| T::Atomic::new(values[i].to_bits()));
        Array {
            lock: Lock::new(),
            items,
            _type: PhantomData,
        }
    }

    /// An array of zeros (Python's `Array(typecode, N)`).
    #[cfg(not(loom))]
    pub const fn zeroed() -> Self {
        // SAFETY: every storage type is an unsigned integer atomic, for which all-zero
        // bytes are valid; zero bits are 0, 0.0 or false for every scalar.
        let items = unsafe { core::mem::zeroed::<[T::Atomic; N]>() };
        Array {
            lock: Lock::new(),
            items,
            _type: PhantomData,
        }
    }

    /// An array of zeros (Python's `Array(typecode, N)`).
    #[cfg(loom)]
    pub fn zeroed() -> Self {
        let items = core::array::from_fn(|_| T::Atomic::new(Default::default()));
        Array {
            lock: Lock::new(),
            items,
            _type: PhantomData,
        }
    }

    /// The number of items, `N`.
    pub const fn len(&self) -> usize {
        N
    }

    /// Whether `N` is zero.
    pub const fn is_empty(&self) -> bool {
        N == 0
    }

    /// The item at `index`: one atomic load, no lock.
    pub fn get(&self, index: usize) -> Result<T, IndexError> {
        self.items
            .get(index)
            .map(|item| T::from_bits(item.load(READ)))
            .ok_or(IndexError { index, len: N })
    }

    fn range(start: usize, count: usize) -> Result<core::ops::Range<usize>, RangeError> {
        match start.checked_add(count) {
            Some(end) if end <= N => Ok(start..end),
            _ => Err(RangeError {
                start,
                count,
                len: N,
            }),
        }
    }

    // The item operations, for callers that hold the lock.

    fn store(&self, index: usize, value: T) -> Result<(), IndexError> {
        let item = self.items.get(index).ok_or(IndexError { index, len: N })?;
        item.store(value.to_bits(), WRITE);
        Ok(())
    }

    fn load_all(&self) -> [T; N] {
        core::array::from_fn(|i| T::from_bits(self.items[i].load(READ)))
    }

    /// The items as a debug list, read one at a time as it is printed: a copy of a big
    /// array would not fit on the stack.
    fn items_list(&self) -> impl fmt::Debug + '_ {
        struct Items<'a, T: Scalar, const N: usize, W, O: Owner>(&'a Array<T, N, W, O>);
        impl<T: Scalar, const N: usize, W, O: Owner> fmt::Debug for Items<'_, T, N, W, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(
                        self.0
                            .items
                            .iter()
                            .map(|item| T::from_bits(item.load(READ))),
                    )
                    .finish()
            }
        }
        Items(self)
    }

    fn load_range(&self, start: usize, out: &mut [T]) -> Result<(), RangeError> {
        let range = Self::range(start, out.len())?;
        for (slot, item) in out.iter_mut().zip(&self.items[range]) {
            *slot = T::from_bits(item.load(READ));
        }
        Ok(())
    }

    fn store_range(&self, start: usize, values: &[T]) -> Result<(), RangeError> {
        let range = Self::range(start, values.len())?;
        for (item, value) in self.items[range].iter().zip(values) {
            item.store(value.to_bits(), WRITE);
        }
        Ok(())
    }
}

impl<T: Scalar, const N: usize, W: Wait, O: Owner> Array<T, N, W, O> {
    /// Takes the array's lock (Python's `get_lock()`), for several reads and writes
    /// that must appear as one.
    ///
    /// If a process died holding it, the items may be half-written: the error
    /// [`LockError::OwnerDied`] holds the guard, to check or repair them and then
    /// [`mark_consistent`](ArrayGuard::mark_consistent) (see [`Lock`]).
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> ArrayLockResult<'_, T, N, W, O> {
        self.guarded(self.lock.lock())
    }

    /// Takes the array's lock if it is free right now; [`TryLockError::WouldBlock`] if
    /// not.
    pub fn try_lock(&self) -> ArrayTryLockResult<'_, T, N, W, O> {
        self.try_guarded(self.lock.try_lock())
    }

    fn guarded<'a>(&'a self, taken: LockResult<'a, W, O>) -> ArrayLockResult<'a, T, N, W, O> {
        taken
            .map(|guard| self.wrap(guard))
            .map_err(|error| error.map(|guard| self.wrap(guard)))
    }

    fn try_guarded<'a>(
        &'a self,
        taken: TryLockResult<'a, W, O>,
    ) -> ArrayTryLockResult<'a, T, N, W, O> {
        taken
            .map(|guard| self.wrap(guard))
            .map_err(|error| error.map(|guard| self.wrap(guard)))
    }

    fn wrap<'a>(&'a self, guard: LockGuard<'a, W, O>) -> ArrayGuard<'a, T, N, W, O> {
        ArrayGuard { array: self, guard }
    }

    /// Writes the item at `index` (Python's `a[i] = x`), under the lock.
    pub fn set(&self, index: usize, value: T) -> Result<(), ArrayError> {
        self.lock.run_locked(|| self.store(index, value))??;
        Ok(())
    }

    /// Every item, read under the lock: a state the array was really in. The copy is
    /// returned by value (on the stack): for an array of megabytes, [`read`](Self::read)
    /// it in parts into a buffer instead.
    #[doc(alias = "raw")]
    pub fn snapshot(&self) -> Result<[T; N], DataError> {
        self.lock.run_locked(|| self.load_all())
    }

    /// Copies `out.len()` items from `start` into `out`, under the lock.
    pub fn read(&self, start: usize, out: &mut [T]) -> Result<(), ArrayError> {
        self.lock.run_locked(|| self.load_range(start, out))??;
        Ok(())
    }

    /// Copies `values` into the array from `start`, under the lock; all or nothing.
    pub fn write(&self, start: usize, values: &[T]) -> Result<(), ArrayError> {
        self.lock.run_locked(|| self.store_range(start, values))??;
        Ok(())
    }
}

/// What [`Array::lock`] returns: the locked array, or that an owner died.
pub type ArrayLockResult<'a, T, const N: usize, W, O> =
    Result<ArrayGuard<'a, T, N, W, O>, LockError<ArrayGuard<'a, T, N, W, O>>>;

/// What [`Array::try_lock`] and `lock_timeout` return: the locked array, or why the
/// lock was not simply taken.
pub type ArrayTryLockResult<'a, T, const N: usize, W, O> =
    Result<ArrayGuard<'a, T, N, W, O>, TryLockError<ArrayGuard<'a, T, N, W, O>>>;

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<T: Scalar, const N: usize, W: Timed, O: Owner> Array<T, N, W, O> {
    /// Like [`lock`](Self::lock), but gives up with [`TryLockError::WouldBlock`] after
    /// `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: core::time::Duration,
    ) -> ArrayTryLockResult<'_, T, N, W, O> {
        self.try_guarded(self.lock.lock_timeout(timeout))
    }
}

impl<const N: usize, W: Wait, O: Owner> Array<u8, N, W, O> {
    /// The bytes up to the first NUL (Python's `.value` of a `'c'` array).
    ///
    /// ```
    /// use shmsync_core::spin::Array;
    /// let name: Array<u8, 8> = Array::zeroed();
    /// name.set_value(b"shm").unwrap();
    /// assert_eq!(name.value().unwrap().as_slice(), b"shm");
    /// assert!(name.set_value(b"too long!").is_err());
    /// ```
    pub fn value(&self) -> Result<heapless::Vec<u8, N>, DataError> {
        Ok(self
            .snapshot()?
            .into_iter()
            .take_while(|&byte| byte != 0)
            .collect())
    }

    /// Stores `bytes`, followed by a NUL if there is room (Python's `.value = b".."`).
    /// More than `N` bytes is an error and writes nothing.
    pub fn set_value(&self, bytes: &[u8]) -> Result<(), ArrayError> {
        self.lock.run_locked(|| {
            self.store_range(0, bytes)?;
            if bytes.len() < N {
                self.store_range(bytes.len(), &[0])?;
            }
            Ok::<(), RangeError>(())
        })??;
        Ok(())
    }
}

impl<T: Scalar + Default, const N: usize, W, O: Owner> Default for Array<T, N, W, O> {
    fn default() -> Self {
        Self::new([T::default(); N])
    }
}

impl<T: Scalar, const N: usize, W: Wait, O: Owner> IntoIterator for &Array<T, N, W, O> {
    type Item = T;
    type IntoIter = core::array::IntoIter<T, N>;

    /// Iterates over a [`snapshot`](Array::snapshot).
    ///
    /// # Panics
    ///
    /// If a writer died holding the array's lock ([`DataError`]): call `snapshot`
    /// to handle that case.
    fn into_iter(self) -> Self::IntoIter {
        match self.snapshot() {
            Ok(items) => items.into_iter(),
            Err(error) => panic!("iterating over an Array: {error}"),
        }
    }
}

impl<T: Scalar, const N: usize, W, O: Owner> fmt::Debug for Array<T, N, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Item by item, without the lock: a debug print must not block, and each item is
        // atomic on its own.
        f.debug_tuple("Array").field(&self.items_list()).finish()
    }
}

impl<T: Scalar, const N: usize, W: Wait, O: Owner> ArrayGuard<'_, T, N, W, O> {
    /// Says the items are consistent again after [`LockError::OwnerDied`].
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent();
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Result<T, IndexError> {
        self.array.get(index)
    }

    /// Writes the item at `index`.
    pub fn set(&mut self, index: usize, value: T) -> Result<(), IndexError> {
        self.array.store(index, value)
    }

    /// Every item.
    pub fn snapshot(&self) -> [T; N] {
        self.array.load_all()
    }

    /// Copies `out.len()` items from `start` into `out`.
    pub fn read(&self, start: usize, out: &mut [T]) -> Result<(), RangeError> {
        self.array.load_range(start, out)
    }

    /// Copies `values` into the array from `start`; all or nothing.
    pub fn write(&mut self, start: usize, values: &[T]) -> Result<(), RangeError> {
        self.array.store_range(start, values)
    }
}

impl<T: Scalar, const N: usize, W: Wait, O: Owner> fmt::Debug for ArrayGuard<'_, T, N, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard")
            .field(&self.array.items_list())
            .finish()
    }
}
