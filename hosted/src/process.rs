//! Child processes, as Python's `multiprocessing.Process`: with the fork start method
//! (a closure in a forked child, here) or the spawn start method (an entry in a fresh
//! start of this executable, [`crate::Spawn`]).

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// The exit code of a child whose closure panicked (as a panicking Rust `main`).
pub const PANIC_EXIT_CODE: i32 = 101;

/// How a child process ended.
///
/// # Example
///
/// ```
/// use shmsync::{ExitStatus, Process};
///
/// let child = Process::spawn(|| panic!("boom"))?;
/// let status = child.join()?;
/// assert_eq!(status, ExitStatus::Exited(101));
/// assert!(!status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
}

impl ExitStatus {
    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// Its exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal that ended it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(signal) => Some(signal),
            ExitStatus::Exited(_) => None,
        }
    }

    /// Python's `Process.exitcode`: the code, or minus the signal.
    pub fn exitcode(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => -signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signaled(signal) => match Signal::try_from(*signal) {
                Ok(signal) => write!(f, "killed by {signal}"),
                Err(_) => write!(f, "killed by signal {signal}"),
            },
        }
    }
}

/// A child process: a fork of this process running a closure ([`spawn`](Self::spawn)),
/// or a fresh start of this executable running a registered entry
/// ([`Spawn`](crate::Spawn)).
///
/// A forked child sees everything this process had mapped,
/// [`Shared`](crate::Shared) anonymous segments included. It runs the closure, then
/// exits with code 0, or [`PANIC_EXIT_CODE`] if the closure panicked; it never returns
/// into the parent's code and runs no destructors of the parent's objects.
///
/// Children are always reaped, whichever way they were started: [`join`](Self::join)
/// reaps, and dropping a `Process` joins it (a daemon is killed first), so no zombie is
/// left behind.
///
/// # Start methods: fork or spawn
///
/// Python has `fork`, `spawn` and `forkserver`; shmsync has the first two.
///
/// - **fork**, [`spawn`](Self::spawn) and [`spawn_named`](Self::spawn_named) (named
///   after `std::thread::spawn`): the child is a copy of this process running a
///   closure. It sees everything mapped before the fork and starts fast (on a 2-vCPU
///   VM, about 0.2 ms from start to reaped for an empty closure). It is the right
///   choice when this process has a single thread, or when the closure touches only
///   shared memory and what it makes itself.
/// - **spawn**, [`Spawn`](crate::Spawn): the child is a fresh start of this
///   executable running an entry registered with
///   [`run_if_spawned`](crate::run_if_spawned). It shares only the string arguments
///   and the memfd or named segments it is handed, and pays for an `exec` and a
///   program start (about 1.2 ms for a test binary on the same VM). It is safe
///   whatever threads this process runs: pick it in a program with an async runtime,
///   a thread pool or a library that starts threads, or whenever the child should
///   not inherit the parent's state.
///
/// ## Why the fork form stays a safe function
///
/// `fork` copies only the calling thread. The parent's other threads vanish in the
/// child, and whatever they held at that instant stays held for ever: a `Mutex`, an
/// `RwLock`, a `OnceLock` being initialised, a logger's lock, a half-written channel
/// slot, a thread pool's queue. A child that waits for one of these (or spins on a
/// write that never comes) hangs. It does not corrupt memory: safe code reaches data
/// that another thread was changing only through such a primitive (or an atomic,
/// which is never torn), and the primitive, frozen in its held state, makes the child
/// wait instead of reading half-made data. The remaining hazards are covered: glibc's
/// `malloc` takes every arena's lock across `fork` and resets them in the child, so the
/// child may allocate; and this library's own child path (flushing standard output
/// and error through locks it took before forking, catching a panic, `_exit`) touches
/// no state another parent thread may hold. `unsafe` promises the absence of undefined
/// behaviour, not of deadlock, so [`spawn`](Self::spawn) stays safe.
///
/// What a forked closure must avoid when the parent runs other threads: blocking on
/// anything those threads use (their locks, `Once`s and channels, an async runtime's
/// `block_on`, a thread pool, a connection pool), joining or dropping handles to
/// them, and state that must differ between processes (a random generator's seed,
/// cached process ids). Under another C library than glibc, allocating may hang too.
/// Every wait of this library has a timeout form, so a parent can notice a hung child
/// ([`join_timeout`](Self::join_timeout)) and [`kill`](Self::kill) it. When in doubt,
/// use spawn.
///
/// # Example
///
/// ```
/// use shmsync::Process;
/// use std::time::Duration;
///
/// let mut sleeper = Process::spawn_named("sleeper", || std::thread::sleep(Duration::from_secs(60)))?;
/// assert_eq!(sleeper.name(), "sleeper");
/// assert!(sleeper.is_alive()?);
/// assert_eq!(sleeper.join_timeout(Duration::from_millis(10))?, None);
/// sleeper.terminate()?;
/// assert_eq!(sleeper.join()?.signal(), Some(libc::SIGTERM));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Process {
    pid: Pid,
    name: String,
    /// Readable when the child exits: a timed join polls it.
    pidfd: OwnedFd,
    status: Option<ExitStatus>,
    daemon: bool,
}

