//! The life of a segment's file: creating it (and reclaiming a stale name), opening it
//! (waiting for the name, then for its initialisation, and checking it through the
//! file before mapping it), and leaving it (removing the name as the segment's rule
//! says).
//!
//! Who is attached is kept by leases (see `lease.rs`); a process trusts its attachment
//! only once it holds the gate and has seen the file still named. From then on nobody
//! can reclaim or remove the segment as the last one out, since both need the gate for
//! themselves.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, SystemTime};

use shmsync_core::{deadline_after, expired, ShmSafe, Wait};

use super::header::{
    self, data_offset, segment_len, Header, Probe, Unlink, FORMAT_VERSION, HEADER_LEN,
    INITIALISING, READY, STATE_OFFSET, UNLINK_OFFSET,
};
use super::lease;
use super::mapping::{unlink_name, FileState, Kind, Lease, Mapping, SegmentFile};
use crate::error::ShmError;
use crate::futex::{self, Futex};
use crate::identity::{check_type, TypeRecord};

/// How long a file without a header, that nobody is attached to, is taken for a creator
/// between creating the file and attaching to it (a few microseconds, unless it is
/// descheduled) before it counts as left by a creator that died there.
const CREATION_GRACE: Duration = Duration::from_secs(1);

/// How long `create` waits for another process that is creating the name, or looking
/// whether it is stale, before it reports the name as taken.
const CREATE_PATIENCE: Duration = Duration::from_secs(3);

/// How a handle to a segment came to be.
///
/// # Example
///
/// ```
/// use shmsync::{Origin, Process, Shared, Value};
/// # let name = format!("shmsync-doc-origin-{}", std::process::id());
///
/// // A process that dies holding a segment leaves its name behind...
/// let child = Process::spawn(|| {
///     let segment = Shared::create(&name, Value::<u32>::new(1)).unwrap();
///     std::mem::forget(segment); // as if killed: the name is not removed
/// })?;
/// assert!(child.join()?.success());
///
/// // ...and the next `create` reclaims it, and says so.
/// let segment = Shared::create(&name, Value::<u32>::new(2))?;
/// match segment.origin() {
///     Origin::Reclaimed(stale) => assert!(stale.initialised),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(segment.get(), 2); // new memory, never the old data
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// This process created the segment.
    Created,
    /// This process created the segment under a name that a stale segment held: its
    /// creator and every participant had died. The stale one was removed, its memory
    /// was never reused.
    Reclaimed(Stale),
    /// This process opened a segment another created (or was handed its descriptor).
    Opened,
}

/// A stale segment that [`Shared::create`](crate::Shared::create) found under its name
/// and removed: see [`Origin::Reclaimed`].
///
/// # Example
///
/// ```
/// use shmsync::{Origin, Shared, Stale, Value};
/// # let name = format!("shmsync-doc-stale-{}", std::process::id());
///
/// fn describe(stale: &Stale) -> String {
///     let state = if stale.initialised { "ready" } else { "half-made" };
///     format!("replaced a {state} segment left by process {:?}", stale.creator_pid)
/// }
///
/// let segment = Shared::create(&name, Value::<u8>::new(0))?;
/// if let Origin::Reclaimed(stale) = segment.origin() {
///     eprintln!("{}", describe(stale));
/// }
/// # Ok::<(), shmsync::ShmError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stale {
    /// The process id of its creator, as the creator saw itself (in another PID
    /// namespace it names another process); `None` if it died before writing it.
    pub creator_pid: Option<u32>,
    /// Whether its creator had finished initialising it.
    pub initialised: bool,
    /// The type it held, if its header says.
    pub held: Option<TypeRecord>,
}

/// A segment file this process is attached to, and its mapping.
pub(crate) struct Attached {
    pub file: SegmentFile,
    pub mapping: Mapping,
    /// The participant slot this process holds (named segments with a free slot).
    pub slot: Option<usize>,
}

/// A new named segment's file, attached in the creator's slot, sized, its header
/// written; not yet mapped nor ready. Dropped before it is finished, it removes the
/// name again.
pub(crate) struct Unfinished {
    file: Option<SegmentFile>,
    pub reclaimed: Option<Stale>,
}

impl Unfinished {
    pub(crate) fn file(&self) -> &SegmentFile {
        self.file.as_ref().expect("taken only by `finish`")
    }

    /// The segment is ready: its name stays.
    pub(crate) fn finish(mut self) -> SegmentFile {
        self.file.take().expect("taken only here")
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            if file.kind() == Kind::Named {
                // Attached, so the name leads to this file: nobody else could reclaim
                // or remove it meanwhile.
                let _ = unlink_name(file.name());
            }
        }
    }
}

