//! Shared-memory segments holding one [`ShmSafe`] value: anonymous (inherited by forked
//! children), memfd (handed to exec'd children by file descriptor) and named (opened by
//! unrelated processes).
//!
//! Every segment starts with a header: magic, format version, the stored type's layout
//! and an init state. An opener waits, with a timeout, until the creator has finished
//! initialising, so it never sees half-built memory, and any disagreement is a typed
//! [`ShmError`].

use std::ffi::CString;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{mmap, mmap_anonymous, munmap, shm_open, shm_unlink, MapFlags, ProtFlags};
use nix::sys::stat::{fchmod, fstat, Mode};
use portable_atomic::{AtomicU32, AtomicU64};
use shmsync_core::{Ordering, ShmSafe, Wait};

use crate::error::ShmError;
use crate::futex::Futex;
use crate::identity::{check_type, description_bytes, type_identity, DESCRIPTION_LEN};

const MAGIC: u64 = u64::from_le_bytes(*b"SHMSYNC\0");
/// The header's format; bump it whenever the header, a core type's layout, or how
/// layouts are fingerprinted and described changes.
///
/// A program opens only segments of its own format version: an older or a newer
/// segment is refused with [`ShmError::VersionMismatch`]. The magic and the version
/// keep their place in every version, so that this check itself always works.
pub const FORMAT_VERSION: u32 = 2;
const INITIALISING: u32 = 0;
const READY: u32 = 1;
/// The header takes the first 1024 bytes; the value follows, aligned.
const HEADER_LEN: usize = 1024;

#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    state: shmsync_core::AtomicU32,
    /// The stored type's layout fingerprint and readable description.
    fingerprint: AtomicU64,
    total_len: AtomicU64,
    description: [AtomicU64; DESCRIPTION_LEN / 8],
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_LEN);

// Atomics emulated with locks (portable-atomic's fallback) are atomic within one
// process only; memory shared between processes must use the CPU's own.
const _: () = assert!(
    portable_atomic::AtomicU8::is_always_lock_free()
        && portable_atomic::AtomicU16::is_always_lock_free()
        && portable_atomic::AtomicU32::is_always_lock_free()
        && portable_atomic::AtomicU64::is_always_lock_free(),
    "shmsync shares atomics between processes: they must be natively lock-free here"
);

/// A `T` in shared memory, seen as `&T` by every process that maps it.
///
/// # Example
///
/// ```
/// use shmsync::{Process, Shared, Value};
///
/// let counter = Shared::anonymous(Value::<u64>::new(0))?; // inherited by fork
/// let child = Process::spawn(|| { counter.fetch_add(1); })?;
/// assert!(child.join()?.success());
/// assert_eq!(counter.get(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Shared<T: ShmSafe> {
    base: NonNull<u8>,
    len: usize,
    name: Option<String>,
    fd: Option<OwnedFd>,
    /// The process that created the name and may remove it; forked children inherit
    /// this struct and must not.
    unlink_by: Option<u32>,
    kind: Kind,
    _type: PhantomData<T>,
}

/// What backs a segment, which decides how a spawned child can be handed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anonymous,
    Memfd,
    Named,
}

/// How a segment is handed to a spawned child (see [`crate::Spawn::segment`]).
#[derive(Debug)]
pub(crate) enum Handoff<'a> {
    /// It cannot be: only forked children see it.
    Anonymous,
    /// As this file descriptor, labelled `label`.
    Fd { fd: BorrowedFd<'a>, label: &'a str },
    /// By this name.
    Name(&'a str),
}

// SAFETY: `Shared<T>` hands out only `&T`, and `T: ShmSafe` is `Sync`; the mapping
// itself may be used and unmapped from any thread.
unsafe impl<T: ShmSafe> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for Shared<T> {}

fn data_offset<T>() -> usize {
    const {
        assert!(
            std::mem::align_of::<T>() <= 4096,
            "a type in shared memory may need an alignment of at most 4096 bytes (a page): \
             a mapping's address is aligned to no more"
        )
    };
    HEADER_LEN.next_multiple_of(std::mem::align_of::<T>())
}

fn segment_len<T>() -> usize {
    data_offset::<T>() + std::mem::size_of::<T>()
}

