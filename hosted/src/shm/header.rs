//! The header at the start of every segment: what it holds, whether it is ready, who
//! made it, and the table of processes attached to it.
//!
//! # Format (version 5)
//!
//! The header fills the first [`HEADER_LEN`] bytes (one page); the value follows at
//! `data_offset` (the header's length rounded up to the value's alignment). Integers are
//! in the machine's byte order: a segment never leaves its machine.
//!
//! | offset | bytes | field |
//! |---:|---:|---|
//! | 0 | 8 | magic, `"SHMSYNC\0"` |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]) |
//! | 12 | 4 | state: 0 while initialising, 1 once ready (the word openers wait on) |
//! | 16 | 4 | minor version: additions a reader of the same version may ignore |
//! | 20 | 4 | header length |
//! | 24 | 8 | the segment's length in bytes |
//! | 32 | 8 | offset of the value |
//! | 56 | 8 | the fingerprint of the value's layout ([`shmsync_core::Layout`]) |
//! | 64 | 4 | who removes the name: 0 its creator, 1 the last to leave, 2 nobody |
//! | 68 | 4 | the creator's process id (in its own PID namespace; for messages only) |
//! | 72 | 8 | when it was created, in nanoseconds since the Unix epoch |
//! | 80 | 2 | slots in the participant table |
//! | 128 | 512 | the layout's description, UTF-8, zeros after its end |
//! | 1024 | 16 × 64 | participant table: per slot a process id (4), a role (4: 1 the creator, 2 an opener) and when it attached (8, ns since the epoch); all zero once its process left |
//!
//! Every other byte is zero, reserved for later minor versions.
//!
//! # Versions
//!
//! - The magic and the format version never move, so that any reader can tell a
//!   segment of another version from a foreign file.
//! - A reader opens only segments of its own format version. A segment of another
//!   version is refused with [`ShmError::VersionMismatch`](crate::ShmError), which says
//!   which side is newer: a newer reader does not guess at an older segment's layout
//!   (the types in it may have changed too), and an older reader cannot know what a
//!   newer one added. Nor does `create` reclaim a segment of another version: it cannot
//!   be sure how that version records who is attached.
//! - Within one format version, additions take reserved bytes and raise the minor
//!   version. A reader accepts every minor version of its format version: an older one
//!   ignores what it does not know, a newer one takes an added field of an older segment
//!   as absent (its bytes are zero).
//! - The format version goes up whenever a field moves or changes meaning, when the
//!   layout of one of the library's types changes, when layouts are fingerprinted or
//!   described another way, or when the way participants are recorded changes.
//!   Versions 1 and 2 recorded no participants; version 3's locks were never handed
//!   over (its builds would take a lock handed over by a version 4 build for one held
//!   for ever); version 4's lockers slept on the lock's word, version 5's on the word
//!   after it (the two would not wake each other's sleepers).

use std::sync::atomic::{fence, Ordering};

use shmsync_core::ShmSafe;

use super::mapping::SegmentFile;
use crate::error::ShmError;
use crate::identity::{description_bytes, printable, type_identity, TypeRecord, DESCRIPTION_LEN};

/// The header's format; see the module's docs for the rules between versions.
pub const FORMAT_VERSION: u32 = 5;
/// Additions within [`FORMAT_VERSION`]: none yet.
const FORMAT_MINOR: u32 = 0;

const MAGIC: u64 = u64::from_ne_bytes(*b"SHMSYNC\0");
/// The bytes before the value; one page, so that a value starts page-aligned.
pub(crate) const HEADER_LEN: usize = 4096;
/// Where the state word is, which an opener waits on with a futex.
pub(crate) const STATE_OFFSET: usize = 12;
pub(crate) const INITIALISING: u32 = 0;
pub(crate) const READY: u32 = 1;
/// Where the removal rule is, which any participant may change.
pub(crate) const UNLINK_OFFSET: usize = 64;
const DESCRIPTION_OFFSET: usize = 128;
const TABLE_OFFSET: usize = 1024;
pub(crate) const SLOT_LEN: usize = 16;
/// Entries in the participant table.
pub(crate) const SLOTS: usize = 64;

const _: () = assert!(DESCRIPTION_OFFSET + DESCRIPTION_LEN <= TABLE_OFFSET);
const _: () = assert!(TABLE_OFFSET + SLOTS * SLOT_LEN <= HEADER_LEN);

