//! The Linux futex behind [`Wait`]: shared (not `FUTEX_PRIVATE`), so that a process can
//! wake a waiter in another process that maps the same page.

use shmsync_core::{AtomicU32, Wait};

/// Blocks on the shared futex; an `Event` or `Semaphore` waiter spins briefly first
/// (`SPIN_NS`), a `Lock` waiter does not.
///
/// Deadlines are absolute `CLOCK_MONOTONIC` times (`FUTEX_WAIT_BITSET`), so a wait
/// interrupted by a signal (`EINTR`) or woken spuriously resumes toward the same
/// deadline instead of starting its timeout again.
///
/// # Example
///
/// ```
/// use shmsync::Futex;
/// use shmsync_core::Lock;
///
/// let lock: Lock<Futex> = Lock::new(); // what `shmsync::Lock` is
/// drop(lock.lock().unwrap());
/// ```
pub struct Futex;

impl Wait for Futex {
    /// A wake-up across CPUs costs about 50 µs on a 2-vCPU VM and a spinning hand-off
    /// about 70 ns: a partner that answers within 10 µs is caught hundreds of times
    /// sooner, and a 1-second wait spins for only the first 10 µs of it.
    const SPIN_NS: u64 = 10_000;

    fn now() -> u64 {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .expect("CLOCK_MONOTONIC is always available on Linux");
        (now.tv_sec() as u64) * 1_000_000_000 + now.tv_nsec() as u64
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        let timeout = deadline.map(|d| libc::timespec {
            tv_sec: (d / 1_000_000_000) as libc::time_t,
            tv_nsec: (d % 1_000_000_000) as libc::c_long,
        });
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is a live, aligned 32-bit atomic for the whole call, which is
        // all FUTEX_WAIT_BITSET reads; `timeout_ptr` is null or points at `timeout`,
        // alive until the call returns. The result is ignored on purpose: EAGAIN (the
        // word changed), ETIMEDOUT, EINTR and spurious wakes all mean "re-check", which
        // every caller does.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET,
                expected,
                timeout_ptr,
                std::ptr::null::<u32>(),
                libc::FUTEX_BITSET_MATCH_ANY,
            );
        }
    }

    fn wake_one(word: &AtomicU32) {
        wake(word, 1);
    }

    fn wake_all(word: &AtomicU32) {
        wake(word, i32::MAX);
    }

    /// The Linux thread id, as a robust futex records it.
    #[inline]
    fn owner_id() -> u32 {
        owner::current_tid()
    }

    fn owner_incarnation(owner: u32) -> Option<u64> {
        owner::incarnation(owner)
    }
}

/// Who holds a lock: Linux thread ids, and whether they still run.
mod owner {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering};

    thread_local! {
        /// This thread's id, looked up once (0: not yet).
        static TID: Cell<u32> = const { Cell::new(0) };
    }

    extern "C" fn forget_tid_in_child() {
        // The forking thread lives on in the child under a new id.
        TID.set(0);
    }

    /// The calling thread's id, from a per-thread cache: the uncontended lock pays a
    /// thread-local read, not a system call.
    #[inline]
    pub fn current_tid() -> u32 {
        match TID.get() {
            0 => look_up_tid(),
            tid => tid,
        }
    }

    #[cold]
    fn look_up_tid() -> u32 {
        // Not a `Once`: a forked child inherits a `Once` that another parent thread was
        // running as running for ever, and would wait on it. A flag never waits.
        static AT_FORK: AtomicBool = AtomicBool::new(false);
        if !AT_FORK.swap(true, Ordering::AcqRel) {
            // SAFETY: registers a handler that only writes a thread-local, which is
            // safe on the child side of fork.
            unsafe { libc::pthread_atfork(None, None, Some(forget_tid_in_child)) };
        }
        let tid = nix::unistd::gettid().as_raw() as u32;
        TID.set(tid);
        tid
    }

    /// `None` if thread `tid` is gone or a zombie (killed, not yet reaped); else its
    /// start time, which differs for a later thread that reuses the id.
    pub fn incarnation(tid: u32) -> Option<u64> {
        // /proc/TID/stat exists for every thread, not only for process leaders.
        let stat = std::fs::read_to_string(format!("/proc/{tid}/stat")).ok()?;
        // After the parenthesised command name: state is the 1st field, start time
        // the 20th.
        let mut fields = stat.rsplit_once(") ")?.1.split(' ');
        let state = fields.next()?;
        if state == "Z" || state == "X" {
            return None;
        }
        fields.nth(18)?.parse().ok()
    }
}

fn wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it does not access memory
    // beyond checking that the address is mapped, which `word` is.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count);
    }
}