/// What was found under a name that `create` found taken, or that is to be removed.
pub(crate) enum Found {
    /// Somebody is attached.
    Live,
    /// Nobody is attached, and its rule keeps it for later processes.
    Persisted,
    /// A creator is making it, or another process is removing it or looking whether it
    /// may: wait a moment.
    Busy,
    /// The name went away meanwhile.
    Vanished,
    /// Stale: its creator and every participant died. `marked`: the file starts with
    /// shmsync's magic; one that does not (its creator died before writing its header)
    /// may as well be another program's file that starts with zeros.
    Stale { stale: Stale, marked: bool },
}

/// Which segments [`remove_if`] removes, once nobody is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removable {
    /// Stale ones, as `create` replaces them.
    Stale,
    /// Stale ones that start with shmsync's magic: what a sweep of `/dev/shm` may
    /// remove without touching other programs' files.
    MarkedStale,
    /// Marked ones that nobody is attached to, stale or kept on purpose.
    Unused,
}

impl Removable {
    fn admits(self, found: &Found) -> bool {
        match found {
            Found::Stale { marked, .. } => *marked || self == Removable::Stale,
            Found::Persisted => self == Removable::Unused,
            Found::Live | Found::Busy | Found::Vanished => false,
        }
    }
}

/// What [`remove_if`] did.
pub(crate) enum Removal {
    /// It removed the name, which held this.
    Removed(Found),
    /// It left the name, which holds this (or nothing: `Vanished`).
    Left(Found),
}

/// Creates the named segment `name` for a `T`, reclaiming the name if a stale segment
/// holds it.
pub(crate) fn create<T: ShmSafe>(name: &str, patient: bool) -> Result<Unfinished, ShmError> {
    let began = Futex::now();
    let patience = deadline_after::<Futex>(if patient {
        CREATE_PATIENCE
    } else {
        Duration::ZERO
    });
    let mut reclaimed = None;
    let file = loop {
        match SegmentFile::create_named(name) {
            Ok(file) => match enter_new(file)? {
                Some(file) => break file,
                None => continue,
            },
            Err(ShmError::AlreadyExists { .. }) => {}
            Err(error) => return Err(error),
        }
        match remove_if(name, Removable::Stale)? {
            Removal::Removed(Found::Stale { stale, .. }) => reclaimed = Some(stale),
            Removal::Left(Found::Vanished) => {}
            Removal::Left(Found::Busy) if !expired::<Futex>(Some(patience)) => pause_briefly(began),
            Removal::Removed(_) | Removal::Left(_) => {
                return Err(ShmError::AlreadyExists {
                    name: name.to_owned(),
                })
            }
        }
    };
    let segment = Unfinished {
        file: Some(file),
        reclaimed,
    };
    let file = segment.file();
    // Only now, attached: should it fail, `segment` removes the name, which is surely
    // still this file's.
    file.restrict_to_owner()?;
    let len = segment_len::<T>();
    file.reserve(len)?;
    header::write(file, &Header::new::<T>(len))?;
    lease::record_creator(file)?;
    Ok(segment)
}

/// Attaches to a file this process just created. `None` if it was reclaimed before
/// that (its creator took too long to get here, and the name is another's now).
fn enter_new(file: SegmentFile) -> Result<Option<SegmentFile>, ShmError> {
    let began = Futex::now();
    // Another process may hold the gate for a moment, to look whether the file is
    // stale: only one that looked too long ago holds on to it, and then removes it.
    while !lease::enter(&file)? {
        if Futex::now() - began > CREATE_PATIENCE.as_nanos() as u64 {
            return Ok(None);
        }
        pause_briefly(began);
    }
    if !file.state()?.linked {
        return Ok(None);
    }
    lease::claim_creator_slot(&file)?;
    Ok(Some(file))
}

