//! The errors of the primitives: each names what was asked and what stood in the way.

use core::fmt;

/// An index past the end of an [`Array`](crate::Array) (Python's `IndexError`).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Array;
/// use shmsync_core::IndexError;
/// let a: Array<i32, 3> = Array::new([1, 2, 3]);
/// assert_eq!(a.get(3), Err(IndexError { index: 3, len: 3 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexError {
    /// The index asked for.
    pub index: usize,
    /// The array's length.
    pub len: usize,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "index {} is out of range for an array of length {}",
            self.index, self.len
        )
    }
}

impl core::error::Error for IndexError {}

/// A run of items that does not fit in an [`Array`](crate::Array) at the place asked
/// for. Nothing was written: shmsync never truncates silently.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Array;
/// use shmsync_core::RangeError;
/// let a: Array<u8, 4> = Array::zeroed();
/// let mut items = a.lock().unwrap();
/// let err = items.write(2, &[1, 2, 3]).unwrap_err();
/// assert_eq!(err, RangeError { start: 2, count: 3, len: 4 });
/// assert_eq!(items.snapshot(), [0; 4]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeError {
    /// Where the run starts.
    pub start: usize,
    /// How many items it has.
    pub count: usize,
    /// The array's length.
    pub len: usize,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} items starting at index {} do not fit in an array of length {}; nothing was written",
            self.count, self.start, self.len
        )
    }
}

impl core::error::Error for RangeError {}

/// Why an [`Array`](crate::Array) operation that takes the array's lock did nothing.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Array;
/// use shmsync_core::{ArrayError, RangeError};
/// let a: Array<u8, 4> = Array::zeroed();
/// let err = a.write(2, &[1, 2, 3]).unwrap_err();
/// assert_eq!(err, ArrayError::Range(RangeError { start: 2, count: 3, len: 4 }));
/// println!("{err}"); // 3 items starting at index 2 do not fit ...
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayError {
    /// An index past the end.
    Index(IndexError),
    /// A run of items that does not fit.
    Range(RangeError),
    /// A writer died holding the array's lock (repair through
    /// [`Array::lock`](crate::Array::lock)), or the lock is not recoverable.
    Data(DataError),
}

impl From<IndexError> for ArrayError {
    fn from(error: IndexError) -> Self {
        ArrayError::Index(error)
    }
}

impl From<RangeError> for ArrayError {
    fn from(error: RangeError) -> Self {
        ArrayError::Range(error)
    }
}

impl From<DataError> for ArrayError {
    fn from(error: DataError) -> Self {
        ArrayError::Data(error)
    }
}

impl fmt::Display for ArrayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArrayError::Index(error) => error.fmt(f),
            ArrayError::Range(error) => error.fmt(f),
            ArrayError::Data(error) => error.fmt(f),
        }
    }
}

impl core::error::Error for ArrayError {}

/// An operation that takes a lock on the caller's behalf ([`Value::update`],
/// [`Array::snapshot`], [`Array::write`], ...) found that a holder of that lock died
/// holding it, so the data it guards may be half-updated. The operation did nothing,
/// and it did not decide that the data is consistent: the next locker of the lock is
/// told the owner died, to check and repair the data.
///
/// [`Value::update`]: crate::Value::update
/// [`Array::snapshot`]: crate::Array::snapshot
/// [`Array::write`]: crate::Array::write
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Value;
/// use shmsync_core::DataError;
/// let v: Value<u32> = Value::new(1);
/// let doubled: Result<u32, DataError> = v.update(|x| x * 2);
/// assert_eq!(doubled, Ok(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    /// A holder died holding the lock; nobody has repaired the data since. Take the
    /// lock (`lock()` or `get_lock().lock()`) to get [`LockError::OwnerDied`] and its
    /// guard, repair, and mark it consistent.
    OwnerDied,
    /// The lock is [not recoverable](LockError::NotRecoverable).
    NotRecoverable,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataError::OwnerDied => {
                "a holder of the lock died holding it, so the data it guards may be \
                 half-updated; nothing was done: take the lock to check the data and mark it \
                 consistent"
            }
            DataError::NotRecoverable => {
                "the lock is not recoverable: an owner died holding it and the data was never \
                 marked consistent; re-create the shared state"
            }
        })
    }
}

impl core::error::Error for DataError {}

/// A put on a [`Queue`](crate::Queue) that was [closed](crate::Queue::close), or a get
/// on one that is closed and empty (Python 3.13's `queue.ShutDown`). For a put, it
/// gives the item back.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Queue;
/// use shmsync_core::Closed;
///
/// let q: Queue<u32, 4> = Queue::new();
/// q.close();
/// assert_eq!(q.put(7), Err(Closed(7))); // the item comes back
/// assert_eq!(q.get(), Err(Closed(())));
/// println!("{}", q.get().unwrap_err()); // the queue is closed ...
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Closed<T = ()>(pub T);

impl<T> Closed<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the queue is closed: no item can be put, and every item put before the close \
             has been taken",
        )
    }
}

