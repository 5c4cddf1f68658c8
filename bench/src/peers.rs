//! What users would otherwise pick, in memory shared between processes: pthread
//! mutexes (plain and robust), readers-writer locks, condition variables and barriers,
//! POSIX `sem_t` and a bare futex; and a pipe.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// `PTHREAD_MUTEX_ROBUST` from Linux's <pthread.h>.
const PTHREAD_MUTEX_ROBUST: libc::c_int = 1;

/// A `T` in an anonymous `MAP_SHARED` mapping: forked children see the same one.
/// Leaked on purpose: a benchmark makes a handful.
pub fn shared<T>(value: T) -> &'static T {
    let len = NonZeroUsize::new(std::mem::size_of::<T>().max(1)).unwrap();
    // SAFETY: a fresh anonymous mapping, aliased by nothing.
    let base: NonNull<T> = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            len,
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_SHARED,
        )
    }
    .expect("mmap")
    .cast();
    // SAFETY: the mapping is page-aligned and large enough for one `T`; never unmapped.
    unsafe {
        base.as_ptr().write(value);
        &*base.as_ptr()
    }
}

/// A process-shared pthread mutex, optionally robust.
pub struct PthreadMutex(std::cell::UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: pthread mutexes are made to be used from several threads (and, being
// PROCESS_SHARED, processes); every access goes through the pthread API.
unsafe impl Sync for PthreadMutex {}

impl PthreadMutex {
    /// Initialises one in shared memory.
    pub fn new_shared(robust: bool) -> &'static PthreadMutex {
        let mutex = shared(PthreadMutex(std::cell::UnsafeCell::new(unsafe {
            // SAFETY: all-zero is a valid value to overwrite with pthread_mutex_init.
            std::mem::zeroed()
        })));
        // SAFETY: attr lives across the calls; the mutex is in shared memory, not moved.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            if robust {
                libc::pthread_mutexattr_setrobust(&mut attr, PTHREAD_MUTEX_ROBUST);
            }
            assert_eq!(libc::pthread_mutex_init(mutex.0.get(), &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        mutex
    }

    /// Takes the mutex, waiting as long as it takes.
    pub fn lock(&self) {
        // SAFETY: an initialised mutex.
        unsafe { libc::pthread_mutex_lock(self.0.get()) };
    }

    /// Releases the mutex this thread holds.
    pub fn unlock(&self) {
        // SAFETY: locked by this thread just before.
        unsafe { libc::pthread_mutex_unlock(self.0.get()) };
    }

    /// Runs `f` holding the mutex.
    pub fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        self.lock();
        let result = f();
        self.unlock();
        result
    }
}

/// A process-shared pthread readers-writer lock (glibc's default kind, which prefers
/// readers).
pub struct PthreadRwLock(std::cell::UnsafeCell<libc::pthread_rwlock_t>);

// SAFETY: as for the mutex: made for concurrent use through its API.
unsafe impl Sync for PthreadRwLock {}

impl PthreadRwLock {
    /// Initialises one in shared memory.
    pub fn new_shared() -> &'static PthreadRwLock {
        // SAFETY: zeroed memory, initialised by pthread_rwlock_init before any use.
        let lock = shared(PthreadRwLock(std::cell::UnsafeCell::new(unsafe {
            std::mem::zeroed()
        })));
        // SAFETY: attr lives across the calls; the lock is in shared memory, not moved.
        unsafe {
            let mut attr: libc::pthread_rwlockattr_t = std::mem::zeroed();
            libc::pthread_rwlockattr_init(&mut attr);
            libc::pthread_rwlockattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            assert_eq!(libc::pthread_rwlock_init(lock.0.get(), &attr), 0);
            libc::pthread_rwlockattr_destroy(&mut attr);
        }
        lock
    }

    /// Takes a read lock, waiting as long as it takes.
    pub fn read(&self) {
        // SAFETY: an initialised lock.
        unsafe { libc::pthread_rwlock_rdlock(self.0.get()) };
    }

    /// Takes the write lock, waiting as long as it takes.
    pub fn write(&self) {
        // SAFETY: an initialised lock.
        unsafe { libc::pthread_rwlock_wrlock(self.0.get()) };
    }

    /// Releases the read or write lock this thread holds.
    pub fn unlock(&self) {
        // SAFETY: locked by this thread just before.
        unsafe { libc::pthread_rwlock_unlock(self.0.get()) };
    }
}