/// Who removes a named segment's name. The rule is kept in the segment, so every
/// participant follows the same one; any of them may change it with
/// [`Shared::set_unlink`](crate::Shared::set_unlink).
///
/// Whatever the rule, the memory stays until the last process that maps it lets go;
/// only the name goes, so that no newcomer can open it.
///
/// # Example
///
/// ```
/// use shmsync::{Shared, Unlink, Value};
/// # let name = format!("shmsync-doc-unlink-{}", std::process::id());
///
/// let segment = Shared::create(&name, Value::<u32>::new(0))?;
/// assert_eq!(segment.unlink_rule(), Some(Unlink::ByCreator));
/// segment.set_unlink(Unlink::ByLastOut);
/// let opener = Shared::<Value<u32>>::open(&name, std::time::Duration::ZERO)?;
/// drop(segment); // the creator leaves; the opener is still attached
/// assert!(Shared::<Value<u32>>::open(&name, std::time::Duration::ZERO).is_ok());
/// drop(opener); // the last one out removes the name
/// assert!(Shared::<Value<u32>>::open(&name, std::time::Duration::ZERO).is_err());
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    /// The creator removes it when it drops its `Shared`, even if others still have
    /// it open (the default, as Python's `SharedMemory.unlink()` called by its maker).
    ByCreator,
    /// The last process attached removes it as it leaves. A process that opens the
    /// segment at that very moment either attaches first, and the name stays, or finds
    /// the name gone. A child forked from a participant shares its attachment until it
    /// exits; one still running when the last `Shared` is dropped keeps the name, which
    /// `create` then reclaims.
    ByLastOut,
    /// Nobody: the name stays for processes that come later, until
    /// [`Shared::unlink`](crate::Shared::unlink) removes it.
    Never,
}

impl Unlink {
    fn to_word(self) -> u32 {
        match self {
            Unlink::ByCreator => 0,
            Unlink::ByLastOut => 1,
            Unlink::Never => 2,
        }
    }

    /// The rule a word holds; one this version does not know is read as
    /// [`Never`](Unlink::Never): when in doubt, a name is kept.
    pub(crate) fn from_word(word: u32) -> Unlink {
        match word {
            0 => Unlink::ByCreator,
            1 => Unlink::ByLastOut,
            _ => Unlink::Never,
        }
    }

    pub(crate) fn encode(self) -> [u8; 4] {
        self.to_word().to_ne_bytes()
    }
}

/// A participant's role, as its slot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Creator = 1,
    Opener = 2,
}

/// A header's fields.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub format: u32,
    pub state: u32,
    /// The minor version of the format its writer knew.
    pub minor: u32,
    /// When it was created, in nanoseconds since the Unix epoch.
    pub created: u64,
    pub total_len: u64,
    pub data_offset: u64,
    /// The value's layout fingerprint.
    pub fingerprint: u64,
    /// Its description as the creator wrote it: another program's bytes, not
    /// necessarily text.
    pub description: [u8; DESCRIPTION_LEN],
    pub unlink: Unlink,
    pub creator_pid: u32,
}

impl Header {
    /// The header of a new segment of `total_len` bytes holding a `T`, made by this
    /// process; still initialising.
    pub(crate) fn new<T: ShmSafe>(total_len: usize) -> Header {
        let (fingerprint, description) = type_identity::<T>();
        Header {
            format: FORMAT_VERSION,
            state: INITIALISING,
            minor: FORMAT_MINOR,
            created: unix_nanos(),
            total_len: total_len as u64,
            data_offset: data_offset::<T>() as u64,
            fingerprint,
            description: description_bytes(description),
            unlink: Unlink::ByCreator,
            creator_pid: std::process::id(),
        }
    }

    /// The type it records, for people.
    pub(crate) fn type_record(&self) -> TypeRecord {
        let end = (self.description.iter())
            .position(|&b| b == 0)
            .unwrap_or(DESCRIPTION_LEN);
        TypeRecord {
            fingerprint: self.fingerprint,
            description: printable(&String::from_utf8_lossy(&self.description[..end])).into(),
        }
    }

