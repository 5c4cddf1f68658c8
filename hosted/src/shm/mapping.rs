//! The raw layer: shared-memory files (memfd and named) and mappings, knowing nothing
//! of what they hold. Sizes, modes, reserving memory, seals, names, leases (the
//! kernel's open-file-description locks), and reads and writes through the file, which
//! fail where memory would raise `SIGBUS`.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::mman::{mmap, mmap_anonymous, munmap, shm_open, shm_unlink, MapFlags, ProtFlags};
use nix::sys::stat::{fchmod, fstat, Mode};

use crate::error::ShmError;

/// Memory mapped shared (`MAP_SHARED`), read-write, unmapped on drop.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is an address range, which any thread may use and unmap.
unsafe impl Send for Mapping {}
// SAFETY: as above; what is read or written through it is the typed layer's concern.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `len` bytes of fresh zeroed memory, shared with children forked later.
    pub(crate) fn anonymous(len: usize) -> Result<Mapping, ShmError> {
        Self::map(None, len)
    }

    /// The first `len` bytes of `file`. Mapping touches nothing: bytes past the file's
    /// end raise `SIGBUS` only when accessed.
    pub(crate) fn of(file: &SegmentFile, len: usize) -> Result<Mapping, ShmError> {
        Self::map(Some(file), len)
    }

    fn map(file: Option<&SegmentFile>, len: usize) -> Result<Mapping, ShmError> {
        let size = NonZeroUsize::new(len).expect("a segment is never empty");
        let protection = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a new shared mapping, anonymous or of a file; it aliases no Rust
        // object, and what is made of its bytes is the typed layer's concern.
        let mapped = unsafe {
            match file {
                Some(file) => mmap(None, size, protection, MapFlags::MAP_SHARED, &file.fd, 0),
                None => mmap_anonymous(None, size, protection, MapFlags::MAP_SHARED),
            }
        };
        let base =
            mapped.map_err(|e| os_error("mmap", file.map_or("(anonymous)", |f| &f.name), e))?;
        Ok(Mapping {
            base: base.cast(),
            len,
        })
    }

    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are this mapping's, and the typed layer hands out no
        // reference that outlives it.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// What a segment's file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A memfd: no name, shared by handing its descriptor on.
    Memfd,
    /// A file in `/dev/shm`, opened by name.
    Named,
}

/// A lease on one byte of a file's lock space (an open-file-description lock): held
/// until released, or until the last descriptor and mapping of the open file
/// description that took it are gone, which a process's death ensures. Processes
/// forked after it was taken share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    /// Many may hold it at once.
    Shared,
    /// Only one may hold it, and only while nobody holds it shared.
    Exclusive,
}

impl Lease {
    fn lock_type(self) -> libc::c_short {
        (match self {
            Lease::Shared => libc::F_RDLCK,
            Lease::Exclusive => libc::F_WRLCK,
        }) as libc::c_short
    }
}

/// What `fstat` says of a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileState {
    /// Its length in bytes.
    pub len: u64,
    /// Whether a name still leads to it.
    pub linked: bool,
    /// Which file it is (device and inode).
    pub id: (u64, u64),
    /// When its metadata last changed (creation, resizing, mode).
    pub changed: SystemTime,
}

/// A memfd or named shared-memory file, labelled by its name for messages.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    fd: OwnedFd,
    name: String,
    kind: Kind,
}

/// The mode of every named segment: its user's only.
fn owner_only() -> Mode {
    Mode::S_IRUSR | Mode::S_IWUSR
}

impl SegmentFile {
    /// Creates the file named `name`, failing with `AlreadyExists` if there is one.
    pub(crate) fn create_named(name: &str) -> Result<SegmentFile, ShmError> {
        let path = shm_path(name)?;
        let fd = shm_open(
            path.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            owner_only(),
        )
        .map_err(|e| name_error("shm_open", name, e))?;
        Ok(SegmentFile {
            fd,
            name: name.to_owned(),
            kind: Kind::Named,
        })
    }

