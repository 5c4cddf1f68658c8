//! Who is attached to a named segment, kept by the kernel: each participant holds
//! leases (open-file-description locks) on bytes of the segment file's lock space, and
//! the kernel drops a lease when the last descriptor and mapping of the open file
//! description that took it are gone: when its process exits, is killed or `exec`s, or
//! drops its `Shared`.
//!
//! - The **gate** (byte 0): every attached process holds it shared. Taking it
//!   exclusively succeeds only when nobody is attached, and keeps everybody out while
//!   held: that is how a stale name is reclaimed, and how the last one out removes the
//!   name, without racing a process that opens it at the same moment.
//! - **Slots** (bytes 1 to 64): each participant holds one exclusively, and records in
//!   the header's table, at the slot's place, its process id and role. Slot 0 is the
//!   creator's, so an opener can tell a creator that is still initialising from one
//!   that died doing it. A participant that leaves clears its entry before it lets go
//!   of its slot; one that dies (or `exec`s) cannot, so an entry whose slot nobody
//!   holds names a process that went without leaving.
//!
//! No process id is ever used to decide who lives, so this works across PID
//! namespaces and without `/proc`. A process forked from a participant shares its
//! leases (the child inherits the open file description), so the segment stays
//! attached while either lives; it has no slot of its own. `docs/segments.md` says why
//! this and not the robust list that locks use.

use super::header::{decode_slot, slot_entry, slot_offset, Role, EMPTY_SLOT, SLOTS, SLOT_LEN};
use super::mapping::{Lease, SegmentFile};
use crate::error::ShmError;

const GATE: u64 = 0;
const CREATOR_SLOT: usize = 0;

fn slot_byte(slot: usize) -> u64 {
    1 + slot as u64
}

/// Holds the gate shared: attached. False if someone holds it exclusively (removing
/// the segment, or looking whether it may).
pub(crate) fn enter(file: &SegmentFile) -> Result<bool, ShmError> {
    file.try_lease(GATE, Lease::Shared)
}

/// Holds the gate exclusively: nobody is attached, and nobody can attach until this
/// file is closed. False if somebody is attached (or another holds it exclusively).
pub(crate) fn seal_off(file: &SegmentFile) -> Result<bool, ShmError> {
    file.try_lease(GATE, Lease::Exclusive)
}

/// Who holds the gate, besides this file: `Shared` if processes are attached,
/// `Exclusive` if one is removing the segment (or looking whether it may), `None` if
/// nobody.
pub(crate) fn gate_holders(file: &SegmentFile) -> Result<Option<Lease>, ShmError> {
    file.conflicting(GATE, Lease::Exclusive)
}

/// Takes the creator's slot of a new segment; [`record_creator`] fills it in once the
/// header is written.
pub(crate) fn claim_creator_slot(file: &SegmentFile) -> Result<(), ShmError> {
    if !file.try_lease(slot_byte(CREATOR_SLOT), Lease::Exclusive)? {
        // Nobody else takes slot 0 of a file this process just created and entered.
        return Err(file.error("fcntl(F_OFD_SETLK)", nix::errno::Errno::EDEADLK));
    }
    Ok(())
}

/// Records this process in the creator's slot.
pub(crate) fn record_creator(file: &SegmentFile) -> Result<(), ShmError> {
    file.write_at(&slot_entry(Role::Creator), slot_offset(CREATOR_SLOT))
}