/// Looks at the segment named `name` and removes it if nobody is attached and
/// `removable` admits it. Only a process that holds the gate exclusively removes a
/// name, after looking again: nobody can attach meanwhile, so a segment somebody is
/// attached to is never removed.
pub(crate) fn remove_if(name: &str, removable: Removable) -> Result<Removal, ShmError> {
    let file = match SegmentFile::open_named(name) {
        Ok(file) => file,
        Err(ShmError::NotFound { .. }) => return Ok(Removal::Left(Found::Vanished)),
        Err(error) => return Err(error),
    };
    let found = judge(&file)?;
    if !removable.admits(&found) {
        return Ok(Removal::Left(found));
    }
    if !lease::seal_off(&file)? {
        return Ok(Removal::Left(Found::Busy));
    }
    // Nobody can attach while this file holds the gate: look again, for good.
    if !file.state()?.linked {
        return Ok(Removal::Left(Found::Vanished));
    }
    let found = judge(&file)?;
    if !removable.admits(&found) {
        return Ok(Removal::Left(found));
    }
    match unlink_name(name) {
        Ok(()) => Ok(Removal::Removed(found)),
        Err(ShmError::NotFound { .. }) => Ok(Removal::Left(Found::Vanished)),
        Err(error) => Err(error),
    }
}

/// Whether the segment in `file` is stale, by its leases and its header; an error for
/// a file that is not a segment of this format version, whose leases cannot be read.
pub(crate) fn judge(file: &SegmentFile) -> Result<Found, ShmError> {
    match lease::gate_holders(file)? {
        Some(Lease::Shared) => return Ok(Found::Live),
        Some(Lease::Exclusive) => return Ok(Found::Busy),
        None => {}
    }
    let state = file.state()?;
    let unfinished = Stale {
        creator_pid: None,
        initialised: false,
        held: None,
    };
    Ok(match header::read(file)? {
        Probe::Unwritten if young(&state) => Found::Busy,
        Probe::Unwritten => Found::Stale {
            stale: unfinished,
            marked: false,
        },
        Probe::Foreign => {
            return Err(ShmError::NotShmsync {
                name: file.name().to_owned(),
            })
        }
        Probe::OtherVersion { format } => {
            return Err(ShmError::VersionMismatch {
                name: file.name().to_owned(),
                expected: FORMAT_VERSION,
                found: format,
            })
        }
        Probe::CutShort { .. } => Found::Stale {
            stale: unfinished,
            marked: true,
        },
        Probe::Written(header) if header.state == READY && header.unlink == Unlink::Never => {
            Found::Persisted
        }
        Probe::Written(header) => Found::Stale {
            stale: Stale {
                creator_pid: Some(header.creator_pid),
                initialised: header.state == READY,
                held: Some(header.type_record()),
            },
            marked: true,
        },
    })
}

/// Whether a file's metadata changed so recently that a creator may still be between
/// creating it and attaching to it. A clock set back makes files look young: they are
/// left alone longer, never reclaimed early.
fn young(state: &FileState) -> bool {
    SystemTime::now()
        .duration_since(state.changed)
        .map_or(true, |age| age < CREATION_GRACE)
}

/// What [`attach`] found.
pub(crate) enum Attach {
    Attached(Attached),
    /// The segment was removed while we looked; the name may lead to another now.
    Gone,
    /// Its creator died before it was ready.
    Abandoned,
}

/// Opens the named segment `name`, waiting until `deadline` for the name to appear and
/// for its creator to finish. With `or_create` (the caller creates the segment itself
/// when there is none to open), a missing name, a segment removed while we looked and
/// one whose creator died initialising it are reported at once (`NotFound`,
/// `Abandoned`); otherwise `open` waits for someone to create or replace it.
pub(crate) fn open<T: ShmSafe>(
    name: &str,
    began: u64,
    deadline: u64,
    or_create: bool,
) -> Result<Attached, ShmError> {
    let mut pause = Backoff::new();
    loop {
        // Whether the name led to a file this time: then a `Gone` is a segment that
        // could not be entered, not a missing name.
        let mut named = true;
        let outcome = match SegmentFile::open_named(name) {
            Ok(file) => attach::<T>(file, began, deadline)?,
            Err(ShmError::NotFound { .. }) => {
                named = false;
                Attach::Gone
            }
            Err(error) => return Err(error),
        };
        match outcome {
            Attach::Attached(attached) => return Ok(attached),
            Attach::Abandoned if or_create || expired::<Futex>(Some(deadline)) => {
                return Err(ShmError::Abandoned {
                    name: name.to_owned(),
                })
            }
            Attach::Gone if expired::<Futex>(Some(deadline)) && named => {
                return Err(ShmError::Unavailable {
                    name: name.to_owned(),
                    waited: Duration::from_nanos(Futex::now().saturating_sub(began)),
                })
            }
            Attach::Gone if expired::<Futex>(Some(deadline)) => {
                return Err(ShmError::NotFound {
                    name: name.to_owned(),
                })
            }
            Attach::Gone if or_create => {
                // Nobody else may ever create it: the caller does. A segment being
                // removed is gone in a moment.
                if named {
                    pause_briefly(began);
                }
                return Err(ShmError::NotFound {
                    name: name.to_owned(),
                });
            }
            Attach::Gone | Attach::Abandoned => pause.sleep(deadline),
        }
    }
}