    /// Gives a new named file exactly the mode 0600, whatever the umask.
    pub(crate) fn restrict_to_owner(&self) -> Result<(), ShmError> {
        fchmod(&self.fd, owner_only()).map_err(|errno| self.error("fchmod", errno))
    }

    /// Opens the existing file named `name`.
    pub(crate) fn open_named(name: &str) -> Result<SegmentFile, ShmError> {
        Self::open_existing(name, OFlag::O_RDWR)
    }

    /// Opens the existing file named `name` for reading only: to look at it, never to
    /// attach to it (asking who holds a lease needs no more, and taking one is never
    /// tried).
    pub(crate) fn open_named_read_only(name: &str) -> Result<SegmentFile, ShmError> {
        Self::open_existing(name, OFlag::O_RDONLY)
    }

    fn open_existing(name: &str, access: OFlag) -> Result<SegmentFile, ShmError> {
        let path = shm_path(name)?;
        let fd = shm_open(path.as_c_str(), access, Mode::empty())
            .map_err(|e| name_error("shm_open", name, e))?;
        Ok(SegmentFile {
            fd,
            name: name.to_owned(),
            kind: Kind::Named,
        })
    }

    /// A new memfd labelled `label` (in `/proc/PID/fd`), close-on-exec, that can be
    /// sealed.
    pub(crate) fn memfd(label: &str) -> Result<SegmentFile, ShmError> {
        let path = shm_path(label)?;
        let fd = nix::sys::memfd::memfd_create(
            path.as_c_str(),
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| os_error("memfd_create", label, e))?;
        Ok(SegmentFile {
            fd,
            name: label.to_owned(),
            kind: Kind::Memfd,
        })
    }