/// A process-shared pthread condition variable, waited on with a [`PthreadMutex`].
pub struct PthreadCond(std::cell::UnsafeCell<libc::pthread_cond_t>);

// SAFETY: as for the mutex: made for concurrent use through its API.
unsafe impl Sync for PthreadCond {}

impl PthreadCond {
    /// Initialises one in shared memory.
    pub fn new_shared() -> &'static PthreadCond {
        // SAFETY: zeroed memory, initialised by pthread_cond_init before any use.
        let cond = shared(PthreadCond(std::cell::UnsafeCell::new(unsafe {
            std::mem::zeroed()
        })));
        // SAFETY: attr lives across the calls; the condition is in shared memory.
        unsafe {
            let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
            libc::pthread_condattr_init(&mut attr);
            libc::pthread_condattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            assert_eq!(libc::pthread_cond_init(cond.0.get(), &attr), 0);
            libc::pthread_condattr_destroy(&mut attr);
        }
        cond
    }

    /// Releases `mutex` (which this thread holds), waits for a signal, takes it back.
    pub fn wait(&self, mutex: &PthreadMutex) {
        // SAFETY: both initialised; the mutex is held by this thread.
        unsafe { libc::pthread_cond_wait(self.0.get(), mutex.0.get()) };
    }

    /// Wakes one waiter.
    pub fn signal(&self) {
        // SAFETY: an initialised condition.
        unsafe { libc::pthread_cond_signal(self.0.get()) };
    }
}

/// A process-shared pthread barrier.
pub struct PthreadBarrier(std::cell::UnsafeCell<libc::pthread_barrier_t>);

// SAFETY: as for the mutex: made for concurrent use through its API.
unsafe impl Sync for PthreadBarrier {}

impl PthreadBarrier {
    /// Initialises one for `parties`, in shared memory.
    pub fn new_shared(parties: u32) -> &'static PthreadBarrier {
        // SAFETY: zeroed memory, initialised by pthread_barrier_init before any use.
        let barrier = shared(PthreadBarrier(std::cell::UnsafeCell::new(unsafe {
            std::mem::zeroed()
        })));
        // SAFETY: attr lives across the calls; the barrier is in shared memory.
        unsafe {
            let mut attr: libc::pthread_barrierattr_t = std::mem::zeroed();
            libc::pthread_barrierattr_init(&mut attr);
            libc::pthread_barrierattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            assert_eq!(
                libc::pthread_barrier_init(barrier.0.get(), &attr, parties),
                0
            );
            libc::pthread_barrierattr_destroy(&mut attr);
        }
        barrier
    }

    /// Waits for the other parties.
    pub fn wait(&self) {
        // SAFETY: an initialised barrier.
        unsafe { libc::pthread_barrier_wait(self.0.get()) };
    }
}

/// A process-shared POSIX semaphore.
pub struct PosixSemaphore(std::cell::UnsafeCell<libc::sem_t>);

// SAFETY: as for the mutex: made for concurrent use through its API.
unsafe impl Sync for PosixSemaphore {}