impl<T> core::error::Error for Closed<T> {}

/// Why [`Queue::try_put`](crate::Queue::try_put) or `put_timeout` did not put its item
/// (Python's `queue.Full`, or `ShutDown`). Either way the item comes back.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Queue;
/// use shmsync_core::PutError;
///
/// let q: Queue<u32, 1> = Queue::new();
/// q.try_put(1).unwrap();
/// let err = q.try_put(2).unwrap_err();
/// assert_eq!(err, PutError::Full(2));
/// assert_eq!(err.into_inner(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue held its capacity of items (and, for a timed put, still did when the
    /// time was up).
    Full(T),
    /// The queue is [closed](crate::Queue::close).
    Closed(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Closed(item) => item,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "Full(..)",
            PutError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str(
                "the queue is full: no consumer took an item in time; the item was not put",
            ),
            PutError::Closed(_) => f.write_str("the queue is closed; the item was not put"),
        }
    }
}

impl<T> core::error::Error for PutError<T> {}

/// Why [`Queue::try_get`](crate::Queue::try_get) or `get_timeout` returned no item
/// (Python's `queue.Empty`, or `ShutDown`).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Queue;
/// use shmsync_core::GetError;
///
/// let q: Queue<u32, 4> = Queue::new();
/// assert_eq!(q.try_get(), Err(GetError::Empty));
/// q.close();
/// assert_eq!(q.try_get(), Err(GetError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetError {
    /// No item was there (and, for a timed get, none came in time).
    Empty,
    /// The queue is [closed](crate::Queue::close) and every item in it has been taken.
    Closed,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty: no producer put an item in time"),
            GetError::Closed => Closed(()).fmt(f),
        }
    }
}

impl core::error::Error for GetError {}

/// [`Queue::task_done`](crate::Queue::task_done) called more times than items were put
/// (Python's `ValueError: task_done() called too many times`). Nothing changed.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Queue;
/// use shmsync_core::NoTaskPending;
///
/// let q: Queue<u32, 4> = Queue::new();
/// assert_eq!(q.task_done(), Err(NoTaskPending));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoTaskPending;

impl fmt::Display for NoTaskPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "task_done() called more times than items were put; call it once per item taken",
        )
    }
}

impl core::error::Error for NoTaskPending {}

/// Why a [`Lock`](crate::Lock) was not simply taken.
/// Why a blocking lock call ([`lock`](crate::Lock::lock),
/// [`acquire`](crate::Lock::acquire)) did not simply take the lock: an owner died
/// holding it. (A blocking call never gives up while the lock is merely held.)
///
/// `G` is what the caller holds when the lock was taken after all: the guard for
/// [`lock`](crate::Lock::lock), nothing for Python's [`acquire`](crate::Lock::acquire).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Lock;
/// use shmsync_core::LockError;
///
/// let lock = Lock::new();
/// // After an owner died holding it, whoever takes it next repairs the data:
/// match lock.lock() {
///     Ok(guard) => drop(guard),
///     Err(LockError::OwnerDied(guard)) => {
///         // check or repair the shared data here, then:
///         guard.mark_consistent();
///     }
///     Err(error) => panic!("{error}"),
/// };
/// ```
pub enum LockError<G = ()> {
    /// The lock was taken, from an owner that died holding it (`EOWNERDEAD`). The data
    /// it protects may be half-updated: check or repair it, then mark it consistent
    /// ([`LockGuard::mark_consistent`](crate::LockGuard::mark_consistent) or
    /// [`Lock::mark_consistent`](crate::Lock::mark_consistent)). Released unmarked, the
    /// lock becomes not recoverable.
    OwnerDied(G),
    /// An earlier holder took the lock from a dead owner and released it without
    /// marking the data consistent (`ENOTRECOVERABLE`): the lock can never be taken
    /// again. Re-create the shared state.
    NotRecoverable,
}

/// Why a lock call that may give up ([`try_lock`](crate::Lock::try_lock),
/// `lock_timeout`, `try_acquire`, `acquire_timeout`) did not simply take the lock: what
/// [`LockError`] says, or that the lock is held and the call was not to wait (any
/// longer). As std's `TryLockError` is to its `PoisonError`.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Lock;
/// use shmsync_core::TryLockError;
///
/// let lock = Lock::new();
/// let held = lock.lock().unwrap();
/// assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
/// drop(held);
/// assert!(lock.try_lock().is_ok());
/// ```
pub enum TryLockError<G = ()> {
    /// As [`LockError::OwnerDied`]: the lock is yours, the data may be half-updated.
    OwnerDied(G),
    /// As [`LockError::NotRecoverable`].
    NotRecoverable,
    /// The lock is held, and the call was not to wait (any longer).
    WouldBlock,
}