    /// A memfd segment's descriptor, labelled `label`, refused unless its size is sealed
    /// against shrinking: anyone else who holds the descriptor of an unsealed file (a
    /// named segment's, a memfd left unsealed) could shrink it under this process's
    /// mapping, and `SIGBUS` would kill it.
    pub(crate) fn from_fd(fd: OwnedFd, label: &str) -> Result<SegmentFile, ShmError> {
        let file = SegmentFile {
            fd,
            name: label.to_owned(),
            kind: Kind::Memfd,
        };
        // A file that takes no seals (not on tmpfs: EINVAL) is not sealed either.
        let seals = fcntl(&file.fd, FcntlArg::F_GET_SEALS).unwrap_or(0);
        if SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK) {
            Ok(file)
        } else {
            Err(ShmError::Unsealed { name: file.name })
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sizes the file to `len` bytes and reserves its memory now: a full `/dev/shm`
    /// fails here, with an error, rather than with `SIGBUS` at the first write.
    pub(crate) fn reserve(&self, len: usize) -> Result<(), ShmError> {
        nix::unistd::ftruncate(&self.fd, len as i64).map_err(|e| self.error("ftruncate", e))?;
        match nix::fcntl::posix_fallocate(&self.fd, 0, len as i64) {
            Ok(()) | Err(Errno::EOPNOTSUPP) => Ok(()),
            Err(Errno::ENOSPC) => Err(ShmError::NoSpace {
                name: self.name.clone(),
                bytes: len as u64,
            }),
            Err(e) => Err(self.error("posix_fallocate", e)),
        }
    }

    /// Fixes a memfd's size for good: nobody, whoever holds its descriptor, can shrink
    /// it (which would raise `SIGBUS` in every process that maps it) or grow it (its
    /// header states its size, and openers check it), and no further seal can be added
    /// (a write seal would stop later openers from mapping it).
    pub(crate) fn seal_size(&self) -> Result<(), ShmError> {
        fcntl(
            &self.fd,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map(drop)
        .map_err(|e| self.error("fcntl(F_ADD_SEALS)", e))
    }

    pub(crate) fn state(&self) -> Result<FileState, ShmError> {
        let stat = fstat(&self.fd).map_err(|e| self.error("fstat", e))?;
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(stat.st_ctime).unwrap_or(0),
                u32::try_from(stat.st_ctime_nsec).unwrap_or(0),
            );
        Ok(FileState {
            len: u64::try_from(stat.st_size).unwrap_or(0),
            linked: stat.st_nlink > 0,
            id: (stat.st_dev, stat.st_ino),
            changed,
        })
    }

    /// Reads from `offset` into `buf` through the file, never through a mapping: bytes
    /// past the end are not there (the count says how many were), not a `SIGBUS`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: usize) -> Result<usize, ShmError> {
        let mut done = 0;
        while done < buf.len() {
            match nix::sys::uio::pread(&self.fd, &mut buf[done..], (offset + done) as i64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.error("pread", e)),
            }
        }
        Ok(done)
    }

    /// Writes `bytes` at `offset` through the file.
    pub(crate) fn write_at(&self, bytes: &[u8], offset: usize) -> Result<(), ShmError> {
        let mut done = 0;
        while done < bytes.len() {
            match nix::sys::uio::pwrite(&self.fd, &bytes[done..], (offset + done) as i64) {
                Ok(0) => return Err(self.error("pwrite", Errno::ENOSPC)),
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.error("pwrite", e)),
            }
        }
        Ok(())
    }

    /// Takes `lease` on byte `byte` of the lock space if nobody holds a conflicting one;
    /// returns whether it did. Taking a lease this file already holds changes its kind.
    pub(crate) fn try_lease(&self, byte: u64, lease: Lease) -> Result<bool, ShmError> {
        match fcntl(
            &self.fd,
            FcntlArg::F_OFD_SETLK(&flock(byte, lease.lock_type())),
        ) {
            Ok(_) => Ok(true),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
            Err(e) => Err(self.error("fcntl(F_OFD_SETLK)", e)),
        }
    }

    /// The kind of a lease that another open file description holds on `byte` and that
    /// conflicts with `lease`, if any.
    pub(crate) fn conflicting(&self, byte: u64, lease: Lease) -> Result<Option<Lease>, ShmError> {
        let mut query = flock(byte, lease.lock_type());
        fcntl(&self.fd, FcntlArg::F_OFD_GETLK(&mut query))
            .map_err(|e| self.error("fcntl(F_OFD_GETLK)", e))?;
        Ok(match i32::from(query.l_type) {
            libc::F_UNLCK => None,
            libc::F_RDLCK => Some(Lease::Shared),
            _ => Some(Lease::Exclusive),
        })
    }

    /// An error of `operation` on this file.
    pub(crate) fn error(&self, operation: &'static str, errno: Errno) -> ShmError {
        os_error(operation, &self.name, errno)
    }
}

/// A lock request for one byte of the lock space (which may lie past the file's end).
fn flock(byte: u64, lock_type: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is plain integers, for which zero is valid (and `l_pid` must be 0
    // for open-file-description locks).
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = lock_type;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    request.l_start = byte as libc::off_t;
    request.l_len = 1;
    request
}

/// Where `shm_open` keeps named segments on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The names of the files in [`SHM_DIR`] that can name a segment (see [`shm_path`]),
/// sorted: shmsync's segments among them, and other programs' files.
pub(crate) fn names() -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            if shm_path(name).is_ok() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Removes the name `name`. Processes that have the file open or mapped keep it.
pub(crate) fn unlink_name(name: &str) -> Result<(), ShmError> {
    shm_unlink(shm_path(name)?.as_c_str()).map_err(|e| name_error("shm_unlink", name, e))
}

/// Checks a segment name and returns the path `shm_open` wants: "/name".
pub(crate) fn shm_path(name: &str) -> Result<CString, ShmError> {
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

pub(crate) fn os_error(operation: &'static str, name: &str, errno: Errno) -> ShmError {
    ShmError::Os {
        operation,
        name: name.to_owned(),
        source: std::io::Error::from(errno),
    }
}