/// Checks the segment in `file` through the file (its size by `fstat`, its header by
/// `pread`), waits until `deadline` for it to be ready, attaches to it (a named one)
/// and maps it. Nothing here touches the mapping's memory, so a peer that truncates
/// the file meanwhile causes an error, never a `SIGBUS`.
pub(crate) fn attach<T: ShmSafe>(
    file: SegmentFile,
    began: u64,
    deadline: u64,
) -> Result<Attach, ShmError> {
    let named = file.kind() == Kind::Named;
    let name = || file.name().to_owned();
    let not_ready = || ShmError::NotReady {
        name: name(),
        waited: Duration::from_nanos(Futex::now().saturating_sub(began)),
    };
    let mut header_page: Option<Mapping> = None;
    loop {
        let probe = header::read(&file)?;
        // The size is taken after the header: a creator sizes its file before it
        // writes the header, so a size taken before a header seen written may be the
        // new file's 0 bytes.
        let state = file.state()?;
        if named && !state.linked {
            return Ok(Attach::Gone);
        }
        let header = match probe {
            Probe::Written(header) => header,
            Probe::Unwritten => {
                if named && lease::gate_holders(&file)?.is_none() && !young(&state) {
                    return Ok(Attach::Abandoned);
                }
                if expired::<Futex>(Some(deadline)) {
                    return Err(not_ready());
                }
                sleep_until(deadline, Duration::from_millis(1));
                continue;
            }
            Probe::Foreign => return Err(ShmError::NotShmsync { name: name() }),
            Probe::OtherVersion { format } => {
                return Err(ShmError::VersionMismatch {
                    name: name(),
                    expected: FORMAT_VERSION,
                    found: format,
                })
            }
            Probe::CutShort { total_len } => {
                return Err(ShmError::SizeMismatch {
                    name: name(),
                    expected: total_len.unwrap_or(HEADER_LEN as u64),
                    found: state.len,
                })
            }
        };
        check_type::<T>(file.name(), header.fingerprint, &header.description)?;
        let wrong_field = [
            ("length", header.total_len, segment_len::<T>()),
            ("data offset", header.data_offset, data_offset::<T>()),
        ]
        .into_iter()
        .find(|&(_, recorded, expected)| recorded != expected as u64);
        if let Some((field, recorded, expected)) = wrong_field {
            return Err(ShmError::HeaderMismatch {
                name: name(),
                field,
                recorded,
                expected: expected as u64,
                file_len: state.len,
            });
        }
        if state.len != header.total_len {
            return Err(ShmError::SizeMismatch {
                name: name(),
                expected: header.total_len,
                found: state.len,
            });
        }
        if header.state == READY {
            break;
        }
        if named && !lease::creator_attached(&file)? {
            // The creator may have marked it ready and left since the header was read;
            // once it is gone, nobody else marks it.
            if still_initialising(&file)? {
                return Ok(Attach::Abandoned);
            }
            continue;
        }
        if expired::<Futex>(Some(deadline)) {
            return Err(not_ready());
        }
        // Sleep until the creator marks it ready, looking again now and then whether
        // it died meanwhile.
        let page = match header_page.take() {
            Some(page) => page,
            None => Mapping::of(&file, HEADER_LEN)?,
        };
        // SAFETY: the state word lies inside the header page just mapped; only its
        // address is taken, and the kernel reads it with its own checks.
        let word = unsafe { page.base().as_ptr().add(STATE_OFFSET) }.cast::<u32>();
        let look_again = Futex::now().saturating_add(10_000_000);
        futex::wait_at(word, INITIALISING, Some(deadline.min(look_again)));
        header_page = Some(page);
    }
    let slot = if named {
        if !lease::enter(&file)? || !file.state()?.linked {
            return Ok(Attach::Gone);
        }
        lease::claim_slot(&file)?
    } else {
        None
    };
    // Pairs with the creator's release store of READY, which `header::read` saw through
    // the file: the value it wrote before is visible through the mapping.
    fence(Ordering::Acquire);
    let mapping = Mapping::of(&file, segment_len::<T>())?;
    Ok(Attach::Attached(Attached {
        file,
        mapping,
        slot,
    }))
}

/// Whether the segment in `file` is not (yet) marked ready, by its header now.
fn still_initialising(file: &SegmentFile) -> Result<bool, ShmError> {
    Ok(!matches!(header::read(file)?, Probe::Written(header) if header.state == READY))
}

