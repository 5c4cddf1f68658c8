//! The primitives with their backend named, in the manner of parking_lot's
//! `Mutex<T> = lock_api::Mutex<RawMutex, T>`: the generic types in this crate have no
//! default backend, so a program picks one by name here (or in the hosted `shmsync`
//! crate, for Linux threads and processes).

/// Declares the aliases of every primitive for one wait backend, with no owner tracking
/// ([`Unowned`](crate::Unowned)). There is no `RLock` among them: `Unowned` cannot tell
/// one task from another (see [`DistinctIds`](crate::DistinctIds)).
macro_rules! backend_aliases {
    ($backend:ty) => {
        /// [`Lock`](crate::Lock) on this backend.
        pub type Lock = crate::Lock<$backend, crate::Unowned>;
        /// [`LockGuard`](crate::LockGuard) on this backend.
        pub type LockGuard<'a> = crate::LockGuard<'a, $backend, crate::Unowned>;
        /// [`LockResult`](crate::LockResult) on this backend.
        pub type LockResult<'a> = crate::LockResult<'a, $backend, crate::Unowned>;
        /// [`TryLockResult`](crate::TryLockResult) on this backend.
        pub type TryLockResult<'a> = crate::TryLockResult<'a, $backend, crate::Unowned>;
        /// [`Event`](crate::Event) on this backend.
        pub type Event = crate::Event<$backend>;
        /// [`Semaphore`](crate::Semaphore) on this backend.
        pub type Semaphore = crate::Semaphore<$backend>;
        /// [`BoundedSemaphore`](crate::BoundedSemaphore) on this backend.
        pub type BoundedSemaphore = crate::BoundedSemaphore<$backend>;
        /// [`Value`](crate::Value) on this backend.
        pub type Value<T> = crate::Value<T, $backend, crate::Unowned>;
        /// [`Array`](crate::Array) on this backend.
        pub type Array<T, const N: usize> = crate::Array<T, N, $backend, crate::Unowned>;
        /// [`ArrayGuard`](crate::ArrayGuard) on this backend.
        pub type ArrayGuard<'a, T, const N: usize> =
            crate::ArrayGuard<'a, T, N, $backend, crate::Unowned>;
        /// [`ArrayLockResult`](crate::ArrayLockResult) on this backend.
        pub type ArrayLockResult<'a, T, const N: usize> =
            crate::ArrayLockResult<'a, T, N, $backend, crate::Unowned>;
        /// [`ArrayTryLockResult`](crate::ArrayTryLockResult) on this backend.
        pub type ArrayTryLockResult<'a, T, const N: usize> =
            crate::ArrayTryLockResult<'a, T, N, $backend, crate::Unowned>;
        /// [`Queue`](crate::Queue) on this backend.
        pub type Queue<T, const N: usize> = crate::Queue<T, N, $backend, crate::Unowned>;
        /// [`Condition`](crate::Condition) on this backend, with slots for 8 waiters
        /// at once (72 bytes).
        pub type Condition = crate::Condition<$backend, crate::Unowned, 8>;
        /// [`Barrier`](crate::Barrier) on this backend.
        pub type Barrier = crate::Barrier<$backend, crate::Unowned>;
        /// [`RwLock`](crate::RwLock) on this backend, for 8 readers at once (40 bytes).
        pub type RwLock = crate::RwLock<$backend, crate::Unowned, 8>;
        /// [`RwLockReadGuard`](crate::RwLockReadGuard) on this backend.
        pub type RwLockReadGuard<'a> = crate::RwLockReadGuard<'a, $backend, crate::Unowned, 8>;
        /// [`RwLockWriteGuard`](crate::RwLockWriteGuard) on this backend.
        pub type RwLockWriteGuard<'a> = crate::RwLockWriteGuard<'a, $backend, crate::Unowned, 8>;
    };
}

/// The primitives on [`Spin`](crate::Spin) without a clock: for bare metal, between
/// cores, interrupt handlers and preemptive tasks. They have no timed forms; for those,
/// name a clock: `shmsync_core::Lock<Spin<MyClock>, Unowned>`.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{Lock, Value};
///
/// static LOCK: Lock = Lock::new();
/// static COUNT: Value<u32> = Value::new(0);
///
/// let _held = LOCK.lock().unwrap();
/// COUNT.set(COUNT.get() + 1);
/// assert_eq!(COUNT.get(), 1);
/// ```
pub mod spin {
    backend_aliases!(crate::Spin);
}

/// The primitives on [`Embassy`](crate::Embassy) without a clock: for tasks of an embassy
/// executor, which use the async forms (`lock_async`, `acquire_async`, `wait_async`).
///
/// # Example
///
/// ```
/// use shmsync_core::embassy::{Event, Semaphore};
///
/// static READY: Event = Event::new();
/// static SLOTS: Semaphore = Semaphore::new(1);
///
/// async fn worker() {
///     READY.wait_async().await;
///     SLOTS.acquire_async().await;
///     // ... one task at a time here ...
///     SLOTS.release();
/// }
/// # let _ = worker;
/// ```
#[cfg(feature = "embassy")]
pub mod embassy {
    backend_aliases!(crate::Embassy);
}
