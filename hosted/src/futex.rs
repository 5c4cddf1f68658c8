//! The Linux futex behind [`Wait`]: shared (not `FUTEX_PRIVATE`), so that a process can
//! wake a waiter in another process that maps the same page.

use shmsync_core::{AtomicU32, Timed, Wait};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Blocks on the shared futex; a waiter spins briefly first (`SPIN_NS`), offering its
/// CPU to other runnable threads as it spins. Once an offer was taken (the CPUs are
/// crowded), the thread's waits for an answer (`Event`, `Semaphore`, `Queue`) offer
/// the CPU once and sleep, without a spin, for the next 10 ms; its lockers still spin.
///
/// Deadlines are absolute `CLOCK_MONOTONIC` times (`FUTEX_WAIT_BITSET`), so a wait
/// interrupted by a signal (`EINTR`) or woken spuriously resumes toward the same
/// deadline instead of starting its timeout again.
///
/// # Example
///
/// ```
/// use shmsync::{Futex, Robust};
/// use shmsync_core::{Event, Lock};
///
/// let lock: Lock<Futex, Robust> = Lock::new(); // what `shmsync::Lock` is
/// let done: Event<Futex> = Event::new(); // and `shmsync::Event`
/// drop(lock.lock().unwrap());
/// done.set();
/// ```
pub struct Futex;

impl Timed for Futex {}

impl Wait for Futex {
    const NAME: &'static str = "Futex";

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
        wait_at(word.as_ptr(), expected, deadline);
    }

    fn wake_one(word: &AtomicU32) {
        wake(word, 1);
    }

    /// `futex_waitv` (Linux 5.16), so that a lock's sleeper also hears the kernel's
    /// wake-up on the lock's word at its holder's death. Where the call is missing (an
    /// older kernel, or a seccomp filter that refuses it), the first word alone.
    fn wait_either(
        first: &AtomicU32,
        first_expected: u32,
        second: &AtomicU32,
        second_expected: u32,
        deadline: Option<u64>,
    ) {
        if !WAITV_MISSING.load(Ordering::Relaxed)
            && !wait_both(first, first_expected, second, second_expected, deadline)
        {
            WAITV_MISSING.store(true, Ordering::Relaxed);
        }
        if WAITV_MISSING.load(Ordering::Relaxed) {
            Self::wait(first, first_expected, deadline);
        }
    }

    fn wake_one_reporting(word: &AtomicU32) -> bool {
        wake(word, 1) > 0
    }

    /// About every half millisecond of a thread's contended releases.
    fn hand_off_due() -> bool {
        FAIRNESS.with(|fairness| {
            let (releases, due) = fairness.get();
            if releases < RELEASES_PER_LOOK {
                fairness.set((releases + 1, due));
                return false;
            }
            let now = Self::now();
            if now < due {
                fairness.set((0, due));
                return false;
            }
            fairness.set((0, now.saturating_add(HAND_OFF_EVERY_NS)));
            true
        })
    }

    fn wake_all(word: &AtomicU32) {
        wake(word, i32::MAX);
    }

    /// `sched_yield`: with more runnable threads than CPUs, a spinning waiter gives its
    /// CPU to one of them (perhaps the partner it waits for) instead of spinning it
    /// away; with a CPU to spare, the call returns at once. A call that took longer
    /// than a system call does gave the CPU away: the thread is then
    /// [`crowded`](Wait::crowded) for the next `CROWDED_FOR_NS`.
    fn yield_now() -> bool {
        let before = Self::now();
        std::thread::yield_now();
        let after = Self::now();
        if after.saturating_sub(before) < GAVE_CPU_AWAY_NS {
            return false;
        }
        CROWDED_UNTIL.with(|until| until.set(after.saturating_add(CROWDED_FOR_NS)));
        true
    }

    fn crowded() -> bool {
        CROWDED_UNTIL.with(|until| {
            let until = until.get();
            // 0 (never crowded) spares the common case a look at the clock.
            until != 0 && Self::now() < until
        })
    }
}