/// Lets go of a segment: removes the name if the segment's rule says this process
/// should, then unmaps and closes it. `created_here`: this process created it (not a
/// child forked from the creator).
pub(crate) fn leave(file: SegmentFile, mapping: Mapping, created_here: bool) {
    if file.kind() != Kind::Named {
        return;
    }
    let mut word = [0u8; 4];
    let rule = match file.read_at(&mut word, UNLINK_OFFSET) {
        Ok(4) => Unlink::from_word(u32::from_ne_bytes(word)),
        _ => Unlink::Never,
    };
    match rule {
        Unlink::ByCreator if created_here => {
            // Still attached: the name leads to this file unless another program
            // removed it.
            if file.state().is_ok_and(|state| state.linked) {
                let _ = unlink_name(file.name());
            }
        }
        Unlink::ByLastOut => leave_last(file, mapping),
        Unlink::ByCreator | Unlink::Never => {}
    }
}

/// Leaves, and removes the name if nobody else is attached: after letting go, takes
/// the gate exclusively through a second descriptor of the same file, which succeeds
/// only when no other process (nor a child forked from this one) holds it, and keeps
/// out any process that opens it at the same moment (it then finds the name gone).
fn leave_last(file: SegmentFile, mapping: Mapping) {
    let Ok(again) = SegmentFile::open_named(file.name()) else {
        return;
    };
    let same = match (file.state(), again.state()) {
        (Ok(mine), Ok(named)) => mine.id == named.id,
        _ => false,
    };
    drop(mapping);
    drop(file);
    if same
        && lease::seal_off(&again).unwrap_or(false)
        && again.state().is_ok_and(|state| state.linked)
    {
        let _ = unlink_name(again.name());
    }
}

/// Writes the rule for removing the name.
pub(crate) fn set_unlink(file: &SegmentFile, rule: Unlink) -> Result<(), ShmError> {
    file.write_at(&rule.encode(), UNLINK_OFFSET)
}

/// Reads the rule for removing the name.
pub(crate) fn unlink_rule(file: &SegmentFile) -> Result<Unlink, ShmError> {
    let mut word = [0u8; 4];
    if file.read_at(&mut word, UNLINK_OFFSET)? < word.len() {
        return Err(ShmError::SizeMismatch {
            name: file.name().to_owned(),
            expected: HEADER_LEN as u64,
            found: file.state()?.len,
        });
    }
    Ok(Unlink::from_word(u32::from_ne_bytes(word)))
}

/// Sleeps a little (at most until `deadline`), longer the longer we have waited: a name
/// that appears soon is seen soon, and a long wait costs few system calls.
struct Backoff {
    step: Duration,
}

impl Backoff {
    const LONGEST: Duration = Duration::from_millis(16);

    fn new() -> Backoff {
        Backoff {
            step: Duration::from_millis(1),
        }
    }

    fn sleep(&mut self, deadline: u64) {
        sleep_until(deadline, self.step);
        self.step = (self.step * 2).min(Self::LONGEST);
    }
}

/// Sleeps for `step`, or until `deadline` if that comes first.
fn sleep_until(deadline: u64, step: Duration) {
    let left = Duration::from_nanos(deadline.saturating_sub(Futex::now()));
    std::thread::sleep(step.min(left));
}

/// A short pause while another process finishes a step of a few system calls: 100 µs
/// at first, 1 ms after the first millisecond.
fn pause_briefly(began: u64) {
    let waited = Futex::now().saturating_sub(began);
    std::thread::sleep(if waited < 1_000_000 {
        Duration::from_micros(100)
    } else {
        Duration::from_millis(1)
    });
}

/// The deadline `timeout` from now, and now.
pub(crate) fn deadline(timeout: Duration) -> (u64, u64) {
    (Futex::now(), deadline_after::<Futex>(timeout))
}

/// Marks a segment just initialised through `mapping` ready, and wakes its openers.
pub(crate) fn mark_ready(mapping: &Mapping) {
    // SAFETY: the state word is inside the mapping's header, 4-aligned in a
    // page-aligned mapping, and only ever accessed atomically or through the file.
    let state = unsafe {
        &*mapping
            .base()
            .as_ptr()
            .add(STATE_OFFSET)
            .cast::<shmsync_core::AtomicU32>()
    };
    // Release: an opener that sees READY (through the file, then an acquire fence)
    // sees the value written before.
    state.store(READY, shmsync_core::Ordering::Release);
    Futex::wake_all(state);
}
