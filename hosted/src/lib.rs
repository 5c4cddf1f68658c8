//! Python's `multiprocessing` / `threading` synchronization toolkit for Rust threads
//! and Linux processes.
//!
//! The types are those of [`shmsync_core`], with the Linux shared futex chosen as the
//! way to block ([`Futex`]) and the kernel's robust-futex list as the record of who
//! holds what ([`Robust`]): `Value`, `Array`, `Semaphore`, `BoundedSemaphore`, `Event`,
//! `Lock`, `RLock`, `Condition`, `Barrier` and `RwLock` work the same between threads
//! of one process and between processes that map the same [`Shared`] memory.
//!
//! Child processes are forked ([`Process::spawn`]) or, with Python's `spawn` start
//! method, fresh starts of this executable ([`Spawn`]); [`Process`] compares the two.
//!
//! ```
//! use shmsync::{shm_struct, Lock, Process, Shared, Value};
//!
//! shm_struct! {
//!     struct Counter { lock: Lock, total: Value<u64> }
//! }
//!
//! let shared = Shared::anonymous(Counter { lock: Lock::new(), total: Value::new(0) })?;
//! let children: Vec<_> = (0..4)
//!     .map(|_| Process::spawn(|| for _ in 0..1000 {
//!         let _held = shared.lock.lock().unwrap();
//!         shared.total.set(shared.total.get() + 1);
//!     }))
//!     .collect::<Result<_, _>>()?;
//! for child in children {
//!     assert!(child.join()?.success());
//! }
//! assert_eq!(shared.total.get(), 4000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod futex;
mod identity;
pub mod inspect;
mod process;
mod robust;
mod shm;
mod spawn;
mod thread;

pub use error::ShmError;
pub use futex::Futex;
pub use identity::TypeRecord;
pub use process::{ExitStatus, Process, PANIC_EXIT_CODE};
pub use robust::{Robust, RobustRecord};
pub use shm::{Origin, Participant, Shared, Stale, Unlink, FORMAT_VERSION};
pub use shmsync_core::{
    shm_struct, ArrayError, BarrierError, BarrierWaitResult, Bitwise, DataError, Difference, Field,
    IndexError, Layout, LockError, NotHeld, Number, OverRelease, RangeError, Scalar, ShmSafe,
    TryLockError, WaitTimeout, WaitTimeoutResult,
};
pub use spawn::{
    run_if_spawned, Entry, Spawn, SpawnError, Spawned, ENTRY_FAILED_EXIT_CODE,
    UNKNOWN_ENTRY_EXIT_CODE,
};
pub use thread::Thread;

/// A lock that blocks on the futex and whose holder's death the kernel reports: see
/// [`shmsync_core::Lock`] and [`Robust`].
pub type Lock = shmsync_core::Lock<Futex, Robust>;
/// The guard of a [`Lock`]: see [`shmsync_core::LockGuard`].
pub type LockGuard<'a> = shmsync_core::LockGuard<'a, Futex, Robust>;
/// What [`Lock::lock`] returns: the guard, or that an owner died.
pub type LockResult<'a> = shmsync_core::LockResult<'a, Futex, Robust>;
/// What [`Lock::try_lock`] and [`Lock::lock_timeout`] return: the guard, or why not.
pub type TryLockResult<'a> = shmsync_core::TryLockResult<'a, Futex, Robust>;
/// A counting semaphore whose permits come back when their holder dies: see
/// [`shmsync_core::TrackedSemaphore`].
pub type Semaphore = shmsync_core::TrackedSemaphore<Futex, Robust>;
/// A semaphore with an upper bound: see [`shmsync_core::TrackedBoundedSemaphore`].
pub type BoundedSemaphore = shmsync_core::TrackedBoundedSemaphore<Futex, Robust>;
/// A permit of a [`Semaphore`] or [`BoundedSemaphore`], given back when dropped.
pub type Permit<'a> = shmsync_core::Permit<'a, Futex, Robust>;
/// An event flag: see [`shmsync_core::Event`].
pub type Event = shmsync_core::Event<Futex>;
/// A shared scalar: see [`shmsync_core::Value`].
pub type Value<T> = shmsync_core::Value<T, Futex, Robust>;
/// A shared fixed-size array: see [`shmsync_core::Array`].
pub type Array<T, const N: usize> = shmsync_core::Array<T, N, Futex, Robust>;
/// The locked [`Array`]: see [`shmsync_core::ArrayGuard`].
pub type ArrayGuard<'a, T, const N: usize> = shmsync_core::ArrayGuard<'a, T, N, Futex, Robust>;