/// [`Futex::wait`] on the word at `address`, which need not be mapped: the kernel reads
/// it with its own checks, so a word in a file that a peer truncated is an error
/// (`EFAULT`, ignored: the caller looks again), never a `SIGBUS`.
pub(crate) fn wait_at(address: *const u32, expected: u32, deadline: Option<u64>) {
    let timeout = deadline.map(timespec);
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT_BITSET only reads the 32-bit word at `address`, through the
    // kernel's checked access (EFAULT where nothing is mapped), and writes nothing;
    // `timeout_ptr` is null or points at `timeout`, alive until the call returns. The
    // result is ignored on purpose: EAGAIN (the word changed), ETIMEDOUT, EINTR, EFAULT
    // and spurious wakes all mean "re-check", which every caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            address,
            libc::FUTEX_WAIT_BITSET,
            expected,
            timeout_ptr,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        );
    }
}

/// Set once `futex_waitv` turned out to be missing. An atomic, not a `Once`: a forked
/// child may read it whatever its parent's threads were doing.
static WAITV_MISSING: AtomicBool = AtomicBool::new(false);

/// The kernel's `struct futex_waitv`.
#[repr(C)]
struct WaitOn {
    value: u64,
    address: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`: a 32-bit word, shared between processes (no `FUTEX2_PRIVATE`).
const FUTEX2_SIZE_U32: u32 = 2;

/// `futex_waitv` on both words, until `deadline` (absolute, `CLOCK_MONOTONIC`); false
/// if the kernel has no such call (or a filter refuses it), having waited for nothing.
fn wait_both(
    first: &AtomicU32,
    first_expected: u32,
    second: &AtomicU32,
    second_expected: u32,
    deadline: Option<u64>,
) -> bool {
    let on = |word: &AtomicU32, value: u32| WaitOn {
        value: value.into(),
        address: word.as_ptr() as u64,
        flags: FUTEX2_SIZE_U32,
        reserved: 0,
    };
    let waiters = [on(first, first_expected), on(second, second_expected)];
    let timeout = deadline.map(timespec);
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: futex_waitv reads the two entries of `waiters` (alive until it returns)
    // and, through the kernel's checked access, the two words they name; it writes
    // nothing. `timeout_ptr` is null or points at `timeout`, alive until it returns.
    // Every outcome but ENOSYS and EPERM (woken, changed, timed out, interrupted,
    // EFAULT) means "look again", which the caller does.
    let result = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            waiters.len() as libc::c_uint,
            0 as libc::c_uint,
            timeout_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    !(result == -1
        && matches!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENOSYS | libc::EPERM)
        ))
}

/// An absolute time in nanoseconds, as the kernel takes it.
fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Wakes up to `count` waiters on `word`; how many it woke (0 on an error).
pub(crate) fn wake(word: &AtomicU32, count: i32) -> usize {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it does not access memory
    // beyond checking that the address is mapped, which `word` is.
    let woken = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
    usize::try_from(woken).unwrap_or(0)
}

/// How often a thread that keeps releasing a lock others sleep on hands it to one of
/// them: about every half millisecond, as parking_lot does. A hand-off costs the lock
/// a sleeper's wake-up (tens of microseconds on a VM), paid a few times per
/// millisecond of contention, and lets no sleeper wait behind a busy thread for long.
const HAND_OFF_EVERY_NS: u64 = 500_000;

/// How many contended releases pass between two looks at the clock, which costs as
/// much as a release.
const RELEASES_PER_LOOK: u32 = 16;

thread_local! {
    /// This thread's contended releases since it last looked at the clock, and when
    /// its next hand-off is due. Constant-initialised and without a destructor: a
    /// forked child's copy is as good as its parent's.
    static FAIRNESS: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

/// How long a `sched_yield` that found nothing else to run takes at most, with room to
/// spare: under 0.5 µs on a 2-vCPU VM, 0.5-1 µs with a competitor it did not yield to.
/// One that gave the CPU to another thread takes a time slice of it, tens of
/// microseconds and more.
const GAVE_CPU_AWAY_NS: u64 = 5_000;

/// How long a thread that found the CPUs crowded waits for answers without spinning,
/// before it tries a spin again: a few hundred waits of a crowded ping-pong, so the
/// look costs little, and soon enough to spin again once the crowd has gone.
const CROWDED_FOR_NS: u64 = 10_000_000;

thread_local! {
    /// Until when this thread waits for answers without spinning ([`Wait::crowded`]); 0
    /// if it never found the CPUs crowded. Constant-initialised and without a destructor, like
    /// `FAIRNESS`.
    static CROWDED_UNTIL: Cell<u64> = const { Cell::new(0) };
}