/// Takes a free opener's slot and records this process in it; `None` if all are
/// taken (the process is attached all the same, by the gate, but not listed).
pub(crate) fn claim_slot(file: &SegmentFile) -> Result<Option<usize>, ShmError> {
    for slot in CREATOR_SLOT + 1..SLOTS {
        if file.try_lease(slot_byte(slot), Lease::Exclusive)? {
            file.write_at(&slot_entry(Role::Opener), slot_offset(slot))?;
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Whether the creator (or a process forked from it) still holds its slot.
pub(crate) fn creator_attached(file: &SegmentFile) -> Result<bool, ShmError> {
    Ok(file
        .conflicting(slot_byte(CREATOR_SLOT), Lease::Exclusive)?
        .is_some())
}

/// A process recorded in a segment's participant table.
///
/// # Example
///
/// ```
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-participant-{}", std::process::id());
///
/// let created = Shared::create(&name, Value::<u8>::new(0))?;
/// let opened = Shared::<Value<u8>>::open(&name, std::time::Duration::ZERO)?;
/// let everyone = opened.participants()?;
/// assert_eq!(everyone.len(), 2);
/// assert!(everyone.iter().all(|p| p.pid == std::process::id()));
/// assert_eq!(everyone.iter().filter(|p| p.creator).count(), 1);
/// # drop(created);
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    /// Its process id, as it saw itself: in another PID namespace this number names
    /// another process, or none. For messages, never for deciding who lives.
    pub pid: u32,
    /// Whether it created the segment.
    pub creator: bool,
}

/// Every participant whose slot is held, `own` (this file's slot) included.
pub(crate) fn participants(
    file: &SegmentFile,
    own: Option<usize>,
) -> Result<Vec<Participant>, ShmError> {
    let mut found = Vec::new();
    for slot in 0..SLOTS {
        let held = Some(slot) == own
            || file
                .conflicting(slot_byte(slot), Lease::Exclusive)?
                .is_some();
        if !held {
            continue;
        }
        let mut entry = EMPTY_SLOT;
        if file.read_at(&mut entry, slot_offset(slot))? < SLOT_LEN {
            continue;
        }
        let (pid, role, _) = decode_slot(&entry);
        found.push(Participant {
            pid,
            creator: role == Some(Role::Creator),
        });
    }
    Ok(found)
}

/// Clears this process's entry in `slot`, as it leaves: its slot is still held, so
/// nobody else writes there. Nothing is written into a file cut short, which would
/// grow it.
pub(crate) fn clear_entry(file: &SegmentFile, slot: usize) {
    let end = (slot_offset(slot) + SLOT_LEN) as u64;
    if file.state().is_ok_and(|state| state.len >= end) {
        let _ = file.write_at(&EMPTY_SLOT, slot_offset(slot));
    }
}

/// An entry of a segment's participant table, as [`Segment`](crate::inspect::Segment)
/// reads it without attaching: who recorded it, and whether its slot is still held.
///
/// # Example
///
/// ```
/// use shmsync::inspect::Segment;
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-record-{}", std::process::id());
///
/// let _segment = Shared::create(&name, Value::<u8>::new(0))?;
/// let seen = Segment::look(&name)?;
/// let records = seen.participants();
/// assert_eq!(records.len(), 1);
/// assert!(records[0].attached && records[0].creator);
/// assert_eq!(records[0].pid, std::process::id());
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParticipantRecord {
    /// Its place in the table (0 is the creator's).
    pub slot: usize,
    /// The process id it recorded, as it saw itself: in another PID namespace this
    /// number names another process, or none. 0 if it has not written it yet.
    pub pid: u32,
    /// Whether it recorded itself as the creator.
    pub creator: bool,
    /// When it attached, in nanoseconds since the Unix epoch (0 if not recorded).
    pub since_unix_ns: u64,
    /// Whether its slot is held: by the kernel's record, the process (or a child
    /// forked from it) is attached. If not, it went without leaving: it was killed,
    /// crashed or `exec`ed while attached (a process that leaves clears its entry).
    pub attached: bool,
}

/// Every entry of the table whose slot is held or that holds a record, in slot order,
/// looked at by a process that is not attached (it holds no slot).
pub(crate) fn records(file: &SegmentFile) -> Result<Vec<ParticipantRecord>, ShmError> {
    let mut table = vec![0u8; SLOTS * SLOT_LEN];
    let read = file.read_at(&mut table, slot_offset(0))?;
    let mut found = Vec::new();
    for slot in 0..SLOTS {
        let attached = file
            .conflicting(slot_byte(slot), Lease::Exclusive)?
            .is_some();
        let mut entry = EMPTY_SLOT;
        if read >= (slot + 1) * SLOT_LEN {
            entry.copy_from_slice(&table[slot * SLOT_LEN..(slot + 1) * SLOT_LEN]);
        }
        if !attached && entry == EMPTY_SLOT {
            continue;
        }
        let (pid, role, since_unix_ns) = decode_slot(&entry);
        found.push(ParticipantRecord {
            slot,
            pid,
            creator: role == Some(Role::Creator),
            since_unix_ns,
            attached,
        });
    }
    Ok(found)
}
