//! Looking at a named segment from outside: through its file (`fstat`, `pread`) and
//! the leases the kernel keeps (`F_OFD_GETLK`, which takes nothing), never attaching,
//! never mapping, never waiting. A segment being made, cut short, of another version or
//! another program's is described as such.
//!
//! And removing names from outside, by the rules `create` follows: only a segment
//! nobody is attached to, after taking its gate (see `lifecycle::remove_if`).

use std::time::{Duration, SystemTime};

use super::header::{self, Probe, Unlink, HEADER_LEN, READY};
use super::lease::{self, ParticipantRecord};
use super::lifecycle::{self, Found, Removable, Removal};
use super::mapping::{self, SegmentFile};
use crate::error::ShmError;
use crate::identity::TypeRecord;
use crate::inspect::reading::{self, Part, ReadBytes, Unreadable};
use crate::inspect::{ReadOptions, TypeDescription, Verification};

/// A named segment, looked at through its file without attaching to it: what its
/// header says, who is attached (by the leases the kernel keeps for them), and, on
/// demand, what its value holds.
///
/// Looking takes nothing and waits for nothing: the file is opened read-only, read
/// with `pread` (never mapped, so a file that another program cuts short meanwhile is
/// a short read, not a `SIGBUS`), and the leases are only queried (`F_OFD_GETLK`).
/// What it shows is a snapshot, read while the participants go on.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{Condition, Contents, Segment};
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-segment-{}", std::process::id());
///
/// let counter = Shared::create(&name, Value::<u32>::new(17))?;
/// let seen = Segment::look(&name)?;
/// assert_eq!(seen.condition(), Condition::Live);
/// let Contents::Header(header) = seen.contents() else { unreachable!() };
/// assert_eq!(&*header.held.description, "Value<u32, Futex, Robust> (48 bytes, align 8)");
/// let value = seen.read_value(&Default::default())?;
/// assert_eq!(value.root.to_string(), "Value<u32> = 17");
/// # drop(counter);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Segment {
    file: SegmentFile,
    len: u64,
    changed: SystemTime,
    contents: Contents,
    condition: Condition,
    participants: Vec<ParticipantRecord>,
}

/// What a segment's file holds, by its first bytes.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{Contents, Segment};
/// # let name = format!("shmsync-doc-contents-{}", std::process::id());
///
/// std::fs::write(format!("/dev/shm/{name}"), b"another program's bytes")?;
/// assert_eq!(*Segment::look(&name)?.contents(), Contents::Foreign);
/// # std::fs::remove_file(format!("/dev/shm/{name}"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contents {
    /// No header: a creator between creating the file and writing its header, one that
    /// died there, or another program's file that starts with zeros (or is empty).
    Unwritten,
    /// Another program's file: it does not start with shmsync's magic.
    Foreign,
    /// A segment of another format version, which this shmsync does not read.
    OtherVersion {
        /// Its format version.
        format: u32,
    },
    /// A shmsync header cut short: another program truncated the file.
    CutShort,
    /// A header of this format version.
    Header(SegmentHeader),
}

/// What a segment's header says.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{Contents, Segment};
/// use shmsync::{Shared, Unlink, Value};
/// # let name = format!("shmsync-doc-header-{}", std::process::id());
///
/// let _segment = Shared::create(&name, Value::<u16>::new(1))?;
/// let seen = Segment::look(&name)?;
/// let Contents::Header(header) = seen.contents() else { unreachable!() };
/// assert!(header.ready);
/// assert_eq!(header.creator_pid, std::process::id());
/// assert_eq!(header.unlink, Unlink::ByCreator);
/// assert_eq!(header.value_len(), Some(48));
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentHeader {
    /// Whether its creator finished making the value.
    pub ready: bool,
    /// The minor version of the format its creator knew.
    pub minor: u32,
    /// The segment's length in bytes, header included.
    pub len: u64,
    /// Where the value starts.
    pub value_offset: u64,
    /// The type of the value: its layout's fingerprint and description.
    pub held: TypeRecord,
    /// Who removes its name.
    pub unlink: Unlink,
    /// The creator's process id, as it saw itself (in another PID namespace it names
    /// another process, or none).
    pub creator_pid: u32,
    /// When it was created, in nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
}