impl PosixSemaphore {
    /// Initialises one at `value`, in shared memory.
    pub fn new_shared(value: u32) -> &'static PosixSemaphore {
        // SAFETY: zeroed memory, initialised by sem_init before any use.
        let sem = shared(PosixSemaphore(std::cell::UnsafeCell::new(unsafe {
            std::mem::zeroed()
        })));
        // SAFETY: in shared memory, never moved; pshared = 1.
        assert_eq!(unsafe { libc::sem_init(sem.0.get(), 1, value) }, 0);
        sem
    }

    /// Adds one to the count, waking a waiter.
    pub fn post(&self) {
        // SAFETY: initialised.
        unsafe { libc::sem_post(self.0.get()) };
    }

    /// Takes one from the count, waiting while it is zero.
    pub fn wait(&self) {
        // SAFETY: initialised; retried on EINTR.
        while unsafe { libc::sem_wait(self.0.get()) } != 0 {}
    }

    /// Takes one from the count, waiting at most `timeout` while it is zero; whether
    /// it took one.
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> bool {
        let now =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).expect("CLOCK_REALTIME");
        let deadline =
            std::time::Duration::new(now.tv_sec() as u64, now.tv_nsec() as u32) + timeout;
        let deadline = libc::timespec {
            tv_sec: deadline.as_secs() as libc::time_t,
            tv_nsec: deadline.subsec_nanos().into(),
        };
        loop {
            // SAFETY: initialised; `deadline` lives across the call.
            if unsafe { libc::sem_timedwait(self.0.get(), &deadline) } == 0 {
                return true;
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return false;
            }
        }
    }
}

/// The simplest futex ping-pong: a shared word saying whose turn it is, and shared
/// FUTEX_WAIT / FUTEX_WAKE with no spinning.
pub struct FutexTurn(
    /// Whose turn it is.
    pub AtomicU32,
);

impl FutexTurn {
    /// Waits while the word is `turn`.
    pub fn wait_while(&self, turn: u32) {
        while self.0.load(Ordering::Acquire) == turn {
            // SAFETY: a shared FUTEX_WAIT on a live aligned word, no timeout.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAIT,
                    turn,
                    0,
                    0,
                    0,
                )
            };
        }
    }

    /// Sets the word to `turn` and wakes one waiter.
    pub fn pass(&self, turn: u32) {
        self.0.store(turn, Ordering::Release);
        // SAFETY: FUTEX_WAKE uses the address as a key only.
        unsafe { libc::syscall(libc::SYS_futex, self.0.as_ptr(), libc::FUTEX_WAKE, 1) };
    }
}

/// A `Cell` in shared memory, for a peer's plain counter: only touched under its mutex.
pub struct SharedCell<T: 'static>(&'static std::cell::Cell<T>);

// SAFETY: every access happens while holding the peer's mutex.
unsafe impl<T> Sync for SharedCell<T> {}

impl<T: Copy> SharedCell<T> {
    /// One holding `value`, in a fresh shared mapping.
    pub fn new(value: T) -> Self {
        Self(shared(std::cell::Cell::new(value)))
    }

    /// The value. Call it holding the peer's mutex (or with no other process running).
    pub fn get(&self) -> T {
        self.0.get()
    }

    /// Replaces the value. Call it holding the peer's mutex.
    pub fn set(&self, value: T) {
        self.0.set(value)
    }
}

/// A pipe, whose two ends forked children inherit.
pub struct Pipe {
    /// The end items are read from.
    read: std::os::fd::OwnedFd,
    /// The end items are written to.
    write: std::os::fd::OwnedFd,
}

impl Pipe {
    /// A fresh pipe.
    pub fn new() -> Pipe {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        Pipe { read, write }
    }

    /// Writes all of `bytes` (at most `PIPE_BUF`, so in one piece), waiting while the
    /// pipe is full.
    pub fn write(&self, bytes: &[u8]) {
        loop {
            match nix::unistd::write(&self.write, bytes) {
                Ok(n) if n == bytes.len() => return,
                Ok(n) => panic!("a write of {} bytes to a pipe wrote {n}", bytes.len()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(error) => panic!("write to a pipe: {error}"),
            }
        }
    }

    /// Reads exactly `bytes.len()` bytes, waiting while the pipe is empty.
    pub fn read(&self, bytes: &mut [u8]) {
        let mut done = 0;
        while done < bytes.len() {
            match nix::unistd::read(&self.read, &mut bytes[done..]) {
                Ok(0) => panic!("the pipe was closed"),
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(error) => panic!("read from a pipe: {error}"),
            }
        }
    }
}