    /// Its bytes up to the participant table, the magic left zero: a reader takes a
    /// header as written once the magic is there, so it is written last, by
    /// [`MAGIC_BYTES`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; TABLE_OFFSET];
        let put = |bytes: &mut [u8], offset: usize, field: &[u8]| {
            bytes[offset..offset + field.len()].copy_from_slice(field)
        };
        put(&mut bytes, 8, &self.format.to_ne_bytes());
        put(&mut bytes, STATE_OFFSET, &self.state.to_ne_bytes());
        put(&mut bytes, 16, &self.minor.to_ne_bytes());
        put(&mut bytes, 20, &(HEADER_LEN as u32).to_ne_bytes());
        put(&mut bytes, 24, &self.total_len.to_ne_bytes());
        put(&mut bytes, 32, &self.data_offset.to_ne_bytes());
        put(&mut bytes, 56, &self.fingerprint.to_ne_bytes());
        put(&mut bytes, UNLINK_OFFSET, &self.unlink.encode());
        put(&mut bytes, 68, &self.creator_pid.to_ne_bytes());
        put(&mut bytes, 72, &self.created.to_ne_bytes());
        put(&mut bytes, 80, &(SLOTS as u16).to_ne_bytes());
        put(&mut bytes, DESCRIPTION_OFFSET, &self.description);
        bytes
    }
}

/// The magic, at offset 0: written after the rest of the header.
pub(crate) const MAGIC_BYTES: [u8; 8] = MAGIC.to_ne_bytes();

/// What the first bytes of a file say.
#[derive(Debug)]
pub(crate) enum Probe {
    /// No magic yet: a creator has not written the header (or died before it did).
    Unwritten,
    /// Something other than a shmsync header.
    Foreign,
    /// A shmsync header of another format version.
    OtherVersion { format: u32 },
    /// A shmsync header cut short by another program: the segment's length, if it is
    /// still there.
    CutShort { total_len: Option<u64> },
    /// A header of this version.
    Written(Box<Header>),
}

/// Reads a header from `bytes`, the first bytes of a file (as many as it has, up to
/// [`HEADER_LEN`]). `bytes` must have been read after a read that saw the magic, so
/// that the rest of the header is complete (see [`Probe`]).
pub(crate) fn decode(bytes: &[u8]) -> Probe {
    let word = |offset: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(
            bytes.get(offset..offset + 4)?.try_into().ok()?,
        ))
    };
    let long = |offset: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(
            bytes.get(offset..offset + 8)?.try_into().ok()?,
        ))
    };
    match long(0) {
        None | Some(0) => return Probe::Unwritten,
        Some(MAGIC) => {}
        Some(_) => return Probe::Foreign,
    }
    match word(8) {
        Some(FORMAT_VERSION) => {}
        Some(format) => return Probe::OtherVersion { format },
        None => return Probe::CutShort { total_len: None },
    }
    if bytes.len() < TABLE_OFFSET {
        return Probe::CutShort {
            total_len: long(24),
        };
    }
    // Every field from here on is in range.
    let field = |offset| long(offset).unwrap_or(0);
    let mut description = [0; DESCRIPTION_LEN];
    description.copy_from_slice(&bytes[DESCRIPTION_OFFSET..DESCRIPTION_OFFSET + DESCRIPTION_LEN]);
    Probe::Written(Box::new(Header {
        format: FORMAT_VERSION,
        state: word(STATE_OFFSET).unwrap_or(0),
        minor: word(16).unwrap_or(0),
        created: field(72),
        total_len: field(24),
        data_offset: field(32),
        fingerprint: field(56),
        description,
        unlink: Unlink::from_word(word(UNLINK_OFFSET).unwrap_or(u32::MAX)),
        creator_pid: word(68).unwrap_or(0),
    }))
}

/// Writes `header` at the start of `file`, the magic last, so that a reader that sees
/// the magic reads the rest complete.
pub(crate) fn write(file: &SegmentFile, header: &Header) -> Result<(), ShmError> {
    file.write_at(&header.encode(), 0)?;
    // Orders the writes above (made by the kernel for this thread) before the magic's.
    fence(Ordering::Release);
    file.write_at(&MAGIC_BYTES, 0)
}