impl SegmentHeader {
    /// The value's length, as the header states it; `None` if the header is
    /// inconsistent (its value would start inside the header or past the end).
    pub fn value_len(&self) -> Option<u64> {
        (self.value_offset >= HEADER_LEN as u64)
            .then(|| self.len.checked_sub(self.value_offset))
            .flatten()
    }
}

/// Whether anybody uses a segment, judged as [`Shared::create`](crate::Shared::create)
/// judges a name it finds taken.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{Condition, Segment};
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-condition-{}", std::process::id());
///
/// let segment = Shared::create(&name, Value::<u8>::new(0))?;
/// segment.persist()?;
/// assert_eq!(Segment::look(&name)?.condition(), Condition::Live);
/// drop(segment);
/// // Nobody attached, and kept on purpose.
/// assert_eq!(Segment::look(&name)?.condition(), Condition::Kept);
/// # Shared::<u8>::unlink(&name)?;
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// Some process is attached (it holds the segment's gate).
    Live,
    /// Nobody is attached, and it is kept on purpose for later openers
    /// ([`Unlink::Never`]).
    Kept,
    /// Nobody is attached and it is not kept: its creator and every participant are
    /// gone. `create` reclaims the name.
    Stale,
    /// A creator is making it, or another process is removing it or looking whether it
    /// may: look again in a moment.
    Busy,
    /// Not a segment of this format version: who is attached cannot be told.
    Unknown,
}

/// Why a segment's value could not be read.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{Segment, ValueError};
/// # let name = format!("shmsync-doc-value-error-{}", std::process::id());
///
/// std::fs::write(format!("/dev/shm/{name}"), [0u8; 16])?;
/// let error = Segment::look(&name)?.read_value(&Default::default()).unwrap_err();
/// assert_eq!(error, ValueError::NoHeader);
/// # std::fs::remove_file(format!("/dev/shm/{name}"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// The file has no header of this format version.
    NoHeader,
    /// Its creator has not finished making it (or died before it did).
    NotReady,
    /// Its header is inconsistent: the value would lie inside the header.
    BadHeader,
    /// The description in its header cannot be read.
    Description(crate::inspect::ParseError),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::NoHeader => f.write_str("it has no shmsync header of this version"),
            ValueError::NotReady => f.write_str("its creator has not finished making it"),
            ValueError::BadHeader => {
                f.write_str("its header is inconsistent: the value would lie inside it")
            }
            ValueError::Description(error) => write!(f, "its type's description is {error}"),
        }
    }
}

impl std::error::Error for ValueError {}

/// A segment's value, read from its file: see [`Segment::read_value`].
///
/// # Example
///
/// ```
/// use shmsync::inspect::{Segment, Verification};
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-value-reading-{}", std::process::id());
///
/// let _segment = Shared::create(&name, [Value::<i32>::new(-1), Value::new(2)])?;
/// let value = Segment::look(&name)?.read_value(&Default::default())?;
/// assert_eq!(value.verification, Verification::Matches);
/// assert_eq!(value.bytes_present, 96);
/// assert_eq!(value.root.parts[0].to_string(), "[0]: Value<i32> = -1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ValueReading {
    /// The value, part by part.
    pub root: Part,
    /// Whether the layout read from the description is the one the header's
    /// fingerprint records.
    pub verification: Verification,
    /// The bytes of the value the file holds, which may be fewer than the header
    /// calls for (a file cut short): parts past them are
    /// [unreadable](crate::inspect::PartState::Unreadable).
    pub bytes_present: u64,
}

