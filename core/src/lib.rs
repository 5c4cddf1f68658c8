//! Python's `multiprocessing` / `threading` synchronization toolkit (`Value`, `Array`,
//! `Semaphore`, `Event`, `Lock`, `RLock`, `Condition`, `Barrier`, and an `RwLock`) for
//! Rust, in one definition that works between
//! threads, between processes that share memory, and between tasks on a
//! microcontroller.
//!
//! `#![no_std]`, no allocation. Every type is `#[repr(C)]`, holds only atomics (no
//! pointers), and has a `const fn` constructor, so it can live in a `static` or in
//! memory that several processes map at different addresses.
//!
//! How a blocked thread waits is a type parameter with no default, the [`Wait`]
//! backend, and so is what a lock records of its holder, the [`Owner`] backend. A
//! program names both through aliases: [`spin`] here (bare metal: cores, interrupt
//! handlers), `embassy` (with the `embassy` feature) (tasks), and the
//! hosted `shmsync` crate's (the Linux shared futex, holders tracked through the
//! kernel). Between the cores of one chip, [`Cores`] sleeps a waiting core (`wfe`,
//! `wfi`) until another rings its doorbell; the firmware names it with its board's
//! doorbell. Timed forms (`lock_timeout`, ...) exist only on a backend with a clock
//! ([`Timed`]).
//!
//! ```
//! use shmsync_core::spin::{Event, Lock, Semaphore, Value};
//!
//! static READY: Event = Event::new();
//! static LOCK: Lock = Lock::new();
//! static SLOTS: Semaphore = Semaphore::new(2);
//! static COUNT: Value<u32> = Value::new(0);
//!
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             READY.wait();
//!             SLOTS.acquire();
//!             let _held = LOCK.lock().unwrap();
//!             COUNT.set(COUNT.get() + 1);
//!             SLOTS.release();
//!         });
//!     }
//!     READY.set();
//! });
//! assert_eq!(COUNT.get(), 4);
//! ```
//!
//! # Features
//!
//! - `critical-section`: for targets without compare-and-swap (thumbv6m, riscv32imc).
//!   Turns on portable-atomic's `critical-section` feature; the final binary must
//!   link a `critical-section` implementation.
//! - `embassy`: async forms (`Lock::lock_async`, `Semaphore::acquire_async`,
//!   `Event::wait_async`, `Condition::wait_async`, `Barrier::wait_async`,
//!   `RwLock::read_async` and `write_async`) for tasks in one address space, over
//!   embassy-sync, with the `Embassy` backend. The final binary links a
//!   `critical-section` implementation.
//! - `fallback`: 64-bit values on 32-bit targets without 64-bit atomics, through
//!   portable-atomic's lock-based fallback (atomic within one process only).
#![no_std]

mod aliases;
mod array;
pub mod backend;
mod barrier;
mod condition;
mod error;
mod event;
#[cfg(not(loom))]
mod fault;
#[cfg(loom)]
#[doc(hidden)]
pub mod fault;
mod layout;
mod lock;
mod owner;
mod pod;
mod queue;
mod rlock;
mod rwlock;
mod scalar;
mod semaphore;
mod shm_safe;
mod sync;
mod tracked_semaphore;
mod value;
mod wait;

#[cfg(feature = "embassy")]
pub use aliases::embassy;
pub use aliases::spin;
pub use array::{Array, ArrayGuard, ArrayLockResult, ArrayTryLockResult};
pub use backend::cores::{Cores, Doorbell};
#[cfg(feature = "embassy")]
pub use backend::embassy::{Embassy, WakeTasks};
pub use backend::spin::{Clock, NoClock, Spin};
pub use barrier::{Barrier, BarrierWaitResult};
pub use condition::{Condition, ConditionGuard, WaitTimeout, WaitTimeoutResult};
pub use error::{
    ArrayError, BarrierError, DataError, IndexError, LockError, NotHeld, OverRelease, RangeError,
    TryLockError,
};
pub use error::{Closed, GetError, NoTaskPending, PutError};
pub use event::Event;
pub use layout::{Arg, Description, Difference, Field, FieldPath, Layout, Shape};
pub use lock::{Lock, LockGuard, LockResult, LockState, TryLockResult};
pub use owner::{DistinctIds, Owner, Unowned};
pub use pod::Pod;
pub use queue::{Queue, QueueState};
pub use rlock::{RLock, RLockGuard, RLockResult, RLockTryResult};
pub use rwlock::{
    ReadResult, RwLock, RwLockReadGuard, RwLockWriteGuard, TryReadResult, TryWriteResult,
    WriteResult,
};
pub use scalar::{Bitwise, Number, Scalar};
pub use semaphore::{BoundedSemaphore, Semaphore};
pub use shm_safe::ShmSafe;
pub use sync::{AtomicU32, Ordering};
pub use tracked_semaphore::{
    Holding, Permit, SemaphoreState, TrackedBoundedSemaphore, TrackedSemaphore, TRACKED_HOLDERS,
};
pub use value::Value;
pub use wait::{deadline_after, expired, Timed, Wait};
