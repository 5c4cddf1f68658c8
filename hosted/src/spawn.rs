//! Python's `spawn` start method: a child that is a fresh start of this executable,
//! not a fork of this process, running an entry function registered by name.
//!
//! The parent describes the child with [`Spawn`]: the entry's name, its arguments and
//! the segments it is handed. The child is the current executable, started with
//! [`std::process::Command`]; it learns what to run from environment variables. At
//! the very start of `main`, [`run_if_spawned`] looks for them: in a spawned child it
//! runs the named entry and exits, in any other process it returns at once.
//!
//! A memfd segment is handed as a file descriptor the child inherits on purpose (every
//! other descriptor of the library is close-on-exec); a named segment is handed by its
//! name. An anonymous segment cannot be handed: only forked children see it.

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::unistd::Pid;
use shmsync_core::ShmSafe;

use crate::error::ShmError;
use crate::process::{Process, PANIC_EXIT_CODE};
use crate::shm::{Handoff, Shared};

/// The exit code of a spawned child whose entry returned an error (printed on its
/// stderr), as a Rust `main` that returns `Err`.
pub const ENTRY_FAILED_EXIT_CODE: i32 = 1;

/// The exit code of a spawned child asked to run an entry that its `main` did not
/// register with [`run_if_spawned`] (the error is printed on its stderr).
pub const UNKNOWN_ENTRY_EXIT_CODE: i32 = 127;

/// What a spawned child runs: it gets what the parent handed it, and returns an error
/// to exit with [`ENTRY_FAILED_EXIT_CODE`].
pub type Entry = fn(&Spawned) -> Result<(), Box<dyn Error>>;

const PREFIX: &str = "SHMSYNC_SPAWN_";
const ENTRY_VAR: &str = "SHMSYNC_SPAWN_ENTRY";
const ARG_VAR: &str = "SHMSYNC_SPAWN_ARG_";
const SEGMENT_VAR: &str = "SHMSYNC_SPAWN_SEGMENT_";

/// Why a child could not be spawned, or could not get what it was handed.
///
/// # Example
///
/// ```
/// use shmsync::{Shared, Spawn, SpawnError, Value};
///
/// // Only forked children see an anonymous segment: it cannot be handed.
/// let counter = Shared::anonymous(Value::<u64>::new(0))?;
/// let error = Spawn::new("count").segment(&counter).start().unwrap_err();
/// assert!(matches!(error, SpawnError::AnonymousSegment { index: 0 }));
/// println!("{error}");
/// assert_eq!(format!("{error:?}"), error.to_string()); // as `main` would print it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub enum SpawnError {
    /// The segment at `index` is anonymous: a spawned child cannot map it.
    AnonymousSegment {
        /// Its position among the handed segments.
        index: usize,
    },
    /// The current executable could not be found.
    CurrentExe(io::Error),
    /// The child could not be started.
    Start {
        /// The executable.
        program: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The child was asked to run an entry that was not registered.
    UnknownEntry {
        /// The entry asked for.
        name: String,
        /// The entries registered with [`run_if_spawned`].
        known: Vec<String>,
    },
    /// The child asked for an argument it was not handed.
    MissingArgument {
        /// The argument asked for.
        index: usize,
        /// How many it was handed.
        count: usize,
    },
    /// The child asked for a segment it was not handed.
    MissingSegment {
        /// The segment asked for.
        index: usize,
        /// How many it was handed.
        count: usize,
    },
    /// A handed segment could not be mapped (the wrong type, for example).
    Segment {
        /// Its position among the handed segments.
        index: usize,
        /// Why it could not be mapped.
        source: ShmError,
    },
    /// An environment variable that should describe a handed segment does not: it was
    /// not written by [`Spawn`], or names a descriptor that is not open.
    BadHandoff {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
    },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::AnonymousSegment { index } => write!(
                f,
                "segment {index} is anonymous, and only forked children see an anonymous \
                 segment; make it with Shared::memfd or Shared::create to hand it to a \
                 spawned child"
            ),
            SpawnError::CurrentExe(source) => {
                write!(f, "cannot find the current executable to spawn: {source}")
            }
            SpawnError::Start { program, source } => {
                write!(f, "cannot start {}: {source}", program.display())
            }
            SpawnError::UnknownEntry { name, known } => write!(
                f,
                "no entry named {name:?} is registered (known: {}); register it with \
                 shmsync::run_if_spawned at the start of main",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
            SpawnError::MissingArgument { index, count } => write!(
                f,
                "argument {index} was not handed to this child (it was handed {count})"
            ),
            SpawnError::MissingSegment { index, count } => write!(
                f,
                "segment {index} was not handed to this child (it was handed {count})"
            ),
            SpawnError::Segment { index, source } => {
                write!(f, "handed segment {index}: {source}")
            }
            SpawnError::BadHandoff { variable, value } => write!(
                f,
                "{variable}={value:?} does not describe a segment handed by shmsync::Spawn"
            ),
        }
    }
}