/// The shared methods and trait implementations of the two lock errors.
macro_rules! lock_error_impls {
    ($error:ident { $($would_block:ident)? }) => {
        impl<G> $error<G> {
            /// The same error without the guard it holds, for `?` in a function that
            /// returns `Box<dyn Error>` (the guard borrows the lock, so the error with it
            /// cannot leave the function). A guard from `OwnerDied` is dropped here
            /// unrepaired, which leaves the lock not recoverable, as dropping it would
            /// anywhere.
            ///
            /// ```
            /// use shmsync_core::spin::Lock;
            /// use shmsync_core::LockError;
            ///
            /// fn count(lock: &Lock) -> Result<(), Box<dyn std::error::Error>> {
            ///     let _held = lock.lock().map_err(LockError::without_guard)?;
            ///     Ok(())
            /// }
            /// assert!(count(&Lock::new()).is_ok());
            /// ```
            pub fn without_guard(self) -> $error {
                self.map(drop)
            }

            /// The same error holding `f(g)` instead of `g`.
            pub fn map<H>(self, f: impl FnOnce(G) -> H) -> $error<H> {
                match self {
                    $error::OwnerDied(g) => $error::OwnerDied(f(g)),
                    $error::NotRecoverable => $error::NotRecoverable,
                    $($error::$would_block => $error::$would_block,)?
                }
            }
        }

        impl<G> fmt::Debug for $error<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $error::OwnerDied(_) => f.write_str("OwnerDied(..)"),
                    $error::NotRecoverable => f.write_str("NotRecoverable"),
                    $($error::$would_block => f.write_str(stringify!($would_block)),)?
                }
            }
        }

        impl<G> PartialEq for $error<G> {
            fn eq(&self, other: &Self) -> bool {
                core::mem::discriminant(self) == core::mem::discriminant(other)
            }
        }

        impl<G> fmt::Display for $error<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $error::OwnerDied(_) => OWNER_DIED,
                    $error::NotRecoverable => NOT_RECOVERABLE,
                    $($error::$would_block => "the lock is held by another thread or process",)?
                })
            }
        }

        impl<G> core::error::Error for $error<G> {}
    };
}

const OWNER_DIED: &str = "the previous owner died holding the lock; it is now yours, but the \
                          data it protects may be half-updated: check it, then mark it \
                          consistent";
const NOT_RECOVERABLE: &str = "the lock is not recoverable: an owner died holding it and the \
                               data was never marked consistent; re-create the shared state";

lock_error_impls!(LockError {});
lock_error_impls!(TryLockError { WouldBlock });

impl<G> From<LockError<G>> for TryLockError<G> {
    fn from(error: LockError<G>) -> Self {
        match error {
            LockError::OwnerDied(g) => TryLockError::OwnerDied(g),
            LockError::NotRecoverable => TryLockError::NotRecoverable,
        }
    }
}

/// [`Lock::release`](crate::Lock::release) on a lock that nobody holds (Python's
/// `RuntimeError: release unlocked lock`). The lock is unchanged.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Lock;
/// use shmsync_core::NotHeld;
/// let lock: Lock = Lock::new();
/// assert_eq!(lock.release(), Err(NotHeld));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHeld;

impl fmt::Display for NotHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("released a lock that is not held; each release must match one acquire")
    }
}

impl core::error::Error for NotHeld {}

/// A release that would push a semaphore past its bound (Python's `ValueError:
/// Semaphore released too many times`). The count is unchanged.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::BoundedSemaphore;
/// use shmsync_core::OverRelease;
/// let sem: BoundedSemaphore = BoundedSemaphore::new(1);
/// assert_eq!(sem.release(), Err(OverRelease { released: 1, value: 1, bound: 1 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverRelease {
    /// Permits the call tried to return.
    pub released: u32,
    /// Free permits when it tried.
    pub value: u32,
    /// The most the semaphore may hold.
    pub bound: u32,
}

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "releasing {} permit(s) would raise the semaphore from {} above its bound of {}; \
             each release must match one acquire",
            self.released, self.value, self.bound
        )
    }
}

impl core::error::Error for OverRelease {}

/// Why a [`Barrier`](crate::Barrier) wait did not see every party arrive (Python's
/// `BrokenBarrierError`).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Barrier;
/// use shmsync_core::BarrierError;
///
/// let barrier = Barrier::new(2);
/// barrier.abort();
/// let err = barrier.wait().unwrap_err();
/// assert_eq!(err, BarrierError::Broken);
/// println!("{err}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierError {
    /// The barrier is broken: a party timed out, or someone called `abort`, or (for
    /// the parties waiting then) `reset`. Every wait fails so until `reset`.
    Broken,
    /// This wait's timeout passed before every party arrived, and it broke the barrier
    /// for everyone.
    TimedOut,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Broken => {
                "the barrier is broken (a party timed out, or it was aborted or reset while \
                 this party waited); reset it to use it again"
            }
            BarrierError::TimedOut => {
                "timed out waiting for the other parties of the barrier (one may have died); \
                 the barrier is now broken for every party: reset it to use it again"
            }
        })
    }
}

impl core::error::Error for BarrierError {}