static SPAWNED: AtomicU32 = AtomicU32::new(0);

impl Process {
    /// Runs `f` in a new child process named `Process-N`, as Python names them.
    pub fn spawn(f: impl FnOnce()) -> io::Result<Process> {
        Self::fork(Self::next_name(), f)
    }

    /// Runs `f` in a new child process called `name`.
    pub fn spawn_named(name: &str, f: impl FnOnce()) -> io::Result<Process> {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        Self::fork(name.to_owned(), f)
    }

    fn fork(name: String, f: impl FnOnce()) -> io::Result<Process> {
        // Python flushes before it forks, so that text printed but not yet written is
        // not written twice. Holding both locks across the fork also means that no
        // other thread of ours holds them at the fork: the child (which inherits
        // them held by its only thread, whose lock is re-entrant) can print and flush
        // without waiting for a thread that does not exist in it.
        let mut stdout = io::stdout().lock();
        let mut stderr = io::stderr().lock();
        let _ = stdout.flush();
        let _ = stderr.flush();
        // SAFETY: the child runs only `f` and then `_exit`s, never returning into the
        // parent's code; the fork-after-threads caveat is documented on `Process`.
        let forked = unsafe { fork() };
        match forked? {
            ForkResult::Child => {
                let code = match catch_unwind(AssertUnwindSafe(f)) {
                    Ok(()) => 0,
                    Err(_) => PANIC_EXIT_CODE,
                };
                // Through the guards taken before the fork: never a lock that a
                // parent thread may have held.
                let _ = stdout.flush();
                let _ = stderr.flush();
                // SAFETY: `_exit` ends the process without running the parent's atexit
                // handlers or destructors, which belong to the parent.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop((stdout, stderr));
                Self::adopt(child, name)
            }
        }
    }

    /// The name of the next unnamed child: `Process-N`, as Python names them.
    pub(crate) fn next_name() -> String {
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
        format!("Process-{n}")
    }

    /// Takes charge of `child`, a child of this process that nothing else waits
    /// for: from here on only the returned `Process` reaps it. If that cannot be set
    /// up, the child is killed and reaped.
    pub(crate) fn adopt(child: Pid, name: String) -> io::Result<Process> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) };
        if fd < 0 {
            let error = io::Error::last_os_error();
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(error);
        }
        Ok(Process {
            pid: child,
            name,
            // SAFETY: `fd` was just returned by pidfd_open and is owned by no one else.
            pidfd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            status: None,
            daemon: false,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// The name it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks it a daemon: dropping it kills it instead of waiting for it, as Python
    /// terminates daemon children when the parent exits.
    pub fn set_daemon(&mut self, daemon: bool) {
        self.daemon = daemon;
    }

    /// How it ended, once it has been reaped (Python's `exitcode`).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Whether it is still running (reaping it if it has ended).
    pub fn is_alive(&mut self) -> io::Result<bool> {
        Ok(self.reap(WaitPidFlag::WNOHANG)?.is_none())
    }

    /// Waits for it to end and returns how it ended.
    pub fn join(mut self) -> io::Result<ExitStatus> {
        self.wait()
    }

    /// Waits at most `timeout` for it to end: `None` if it is still running.
    pub fn join_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(status) = self.reap(WaitPidFlag::WNOHANG)? {
                return Ok(Some(status));
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok(None);
            }
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Asks it to stop with SIGTERM (Python's `terminate()`).
    pub fn terminate(&self) -> io::Result<()> {
        self.signal(Signal::SIGTERM)
    }

    /// Stops it with SIGKILL (Python's `kill()`).
    pub fn kill(&self) -> io::Result<()> {
        self.signal(Signal::SIGKILL)
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        // Until it is reaped its pid cannot be reused, so this reaches our child.
        if self.status.is_none() {
            kill(self.pid, signal)?;
        }
        Ok(())
    }

    fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.reap(WaitPidFlag::empty())? {
                return Ok(status);
            }
        }
    }

    /// One `waitpid`; records and returns the status once the child has ended.
    fn reap(&mut self, flags: WaitPidFlag) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        self.status = match waitpid(self.pid, Some(flags)) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(ExitStatus::Signaled(signal as i32)),
            Ok(_) | Err(Errno::EINTR) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(self.status)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_none() {
            if self.daemon {
                let _ = self.kill();
            }
            let _ = self.wait();
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid.as_raw())
            .field("status", &self.status)
            .finish()
    }
}