/// The message, as `Display` writes it: what `main` prints when it returns the error.
impl fmt::Debug for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error for SpawnError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SpawnError::CurrentExe(source) | SpawnError::Start { source, .. } => Some(source),
            SpawnError::Segment { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A child to start with Python's `spawn` start method: a fresh start of the current
/// executable that runs the entry `entry`, registered with [`run_if_spawned`].
///
/// The child shares only what it is handed: [`arg`](Self::arg)s and
/// [`segment`](Self::segment)s. [`start`](Self::start) returns the same [`Process`]
/// as a forked child's, with the same `join`, `join_timeout`, `terminate`, `kill`,
/// `exit_status` and reaping on drop. The child exits with code 0 when the entry
/// returns `Ok`, [`ENTRY_FAILED_EXIT_CODE`] when it returns an error,
/// [`PANIC_EXIT_CODE`] when it panics, and [`UNKNOWN_ENTRY_EXIT_CODE`] when `entry`
/// is not registered.
///
/// # Example
///
/// The program registers its entries first thing in `main`; started again as a
/// spawned child, it runs `count` there and exits.
///
/// ```
/// use shmsync::{run_if_spawned, Shared, Spawn, Spawned, Value};
/// use std::error::Error;
///
/// fn count(child: &Spawned) -> Result<(), Box<dyn Error>> {
///     let counter = child.segment::<Value<u64>>(0)?;
///     let times: u64 = child.arg(0)?.parse()?;
///     for _ in 0..times {
///         counter.fetch_add(1);
///     }
///     Ok(())
/// }
///
/// fn main() -> Result<(), Box<dyn Error>> {
///     run_if_spawned(&[("count", count)]);
///
///     let counter = Shared::memfd("counter", Value::<u64>::new(0))?;
///     let child = Spawn::new("count").arg("1000").segment(&counter).start()?;
///     assert!(child.join()?.success());
///     assert_eq!(counter.get(), 1000);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
#[must_use = "a Spawn does nothing until `start` is called"]
pub struct Spawn<'a> {
    entry: String,
    name: Option<String>,
    exe_args: Vec<OsString>,
    args: Vec<String>,
    segments: Vec<Handoff<'a>>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl<'a> Spawn<'a> {
    /// A child that will run the entry registered as `entry`.
    pub fn new(entry: &str) -> Spawn<'a> {
        Spawn {
            entry: entry.to_owned(),
            name: None,
            exe_args: Vec::new(),
            args: Vec::new(),
            segments: Vec::new(),
            stdout: None,
            stderr: None,
        }
    }

    /// Names the [`Process`] (`Process-N` by default, as for a forked child).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Hands the child an argument; it reads it with [`Spawned::arg`].
    ///
    /// Arguments travel in environment variables, one each: fine for the handful a
    /// program passes, and slow for tens of thousands (the C library scans the whole
    /// environment to remove each one). Hand bulk data through a segment.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Hands the child several arguments, in order.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Hands the child `segment`, the next by index; it maps it with
    /// [`Spawned::segment`]. A memfd segment is handed as a file descriptor the child
    /// inherits, a named one by its name. An anonymous segment cannot be handed:
    /// [`start`](Self::start) refuses it with [`SpawnError::AnonymousSegment`].
    ///
    /// Keep a named segment's creator alive until the child has mapped it: dropping
    /// it removes the name.
    pub fn segment<T: ShmSafe>(mut self, segment: &'a Shared<T>) -> Self {
        self.segments.push(segment.handoff());
        self
    }

    /// The command-line arguments the executable is started with; none by default.
    ///
    /// A program that registers its entries at the start of `main` needs none. A test
    /// harness runs its own `main`, so a test re-executes itself and registers its
    /// entries at the start of the test: pass `["--exact", "the_test", "--nocapture"]`
    /// (and register with [`run_if_spawned`] as the test's first statement). If the
    /// arguments select no test, the child runs no entry and exits with code 0.
    pub fn exe_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.exe_args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Where the child's standard output goes, as [`Command::stdout`]; inherited by
    /// default. The [`Process`] keeps no pipe, so give [`Stdio::null`], a file, or
    /// the write end of a pipe whose read end you keep, not [`Stdio::piped`].
    pub fn stdout(mut self, stdout: impl Into<Stdio>) -> Self {
        self.stdout = Some(stdout.into());
        self
    }

    /// Where the child's standard error goes; see [`stdout`](Self::stdout).
    pub fn stderr(mut self, stderr: impl Into<Stdio>) -> Self {
        self.stderr = Some(stderr.into());
        self
    }

    /// Starts the child.
    ///
    /// Only the descriptors of the handed memfd segments are inherited on purpose
    /// (besides standard input, output and error, and any descriptor this program
    /// made inheritable itself); the library's other descriptors are close-on-exec.
    pub fn start(self) -> Result<Process, SpawnError> {
        let program = std::env::current_exe().map_err(SpawnError::CurrentExe)?;
        let mut command = Command::new(&program);
        command.args(&self.exe_args);
        // Variables this process was itself spawned with describe another child.
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with(PREFIX) {
                command.env_remove(variable);
            }
        }
        command.env(ENTRY_VAR, &self.entry);
        for (index, arg) in self.args.iter().enumerate() {
            command.env(format!("{ARG_VAR}{index}"), arg);
        }
        let mut handed_fds: Vec<RawFd> = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            let value = match segment {
                Handoff::Anonymous => return Err(SpawnError::AnonymousSegment { index }),
                Handoff::Fd { fd, label } => {
                    handed_fds.push(fd.as_raw_fd());
                    format!("fd:{}:{label}", fd.as_raw_fd())
                }
                Handoff::Name(name) => format!("name:{name}"),
            };
            command.env(format!("{SEGMENT_VAR}{index}"), value);
        }
        if !handed_fds.is_empty() {
            // SAFETY: between fork and exec the closure calls only fcntl, which is
            // async-signal-safe, on descriptors that `self.segments` keeps open until
            // `spawn` returns. Clearing close-on-exec there changes the child's
            // descriptor table only, never this process's.
            unsafe {
                command.pre_exec(move || {
                    for &fd in &handed_fds {
                        if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        if let Some(stdout) = self.stdout {
            command.stdout(stdout);
        }
        if let Some(stderr) = self.stderr {
            command.stderr(stderr);
        }
        let child = command.spawn().map_err(|source| SpawnError::Start {
            program: program.clone(),
            source,
        })?;
        let pid = Pid::from_raw(child.id() as i32);
        // Dropping a std `Child` neither waits for nor kills it: the `Process` below
        // is the only one that reaps it.
        drop(child);
        let name = self.name.unwrap_or_else(Process::next_name);
        Process::adopt(pid, name).map_err(|source| SpawnError::Start { program, source })
    }
}

/// In a child started by [`Spawn`], runs the entry it was asked to run and exits; in
/// any other process, returns at once. This is Python's
/// `if __name__ == "__main__":` and `freeze_support()` in one call.
///
/// Call it as the first statement of `main`, before any thread or async runtime
/// starts (it removes its own environment variables, so that the entry's own
/// children do not run the entry again). The child exits with code 0 when the entry
/// returns `Ok`, [`ENTRY_FAILED_EXIT_CODE`] after printing an error it returned,
/// [`PANIC_EXIT_CODE`] if it panicked, and [`UNKNOWN_ENTRY_EXIT_CODE`] after printing
/// [`SpawnError::UnknownEntry`] if no entry of that name is in `entries`.
///
/// # Example
///
/// ```
/// use shmsync::{run_if_spawned, Spawned};
/// use std::error::Error;
///
/// fn hello(child: &Spawned) -> Result<(), Box<dyn Error>> {
///     println!("hello, {}", child.arg(0)?);
///     Ok(())
/// }
///
/// fn main() {
///     run_if_spawned(&[("hello", hello)]);
///     // Only the parent gets here.
/// }
/// ```
pub fn run_if_spawned(entries: &[(&str, Entry)]) {
    let Some(spawned) = Spawned::from_environment() else {
        return;
    };
    let code = match entries.iter().find(|(name, _)| *name == spawned.entry) {
        None => {
            let error = SpawnError::UnknownEntry {
                name: spawned.entry.clone(),
                known: entries.iter().map(|(name, _)| (*name).to_owned()).collect(),
            };
            eprintln!("shmsync: {error}");
            UNKNOWN_ENTRY_EXIT_CODE
        }
        Some((name, entry)) => match catch_unwind(AssertUnwindSafe(|| entry(&spawned))) {
            Ok(Ok(())) => 0,
            Ok(Err(error)) => {
                eprintln!("shmsync: entry {name:?} failed: {error}");
                ENTRY_FAILED_EXIT_CODE
            }
            Err(_) => PANIC_EXIT_CODE,
        },
    };
    drop(spawned);
    std::process::exit(code)
}

/// What a spawned child was handed: its entry's name, arguments and segments.
///
/// # Example
///
/// ```
/// use shmsync::{Spawned, SpawnError, Value};
/// use std::error::Error;
///
/// fn add(child: &Spawned) -> Result<(), Box<dyn Error>> {
///     let total = child.segment::<Value<i64>>(0)?;
///     for arg in child.args() {
///         total.fetch_add(arg.parse()?);
///     }
///     if let Err(SpawnError::MissingSegment { index: 1, count: 1 }) =
///         child.segment::<Value<i64>>(1)
///     {
///         println!("one segment was handed");
///     }
///     Ok(())
/// }
/// # let _: shmsync::Entry = add;
/// ```
#[derive(Debug)]
pub struct Spawned {
    entry: String,
    args: Vec<String>,
    segments: Vec<Handed>,
}

/// A segment as the child received it.
#[derive(Debug)]
enum Handed {
    Fd { fd: OwnedFd, label: String },
    Name(String),
    Bad { variable: String, value: String },
}

impl Spawned {
    /// Reads and removes this process's spawn variables, and takes charge of the
    /// handed descriptors (making them close-on-exec again); `None` if this process
    /// was not started by [`Spawn`].
    fn from_environment() -> Option<Spawned> {
        let entry = std::env::var_os(ENTRY_VAR)?.to_string_lossy().into_owned();
        // One pass over the environment: looking each variable up would scan it again.
        let ours: std::collections::HashMap<String, OsString> = std::env::vars_os()
            .filter_map(|(variable, value)| {
                let variable = variable.into_string().ok()?;
                variable.starts_with(PREFIX).then_some((variable, value))
            })
            .collect();
        let var = |name: String| ours.get(&name).map(|value| (name, value));
        let args = (0..)
            .map_while(|index| var(format!("{ARG_VAR}{index}")))
            .map(|(_, value)| value.to_string_lossy().into_owned())
            .collect();
        let mut segments = Vec::new();
        for index in 0.. {
            let Some((variable, value)) = var(format!("{SEGMENT_VAR}{index}")) else {
                break;
            };
            let handed = Handed::parse(variable, value.to_string_lossy().into(), &segments);
            segments.push(handed);
        }
        for variable in ours.keys() {
            std::env::remove_var(variable);
        }
        Some(Spawned {
            entry,
            args,
            segments,
        })
    }

    /// The name of the entry this child runs.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Every argument handed, in order.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The argument at `index`.
    pub fn arg(&self, index: usize) -> Result<&str, SpawnError> {
        self.args
            .get(index)
            .map(String::as_str)
            .ok_or(SpawnError::MissingArgument {
                index,
                count: self.args.len(),
            })
    }

    /// Maps the segment handed at `index` (counting from 0, in the order of
    /// [`Spawn::segment`]), checking that it holds a `T`. It may be called again for
    /// the same segment: each call maps it anew.
    pub fn segment<T: ShmSafe>(&self, index: usize) -> Result<Shared<T>, SpawnError> {
        let handed = self.segments.get(index).ok_or(SpawnError::MissingSegment {
            index,
            count: self.segments.len(),
        })?;
        // The parent's segment is initialised already: there is nothing to wait for.
        let mapped = match handed {
            Handed::Fd { fd, label } => match fd.try_clone() {
                Ok(fd) => Shared::from_handed_fd(fd, label, Duration::ZERO),
                Err(source) => Err(ShmError::Os {
                    operation: "dup",
                    name: label.clone(),
                    source,
                }),
            },
            Handed::Name(name) => Shared::open(name, Duration::ZERO),
            Handed::Bad { variable, value } => {
                return Err(SpawnError::BadHandoff {
                    variable: variable.clone(),
                    value: value.clone(),
                })
            }
        };
        mapped.map_err(|source| SpawnError::Segment { index, source })
    }
}

impl Handed {
    /// `fd:NUMBER:LABEL` or `name:NAME`, as [`Spawn::start`] writes them; `earlier`
    /// are the segments before it (the same descriptor may be handed twice).
    fn parse(variable: String, value: String, earlier: &[Handed]) -> Handed {
        if let Some(name) = value.strip_prefix("name:") {
            return Handed::Name(name.to_owned());
        }
        let Some((number, label)) = value.strip_prefix("fd:").and_then(|rest| {
            let (number, label) = rest.split_once(':')?;
            Some((number.parse::<RawFd>().ok()?, label.to_owned()))
        }) else {
            return Handed::Bad { variable, value };
        };
        let earlier = earlier.iter().find_map(|handed| match handed {
            Handed::Fd { fd, .. } if fd.as_raw_fd() == number => Some(fd),
            _ => None,
        });
        let fd = match earlier {
            // The same segment handed twice: the descriptor is ours already.
            Some(fd) => fd.try_clone().ok(),
            None if number > 2 && adopt_handed_fd(number) => {
                // SAFETY: `adopt_handed_fd` saw `number` open and inheritable, which
                // in a child starting up only a descriptor handed on purpose is, and
                // no earlier variable named it.
                Some(unsafe { OwnedFd::from_raw_fd(number) })
            }
            None => None,
        };
        match fd {
            Some(fd) => Handed::Fd { fd, label },
            None => Handed::Bad { variable, value },
        }
    }
}

/// Whether `fd` is open and was inherited on purpose (not close-on-exec); if so,
/// makes it close-on-exec, so that the programs this child starts do not inherit it.
fn adopt_handed_fd(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of descriptor `fd`, whoever owns it.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 || flags & libc::FD_CLOEXEC != 0 {
        return false;
    }
    // SAFETY: F_SETFD changes only the close-on-exec flag of `fd`, checked open above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) != -1 }
}