impl Segment {
    /// Looks at the named segment `name`. Fails only if there is no such name, it
    /// cannot be opened (another user's), or a system call fails; whatever the file
    /// holds is described.
    pub fn look(name: &str) -> Result<Segment, ShmError> {
        let file = SegmentFile::open_named_read_only(name)?;
        let state = file.state()?;
        let contents = match header::read(&file)? {
            Probe::Unwritten => Contents::Unwritten,
            Probe::Foreign => Contents::Foreign,
            Probe::OtherVersion { format } => Contents::OtherVersion { format },
            Probe::CutShort { .. } => Contents::CutShort,
            Probe::Written(header) => Contents::Header(SegmentHeader {
                ready: header.state == READY,
                minor: header.minor,
                len: header.total_len,
                value_offset: header.data_offset,
                held: header.type_record(),
                unlink: header.unlink,
                creator_pid: header.creator_pid,
                created_unix_ns: header.created,
            }),
        };
        let ours = !matches!(contents, Contents::Foreign | Contents::OtherVersion { .. });
        let condition = if ours {
            match lifecycle::judge(&file)? {
                Found::Live => Condition::Live,
                Found::Persisted => Condition::Kept,
                Found::Busy => Condition::Busy,
                Found::Stale { .. } => Condition::Stale,
                Found::Vanished => Condition::Unknown,
            }
        } else {
            Condition::Unknown
        };
        let participants = match &contents {
            Contents::Header(_) => lease::records(&file)?,
            _ => Vec::new(),
        };
        Ok(Segment {
            file,
            len: state.len,
            changed: state.changed,
            contents,
            condition,
            participants,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.file.name()
    }

    /// The file's length in bytes now (which a peer that cut the file short makes
    /// less than the header's).
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// When the file's metadata last changed (its creation, for a segment: segments
    /// are never resized).
    pub fn changed(&self) -> SystemTime {
        self.changed
    }

    /// How long ago it was created: by its header, or else by its file.
    pub fn age(&self) -> Option<Duration> {
        let created = match &self.contents {
            Contents::Header(header) if header.created_unix_ns > 0 => {
                SystemTime::UNIX_EPOCH + Duration::from_nanos(header.created_unix_ns)
            }
            _ => self.changed,
        };
        SystemTime::now().duration_since(created).ok()
    }

    /// What the file holds.
    pub fn contents(&self) -> &Contents {
        &self.contents
    }

    /// Whether anybody uses it.
    pub fn condition(&self) -> Condition {
        self.condition
    }

    /// The participant table: every process attached (by its slot's lease) and every
    /// one that went without leaving (killed, crashed or `exec`ed), in slot order.
    pub fn participants(&self) -> &[ParticipantRecord] {
        &self.participants
    }

    /// Reads the value through the file, as its header's description lays it out:
    /// each lock's, event's, semaphore's and queue's state, each value and array.
    /// Nothing is taken, nothing waited for; bytes the file no longer holds are
    /// reported unreadable.
    pub fn read_value(&self, options: &ReadOptions) -> Result<ValueReading, ValueError> {
        let Contents::Header(header) = &self.contents else {
            return Err(ValueError::NoHeader);
        };
        if !header.ready {
            return Err(ValueError::NotReady);
        }
        let value_len = header.value_len().ok_or(ValueError::BadHeader)?;
        let described =
            TypeDescription::parse(&header.held.description).map_err(ValueError::Description)?;
        let verification = crate::inspect::verify(&described, header.held.fingerprint);
        let bytes = ValueBytes {
            file: &self.file,
            start: header.value_offset,
            len: value_len,
        };
        let root = reading::read(&described, &verification, &bytes, options);
        Ok(ValueReading {
            root,
            verification,
            bytes_present: self.len.saturating_sub(header.value_offset).min(value_len),
        })
    }
}

/// A segment's value, read through its file.
struct ValueBytes<'a> {
    file: &'a SegmentFile,
    start: u64,
    len: u64,
}

impl ReadBytes for ValueBytes<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), Unreadable> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(Unreadable::OutsideValue);
        }
        let at = usize::try_from(self.start + offset).map_err(|_| Unreadable::OutsideValue)?;
        match self.file.read_at(buf, at) {
            Ok(read) if read == buf.len() => Ok(()),
            Ok(_) => Err(Unreadable::PastFileEnd),
            Err(error) => Err(Unreadable::Io(error.to_string())),
        }
    }
}

/// The names in `/dev/shm` that could name a segment, sorted: shmsync's segments and
/// other programs' files ([`Segment::look`] tells which).
pub fn names() -> std::io::Result<Vec<String>> {
    mapping::names()
}