/// Reads the header at the start of `file` through the file (never a mapping, which a
/// peer may have truncated).
pub(crate) fn read(file: &SegmentFile) -> Result<Probe, ShmError> {
    let mut magic = [0u8; 8];
    let mut seen = file.read_at(&mut magic, 0)?;
    let is_foreign = |magic: [u8; 8]| magic != MAGIC_BYTES && magic != [0; 8];
    if seen == magic.len() && is_foreign(magic) {
        // A read may see a magic being written half old, half new: look once more.
        std::thread::sleep(std::time::Duration::from_millis(1));
        seen = file.read_at(&mut magic, 0)?;
    }
    if seen < magic.len() || magic != MAGIC_BYTES {
        return Ok(decode(&magic[..seen]));
    }
    // Pairs with the fence in `write`: the rest was written before the magic we saw.
    fence(Ordering::Acquire);
    let mut bytes = vec![0u8; HEADER_LEN];
    let len = file.read_at(&mut bytes, 0)?;
    Ok(decode(&bytes[..len]))
}

/// Where the value starts: after the header, aligned for `T`.
///
/// Every way to make or open a [`Shared`](super::Shared) asks for it, so the checks
/// here refuse, at compile time, a `T` that may not be shared between processes.
pub(crate) fn data_offset<T: ShmSafe>() -> usize {
    const {
        assert!(
            !T::LAYOUT.has_plain_data(),
            "a type shared between processes may hold no plain data (an integer, a float \
             or an array of them outside an atomic container), which a peer could write \
             while this process reads it: share a number as a `Value<T>` and an array as \
             an `Array<T, N>`"
        )
    };
    const {
        assert!(
            align_of::<T>() <= 4096,
            "a type in shared memory may need an alignment of at most 4096 bytes (a page): \
             a mapping's address is aligned to no more"
        )
    };
    HEADER_LEN.next_multiple_of(align_of::<T>())
}

/// The bytes of a segment holding a `T`.
pub(crate) fn segment_len<T: ShmSafe>() -> usize {
    data_offset::<T>() + size_of::<T>()
}

/// A participant's entry for this process: its process id, role and when it attached.
pub(crate) fn slot_entry(role: Role) -> [u8; SLOT_LEN] {
    let mut entry = [0u8; SLOT_LEN];
    entry[..4].copy_from_slice(&std::process::id().to_ne_bytes());
    entry[4..8].copy_from_slice(&(role as u32).to_ne_bytes());
    entry[8..].copy_from_slice(&unix_nanos().to_ne_bytes());
    entry
}

/// Where slot `slot`'s entry is.
pub(crate) fn slot_offset(slot: usize) -> usize {
    TABLE_OFFSET + slot * SLOT_LEN
}

/// A slot's entry, read back: its process id, whether it is the creator's, and when
/// it attached (ns since the epoch).
pub(crate) fn decode_slot(entry: &[u8; SLOT_LEN]) -> (u32, Option<Role>, u64) {
    let pid = u32::from_ne_bytes(entry[..4].try_into().expect("4 bytes"));
    let role = match u32::from_ne_bytes(entry[4..8].try_into().expect("4 bytes")) {
        1 => Some(Role::Creator),
        2 => Some(Role::Opener),
        _ => None,
    };
    let since = u64::from_ne_bytes(entry[8..].try_into().expect("8 bytes"));
    (pid, role, since)
}

pub(crate) const EMPTY_SLOT: [u8; SLOT_LEN] = [0; SLOT_LEN];

pub(crate) fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_as_written() {
        let header = Header::new::<[crate::Event; 6]>(segment_len::<[crate::Event; 6]>());
        let mut bytes = header.encode();
        assert!(matches!(decode(&bytes), Probe::Unwritten));
        bytes[..8].copy_from_slice(&MAGIC_BYTES);
        let Probe::Written(read) = decode(&bytes) else {
            panic!("not read back")
        };
        assert_eq!(read.type_record(), header.type_record());
        assert_eq!(
            &*read.type_record().description,
            "[Event<Futex>; 6] (24 bytes, align 4)"
        );
        assert_eq!(read.total_len, 4096 + 24);
        assert_eq!(read.unlink, Unlink::ByCreator);
        assert!(matches!(
            decode(&bytes[..100]),
            Probe::CutShort {
                total_len: Some(4120)
            }
        ));
        assert!(matches!(
            decode(&bytes[..10]),
            Probe::CutShort { total_len: None }
        ));
        bytes[8] = 1;
        assert!(matches!(decode(&bytes), Probe::OtherVersion { format: 1 }));
        bytes[..8].copy_from_slice(b"NOTOURS!");
        assert!(matches!(decode(&bytes), Probe::Foreign));
    }
}