/// A fixed-capacity FIFO queue of [`Pod`] items that survives the death of any
/// producer or consumer: see [`shmsync_core::Queue`].
pub type Queue<T, const N: usize> = shmsync_core::Queue<T, N, Futex, Robust>;
pub use shmsync_core::{pod_struct, Closed, GetError, NoTaskPending, Pod, PutError};
/// A re-entrant lock whose holder's death the kernel reports: see
/// [`shmsync_core::RLock`]. 48 bytes.
pub type RLock = shmsync_core::RLock<Futex, Robust>;
/// The guard of an [`RLock`]: see [`shmsync_core::RLockGuard`].
pub type RLockGuard<'a> = shmsync_core::RLockGuard<'a, Futex, Robust>;
/// What [`RLock::lock`] returns.
pub type RLockResult<'a> = shmsync_core::RLockResult<'a, Futex, Robust>;
/// What [`RLock::try_lock`] and [`RLock::lock_timeout`] return.
pub type RLockTryResult<'a> = shmsync_core::RLockTryResult<'a, Futex, Robust>;
/// How many threads a [`Condition`] keeps in order, and wakes exactly, at once; further
/// waiters wake at every notify.
pub const CONDITION_WAITERS: usize = 16;
/// A condition variable over a [`Lock`] or an [`RLock`], which no waiter's death wedges:
/// see [`shmsync_core::Condition`]. 776 bytes.
pub type Condition = shmsync_core::Condition<Futex, Robust, CONDITION_WAITERS>;
/// A barrier for a fixed number of parties, which a party that never comes cannot
/// wedge for ever: see [`shmsync_core::Barrier`]. 8 bytes.
pub type Barrier = shmsync_core::Barrier<Futex, Robust>;
/// How many threads may read an [`RwLock`] at once; a further reader waits for one to
/// leave.
pub const RWLOCK_READERS: usize = 16;
/// A readers-writer lock, writers first, that survives the death of its readers and
/// writers: see [`shmsync_core::RwLock`]. 688 bytes.
pub type RwLock = shmsync_core::RwLock<Futex, Robust, RWLOCK_READERS>;
/// A read of an [`RwLock`]: see [`shmsync_core::RwLockReadGuard`].
pub type RwLockReadGuard<'a> = shmsync_core::RwLockReadGuard<'a, Futex, Robust, RWLOCK_READERS>;
/// The write lock of an [`RwLock`]: see [`shmsync_core::RwLockWriteGuard`].
pub type RwLockWriteGuard<'a> = shmsync_core::RwLockWriteGuard<'a, Futex, Robust, RWLOCK_READERS>;
/// What [`RwLock::read`] returns.
pub type ReadResult<'a> = shmsync_core::ReadResult<'a, Futex, Robust, RWLOCK_READERS>;
/// What [`RwLock::write`] returns.
pub type WriteResult<'a> = shmsync_core::WriteResult<'a, Futex, Robust, RWLOCK_READERS>;
/// What [`RwLock::try_read`] and [`RwLock::read_timeout`] return.
pub type TryReadResult<'a> = shmsync_core::TryReadResult<'a, Futex, Robust, RWLOCK_READERS>;
/// What [`RwLock::try_write`] and [`RwLock::write_timeout`] return.
pub type TryWriteResult<'a> = shmsync_core::TryWriteResult<'a, Futex, Robust, RWLOCK_READERS>;

// The sizes the documentation states.
const _: () = assert!(std::mem::size_of::<RLock>() == 48);
const _: () = assert!(std::mem::size_of::<Condition>() == 776);
const _: () = assert!(std::mem::size_of::<Barrier>() == 8);
const _: () = assert!(std::mem::size_of::<RwLock>() == 688);

/// The README's examples, run as doc tests so that they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