/// The error of a call on the name `name`: the ones a person can act on by name, else
/// the system's.
fn name_error(operation: &'static str, name: &str, errno: Errno) -> ShmError {
    let name = name.to_owned();
    match errno {
        Errno::EEXIST => ShmError::AlreadyExists { name },
        Errno::ENOENT => ShmError::NotFound { name },
        Errno::EACCES => ShmError::PermissionDenied { name },
        _ => ShmError::Os {
            operation,
            name,
            source: std::io::Error::from(errno),
        },
    }
}

fn os_error(operation: &'static str, name: &str, errno: Errno) -> ShmError {
    ShmError::Os {
        operation,
        name: name.to_owned(),
        source: std::io::Error::from(errno),
    }
}

/// Checks a segment name and returns the path `shm_open` wants: "/name".
fn shm_path(name: &str) -> Result<CString, ShmError> {
    let invalid = |reason| ShmError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 250 {
        return Err(invalid("it is longer than 250 bytes"));
    }
    if name == "." || name == ".." {
        return Err(invalid("it is a directory name"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(invalid(
            "use only letters, digits, '.', '_' and '-' (no '/')",
        ));
    }
    Ok(CString::new(format!("/{name}")).expect("validated names hold no NUL"))
}

impl<T: ShmSafe> Shared<T> {
    /// Maps `value` into anonymous shared memory. Children forked afterwards (see
    /// [`Process`](crate::Process)) see the same memory; nothing else can open it.
    ///
    /// Only [`ShmSafe`] types go into shared memory; a plain struct is refused at
    /// compile time, with a pointer to `shm_struct!`:
    ///
    /// ```compile_fail,E0277
    /// struct Plain { count: u64 }
    /// let _ = shmsync::Shared::anonymous(Plain { count: 0 });
    /// ```
    ///
    /// So are `bool` and `char`, which have bytes another process could write that are
    /// no `bool` (2) or `char` (0xD800); share a `Value<bool>` (any non-zero byte
    /// reads as `true`) or a `u32`:
    ///
    /// ```compile_fail,E0277
    /// let _ = shmsync::Shared::anonymous(true);
    /// ```
    ///
    /// ```compile_fail,E0277
    /// let _ = shmsync::Shared::anonymous('x');
    /// ```
    ///
    /// So is a type that needs a larger alignment than a page, which no mapping has:
    ///
    /// ```compile_fail,E0080
    /// #[repr(C, align(8192))]
    /// struct Huge([u8; 8192]);
    /// // SAFETY: plain bytes (the alignment is what is refused).
    /// unsafe impl shmsync::ShmSafe for Huge {
    ///     const LAYOUT: shmsync::Layout = shmsync::Layout::opaque::<Self>("doc::Huge");
    /// }
    /// let _ = shmsync::Shared::anonymous(Huge([0; 8192]));
    /// ```
    pub fn anonymous(value: T) -> Result<Self, ShmError> {
        let len = NonZeroUsize::new(segment_len::<T>()).expect("the header is not empty");
        // SAFETY: a fresh anonymous mapping aliases no Rust object.
        let base = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| os_error("mmap", "(anonymous)", e))?;
        let shared: Shared<T> = Shared {
            base: base.cast(),
            len: len.get(),
            name: None,
            fd: None,
            unlink_by: None,
            kind: Kind::Anonymous,
            _type: PhantomData,
        };
        shared.initialise(value);
        Ok(shared)
    }

    /// Creates a memfd-backed segment holding `value`. `name` only labels it (in
    /// `/proc/PID/fd`).
    ///
    /// Its [`fd`](Self::fd) is close-on-exec: no program this process starts inherits
    /// it by accident. Hand it to a child on purpose with
    /// [`Spawn::segment`](crate::Spawn::segment); the child maps it with
    /// [`Spawned::segment`](crate::Spawned::segment) (or, given the descriptor by
    /// other means, with [`from_fd`](Self::from_fd)).
    pub fn memfd(name: &str, value: T) -> Result<Self, ShmError> {
        let label = shm_path(name)?;
        let fd =
            nix::sys::memfd::memfd_create(label.as_c_str(), nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .map_err(|e| os_error("memfd_create", name, e))?;
        Self::create_in(fd, name, Kind::Memfd, None, value)
    }

    /// Creates the named segment `name` (mode 0600, failing if it exists) holding
    /// `value`. Unrelated processes [`open`](Self::open) it by name. The name is
    /// removed when this `Shared` is dropped, unless [`persist`](Self::persist) is
    /// called.
    pub fn create(name: &str, value: T) -> Result<Self, ShmError> {
        let path = shm_path(name)?;
        let mode = Mode::S_IRUSR | Mode::S_IWUSR;
        let fd = shm_open(
            path.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            mode,
        )
        .map_err(|e| name_error("shm_open", name, e))?;
        // The name exists from here on: remove it again if creation fails half-way.
        let created = (|| {
            // Exactly 0600 whatever the umask.
            fchmod(&fd, mode).map_err(|e| os_error("fchmod", name, e))?;
            Self::create_in(fd, name, Kind::Named, Some(std::process::id()), value)
        })();
        if created.is_err() {
            let _ = shm_unlink(path.as_c_str());
        }
        created
    }

    /// Sizes `fd`, reserves its memory, maps it and writes the header and `value`.
    fn create_in(
        fd: OwnedFd,
        name: &str,
        kind: Kind,
        unlink_by: Option<u32>,
        value: T,
    ) -> Result<Self, ShmError> {
        let len = segment_len::<T>();
        nix::unistd::ftruncate(&fd, len as i64).map_err(|e| os_error("ftruncate", name, e))?;
        // Reserve the pages now: a full /dev/shm fails here, with an error, rather
        // than with SIGBUS at the first write.
        match nix::fcntl::posix_fallocate(&fd, 0, len as i64) {
            Ok(()) | Err(Errno::EOPNOTSUPP) => {}
            Err(Errno::ENOSPC) => {
                return Err(ShmError::NoSpace {
                    name: name.to_owned(),
                    bytes: len as u64,
                })
            }
            Err(e) => return Err(os_error("posix_fallocate", name, e)),
        }
        let shared = Self::map(fd, len, name, kind, unlink_by)?;
        shared.initialise(value);
        Ok(shared)
    }

    /// Opens the named segment `name`, waiting up to `timeout` for its creator to
    /// finish initialising it.
    pub fn open(name: &str, timeout: Duration) -> Result<Self, ShmError> {
        let path = shm_path(name)?;
        let fd = shm_open(path.as_c_str(), OFlag::O_RDWR, Mode::empty())
            .map_err(|e| name_error("shm_open", name, e))?;
        Self::open_fd(fd, name, Kind::Named, timeout)
    }

    /// Maps a segment made by [`memfd`](Self::memfd) in another process, from its
    /// file descriptor (inherited across `exec`).
    pub fn from_fd(fd: OwnedFd, timeout: Duration) -> Result<Self, ShmError> {
        Self::open_fd(fd, "(memfd)", Kind::Memfd, timeout)
    }

    /// Maps the memfd segment `fd`, labelled `label`, handed to a spawned child.
    pub(crate) fn from_handed_fd(
        fd: OwnedFd,
        label: &str,
        timeout: Duration,
    ) -> Result<Self, ShmError> {
        Self::open_fd(fd, label, Kind::Memfd, timeout)
    }

    fn open_fd(fd: OwnedFd, name: &str, kind: Kind, timeout: Duration) -> Result<Self, ShmError> {
        let started = Futex::now();
        let deadline =
            started.saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        let not_ready = || ShmError::NotReady {
            name: name.to_owned(),
            waited: Duration::from_nanos(Futex::now() - started),
        };
        // The creator sizes the file before it writes anything: wait for that.
        let len = loop {
            let len = fstat(&fd).map_err(|e| os_error("fstat", name, e))?.st_size as usize;
            if len >= HEADER_LEN {
                break len;
            }
            if Futex::now() >= deadline {
                return Err(not_ready());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let shared = Self::map(fd, len, name, kind, None)?;
        let header = shared.header();
        loop {
            match header.magic.load(Ordering::Acquire) {
                MAGIC => break,
                0 if Futex::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                0 => return Err(not_ready()),
                _ => {
                    return Err(ShmError::NotShmsync {
                        name: name.to_owned(),
                    })
                }
            }
        }
        let version = header.version.load(Ordering::Relaxed);
        if version != FORMAT_VERSION {
            return Err(ShmError::VersionMismatch {
                name: name.to_owned(),
                expected: FORMAT_VERSION,
                found: version,
            });
        }
        let description: Vec<u8> = (header.description.iter())
            .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
            .collect();
        check_type::<T>(
            name,
            header.fingerprint.load(Ordering::Relaxed),
            &description,
        )?;
        let total_len = header.total_len.load(Ordering::Relaxed);
        if total_len != len as u64 || total_len != segment_len::<T>() as u64 {
            return Err(ShmError::SizeMismatch {
                name: name.to_owned(),
                expected: total_len,
                found: len as u64,
            });
        }
        loop {
            if header.state.load(Ordering::Acquire) == READY {
                return Ok(shared);
            }
            if Futex::now() >= deadline {
                return Err(not_ready());
            }
            Futex::wait(&header.state, INITIALISING, Some(deadline));
        }
    }

    fn map(
        fd: OwnedFd,
        len: usize,
        name: &str,
        kind: Kind,
        unlink_by: Option<u32>,
    ) -> Result<Self, ShmError> {
        let size = NonZeroUsize::new(len).expect("segments are at least a header long");
        // SAFETY: a new shared mapping of a file; Rust code reaches it only through
        // the header's atomics and `&T`, never through `&mut`.
        let base = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .map_err(|e| os_error("mmap", name, e))?;
        Ok(Shared {
            base: base.cast(),
            len,
            name: Some(name.to_owned()),
            fd: Some(fd),
            unlink_by,
            kind,
            _type: PhantomData,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: every mapping is at least HEADER_LEN bytes, page-aligned, and the
        // header is all atomics, valid for any bytes (zero included).
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// Writes the header and `value` into a fresh mapping and marks it ready.
    fn initialise(&self, value: T) {
        let header = self.header();
        let (fingerprint, description) = type_identity::<T>();
        header.version.store(FORMAT_VERSION, Ordering::Relaxed);
        header.fingerprint.store(fingerprint, Ordering::Relaxed);
        let bytes = description_bytes(description);
        for (word, chunk) in header.description.iter().zip(bytes.chunks_exact(8)) {
            let chunk = chunk.try_into().expect("chunks of 8 bytes");
            word.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
        }
        header.total_len.store(self.len as u64, Ordering::Relaxed);
        header.magic.store(MAGIC, Ordering::Release);
        // SAFETY: the mapping is `segment_len::<T>()` bytes, so `data_offset` holds a
        // `T`, aligned because the mapping is page-aligned and no opener reads it
        // before READY is published below.
        unsafe {
            self.base
                .as_ptr()
                .add(data_offset::<T>())
                .cast::<T>()
                .write(value)
        };
        header.state.store(READY, Ordering::Release);
        Futex::wake_all(&header.state);
    }

    /// The segment's name; `None` for an anonymous one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The file descriptor of a memfd or named segment.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// How [`Spawn`](crate::Spawn) hands this segment to a child.
    pub(crate) fn handoff(&self) -> Handoff<'_> {
        match (self.kind, &self.fd, &self.name) {
            (Kind::Memfd, Some(fd), Some(label)) => Handoff::Fd {
                fd: fd.as_fd(),
                label,
            },
            (Kind::Named, _, Some(name)) => Handoff::Name(name),
            _ => Handoff::Anonymous,
        }
    }

    /// Keeps the name after this `Shared` is dropped, for processes that come later;
    /// remove it with [`unlink`](Self::unlink).
    pub fn persist(&mut self) {
        self.unlink_by = None;
    }

    /// Removes the named segment `name`. Processes that have it mapped keep it.
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        shm_unlink(shm_path(name)?.as_c_str()).map_err(|e| name_error("shm_unlink", name, e))
    }
}

impl<T: ShmSafe> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a `Shared` exists only once the value was written (by `initialise`)
        // or seen READY with a matching layout (by `open_fd`); it stays mapped until
        // drop, and `T: ShmSafe` makes `&T` sound while other processes use it.
        unsafe { &*self.base.as_ptr().add(data_offset::<T>()).cast::<T>() }
    }
}

impl<T: ShmSafe> Drop for Shared<T> {
    fn drop(&mut self) {
        // A lock in here that this thread still holds (a forgotten guard, an `acquire`
        // never released) goes to the next locker as if this thread had died, before
        // the memory its robust-list entry names goes away.
        crate::Robust::abandon_range(self.base.as_ptr() as usize, self.len);
        // SAFETY: `base`/`len` are the mapping made at construction, and no `&T`
        // outlives `self`.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
        if let (Some(creator), Some(name)) = (self.unlink_by, &self.name) {
            if creator == std::process::id() {
                let _ = Self::unlink(name);
            }
        }
    }
}

impl<T: ShmSafe + std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("fd", &self.fd.as_ref().map(|fd| fd.as_raw_fd()))
            .field("value", &**self)
            .finish()
    }
}