/// Which names [`remove`] removes.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{remove, Removed, RemoveIf};
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-remove-{}", std::process::id());
///
/// let segment = Shared::create(&name, Value::<u8>::new(0))?;
/// // Somebody is attached: only a forced removal takes the name.
/// assert_eq!(remove(&name, RemoveIf::Unused)?, Removed::Attached);
/// assert_eq!(remove(&name, RemoveIf::Forced)?, Removed::Removed);
/// assert_eq!(remove(&name, RemoveIf::Forced)?, Removed::Gone);
/// assert_eq!(segment.get(), 0); // its users keep their memory
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveIf {
    /// Only if it is stale (nobody attached, not kept on purpose) and starts with
    /// shmsync's magic: what `create` would reclaim, less the files without a header,
    /// which another program may have made. Safe to run over all of `/dev/shm`.
    Stale,
    /// If nobody is attached: stale, or kept on purpose ([`Unlink::Never`]).
    Unused,
    /// Whoever is attached, as [`Shared::unlink`](crate::Shared::unlink) does: the
    /// processes that have it mapped keep their memory; later ones cannot open it. Never
    /// another program's file.
    Forced,
}

/// What [`remove`] did.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{remove, Removed, RemoveIf};
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-removed-{}", std::process::id());
///
/// let segment = Shared::create(&name, Value::<u8>::new(0))?;
/// segment.persist()?;
/// drop(segment);
/// // Kept on purpose: not stale, but unused.
/// assert_eq!(remove(&name, RemoveIf::Stale)?, Removed::Kept);
/// assert_eq!(remove(&name, RemoveIf::Unused)?, Removed::Removed);
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removed {
    /// It removed the name.
    Removed,
    /// There was no such name (any more).
    Gone,
    /// Not removed: some process is attached.
    Attached,
    /// Not removed: nobody is attached, but it is kept on purpose ([`Unlink::Never`]);
    /// [`RemoveIf::Unused`] removes it.
    Kept,
    /// Not removed: a creator is making it, or another process is removing it or
    /// looking whether it may. Try again in a moment.
    Busy,
    /// Not removed: it has no header, so it may be another program's file (one that
    /// starts with zeros); [`RemoveIf::Forced`] removes it.
    Unmarked,
}

/// Removes the named segment `name` if `rule` allows, by the rules `create` follows to
/// reclaim a stale name: it takes the segment's gate exclusively, which keeps anybody
/// from attaching, looks again, and only then removes the name. Another program's
/// file is [`ShmError::NotShmsync`], and a segment of another format version (whose
/// participants cannot be read) [`ShmError::VersionMismatch`] unless forced.
pub fn remove(name: &str, rule: RemoveIf) -> Result<Removed, ShmError> {
    let removable = match rule {
        RemoveIf::Stale => Removable::MarkedStale,
        RemoveIf::Unused => Removable::Unused,
        RemoveIf::Forced => return remove_forced(name),
    };
    Ok(match lifecycle::remove_if(name, removable)? {
        Removal::Removed(_) => Removed::Removed,
        Removal::Left(Found::Vanished) => Removed::Gone,
        Removal::Left(Found::Live) => Removed::Attached,
        Removal::Left(Found::Persisted) => Removed::Kept,
        Removal::Left(Found::Busy) => Removed::Busy,
        Removal::Left(Found::Stale { .. }) => Removed::Unmarked,
    })
}

fn remove_forced(name: &str) -> Result<Removed, ShmError> {
    let file = match SegmentFile::open_named_read_only(name) {
        Ok(file) => file,
        Err(ShmError::NotFound { .. }) => return Ok(Removed::Gone),
        Err(error) => return Err(error),
    };
    if let Probe::Foreign = header::read(&file)? {
        return Err(ShmError::NotShmsync {
            name: name.to_owned(),
        });
    }
    match mapping::unlink_name(name) {
        Ok(()) => Ok(Removed::Removed),
        Err(ShmError::NotFound { .. }) => Ok(Removed::Gone),
        Err(error) => Err(error),
    }
}
