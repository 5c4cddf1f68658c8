//! Shared-memory segments holding one [`ShmSafe`] value: anonymous (inherited by forked
//! children), memfd (handed to exec'd children by file descriptor) and named (opened by
//! unrelated processes).
//!
//! Two layers, as iceoryx2 keeps them: `mapping.rs` is the raw one (files, sizes, seals,
//! names, leases, mappings), and this module the typed one ([`Shared<T>`]: the header,
//! the layout check, building the value in place, `Deref`). Between them, `header.rs`
//! is the header's format, `lease.rs` records who is attached, and `lifecycle.rs`
//! creates, reclaims, opens and leaves segments. `docs/segments.md` in the repository
//! has the design and what it does not cover.
//!
//! Every segment starts with a header: magic, format version, the stored type's layout,
//! an init state and the table of attached processes. An opener checks it through the
//! file before it maps anything, and waits, with a timeout, for the creator to finish
//! initialising, so it never sees half-built memory; any disagreement is a typed
//! [`ShmError`].

mod header;
mod lease;
mod lifecycle;
mod mapping;
mod survey;

use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

use shmsync_core::ShmSafe;

use header::{data_offset, segment_len, Header, MAGIC_BYTES};
pub use header::{Unlink, FORMAT_VERSION};
pub use lease::{Participant, ParticipantRecord};
use lifecycle::{Attach, Attached};
pub use lifecycle::{Origin, Stale};
use mapping::{Kind, Mapping, SegmentFile};
pub use survey::{
    names, remove, Condition, Contents, RemoveIf, Removed, Segment, SegmentHeader, ValueError,
    ValueReading,
};

use crate::error::ShmError;

/// A `T` in shared memory, seen as `&T` by every process that maps it.
///
/// Make one with a value (`anonymous`, `memfd`, `create`), or in place with
/// `*_with`, which starts from all-zero bytes (a fresh mapping's) and lets a closure
/// set the rest: a value of any size is then never built on the stack. Open one made
/// elsewhere with [`open`](Self::open), [`open_or_create`](Self::open_or_create) or
/// [`from_fd`](Self::from_fd).
///
/// # Named segments
///
/// Each process that creates or opens a named segment is recorded in it
/// ([`participants`](Self::participants)) until it drops its `Shared`, exits or is
/// killed; the kernel keeps that record, so it is right even for a process killed at
/// any instruction. [`create`](Self::create) reclaims a name whose creator and every
/// participant died ([`Origin::Reclaimed`]), and never touches a segment somebody is
/// attached to. Who removes the name is the segment's [`Unlink`] rule. A child forked
/// from a participant (see [`Process`](crate::Process)) shares its attachment until it
/// exits.
///
/// A process that can write the segment's file (its user: named segments are mode
/// 0600) can shrink it, and the kernel then kills every process that touches the lost
/// pages with `SIGBUS`. `open` checks the file through system calls before it maps it,
/// so a truncated segment is an error there, not a crash; after that, a peer that
/// truncates the file can crash its users. A memfd segment is sealed against this.
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
    /// The value, inside `mapping`.
    value: NonNull<T>,
    /// `Some` until dropped.
    mapping: Option<Mapping>,
    /// The memfd's or named segment's file; `None` for an anonymous segment.
    file: Option<SegmentFile>,
    /// This process's slot in a named segment's participant table.
    slot: Option<usize>,
    origin: Origin,
    /// The process that made this handle: a forked child that inherited it is not.
    made_by: u64,
    _type: PhantomData<T>,
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

/// Where the value goes in a mapping just made, which no other process may look at
/// before the segment is marked ready. Only [`Shared::fill`] makes one.
struct Unpublished<T>(NonNull<T>);

impl<T: ShmSafe> Unpublished<T> {
    /// Writes `value` in place.
    fn write(self, value: T) {
        // SAFETY: the place is in bounds and aligned (see `Shared::fill`), and nobody
        // else reads or writes it before the segment is marked ready.
        unsafe { self.0.write(value) }
    }

    /// Lets `init` finish the value, which is all zeros.
    fn init(mut self, init: impl FnOnce(&mut T)) {
        // SAFETY: a fresh mapping is all zeros, a valid `T` since a `ShmSafe` type is
        // valid for every bit pattern; the place is in bounds and aligned, and nobody
        // else reads or writes it before the segment is marked ready, so this is the
        // only reference to it.
        init(unsafe { self.0.as_mut() })
    }
}

/// Writes `value` into a fresh mapping.
fn by_value<T: ShmSafe>(value: T) -> impl FnOnce(Unpublished<T>) {
    move |place| place.write(value)
}

/// Lets `init` finish a value that is all zeros.
fn in_place<T: ShmSafe>(init: impl FnOnce(&mut T)) -> impl FnOnce(Unpublished<T>) {
    move |place| place.init(init)
}

impl<T: ShmSafe> Shared<T> {
    /// Maps `value` into anonymous shared memory. Children forked afterwards (see
    /// [`Process`](crate::Process)) see the same memory; nothing else can open it.
    ///
    /// `value` is built on the stack first: for a large one, use
    /// [`anonymous_with`](Self::anonymous_with).
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
    /// So is a type with plain data: an integer, a float or an array of them that is
    /// not inside an atomic container. Another process could write it while this one
    /// reads it through `&T`, a data race; share a number as a `Value<T>` and an array
    /// as an `Array<T, N>` (see [`Layout::has_plain_data`](crate::Layout::has_plain_data)):
    ///
    /// ```compile_fail,E0080
    /// let _ = shmsync::Shared::anonymous(0u64);
    /// ```
    ///
    /// ```compile_fail,E0080
    /// shmsync::shm_struct! {
    ///     struct Status { ready: u32, count: shmsync::Value<u32> }
    /// }
    /// let _ = shmsync::Shared::<Status>::anonymous_with(|_| {});
    /// ```
    ///
    /// ```
    /// shmsync::shm_struct! {
    ///     struct Status { ready: shmsync::Value<u32>, count: shmsync::Value<u32> }
    /// }
    /// let _ = shmsync::Shared::<Status>::anonymous_with(|_| {})?;
    /// # Ok::<(), shmsync::ShmError>(())
    /// ```
    ///
    /// So is a type that needs a larger alignment than a page, which no mapping has:
    ///
    /// ```compile_fail,E0080
    /// use std::sync::atomic::AtomicU8;
    ///
    /// #[repr(C, align(8192))]
    /// struct Huge([AtomicU8; 8192]);
    /// // SAFETY: atomics only (the alignment is what is refused).
    /// unsafe impl shmsync::ShmSafe for Huge {
    ///     const LAYOUT: shmsync::Layout =
    ///         shmsync::Layout::opaque::<Self>("doc::Huge").accessed_atomically();
    /// }
    /// let _ = shmsync::Shared::<Huge>::anonymous_with(|_| {});
    /// ```
    pub fn anonymous(value: T) -> Result<Self, ShmError> {
        Self::anonymous_filled(by_value(value))
    }

    /// Makes the value in anonymous shared memory, in place: it starts as all-zero
    /// bytes, which every type of this library reads as its plain value (an unlocked
    /// lock, a clear event, zeros, no permits, an empty queue), and `init` sets the rest.
    /// However large, it is never on the stack.
    ///
    /// ```
    /// use shmsync::{shm_struct, Array, Semaphore, Shared};
    ///
    /// shm_struct! {
    ///     struct Frames { free: Semaphore, pixels: Array<u8, { 16 << 20 }> }
    /// }
    ///
    /// let frames = Shared::<Frames>::anonymous_with(|frames| {
    ///     frames.free = Semaphore::new(2); // the rest stays zero
    /// })?;
    /// assert_eq!(frames.free.value(), 2);
    /// assert_eq!(frames.pixels.get(16 << 19), Ok(0));
    /// # Ok::<(), shmsync::ShmError>(())
    /// ```
    pub fn anonymous_with(init: impl FnOnce(&mut T)) -> Result<Self, ShmError> {
        Self::anonymous_filled(in_place(init))
    }

    fn anonymous_filled(fill: impl FnOnce(Unpublished<T>)) -> Result<Self, ShmError> {
        let len = segment_len::<T>();
        let mapping = Mapping::anonymous(len)?;
        let mut header = Header::new::<T>(len).encode();
        header[..MAGIC_BYTES.len()].copy_from_slice(&MAGIC_BYTES);
        // SAFETY: the mapping is fresh, at least a header long, and nobody else sees it.
        unsafe {
            std::ptr::copy_nonoverlapping(header.as_ptr(), mapping.base().as_ptr(), header.len())
        };
        // SAFETY: a fresh anonymous mapping, whose header was just written; a child that
        // another thread forks meanwhile maps it too, but nothing in it knows where.
        let value = unsafe { Self::fill(&mapping, fill) };
        Ok(Self::assemble(value, mapping, None, None, Origin::Created))
    }

    /// Creates a memfd-backed segment holding `value`. `label` only labels it (in
    /// `/proc/PID/fd`).
    ///
    /// Its size is sealed: no process that is handed its descriptor can shrink it
    /// (which would crash every user with `SIGBUS`) or grow it.
    ///
    /// Its [`fd`](Self::fd) is close-on-exec: no program this process starts inherits
    /// it by accident. Hand it to a child on purpose with
    /// [`Spawn::segment`](crate::Spawn::segment); the child maps it with
    /// [`Spawned::segment`](crate::Spawned::segment) (or, given the descriptor by
    /// other means, with [`from_fd`](Self::from_fd)).
    pub fn memfd(label: &str, value: T) -> Result<Self, ShmError> {
        Self::memfd_filled(label, by_value(value))
    }

    /// [`memfd`](Self::memfd), with the value made in place as
    /// [`anonymous_with`](Self::anonymous_with) makes it.
    ///
    /// ```
    /// use shmsync::{Array, Shared};
    ///
    /// let big = Shared::<Array<u64, { 1 << 20 }>>::memfd_with("table", |_| {})?;
    /// assert_eq!(big.get(12345), Ok(0));
    /// # Ok::<(), shmsync::ShmError>(())
    /// ```
    pub fn memfd_with(label: &str, init: impl FnOnce(&mut T)) -> Result<Self, ShmError> {
        Self::memfd_filled(label, in_place(init))
    }

    fn memfd_filled(label: &str, fill: impl FnOnce(Unpublished<T>)) -> Result<Self, ShmError> {
        let file = SegmentFile::memfd(label)?;
        let len = segment_len::<T>();
        file.reserve(len)?;
        file.seal_size()?;
        header::write(&file, &Header::new::<T>(len))?;
        let mapping = Mapping::of(&file, len)?;
        // SAFETY: a new memfd, sized (so all zeros) and its header written; its
        // descriptor has not been handed to anyone yet.
        let value = unsafe { Self::fill(&mapping, fill) };
        Ok(Self::assemble(
            value,
            mapping,
            Some(file),
            None,
            Origin::Created,
        ))
    }

    /// Creates the named segment `name` (mode 0600) holding `value`. Unrelated
    /// processes [`open`](Self::open) it by name. By default the name is removed when
    /// this `Shared` is dropped; see [`set_unlink`](Self::set_unlink).
    ///
    /// If a segment of that name exists, and its creator and every process that opened
    /// it have died (a crash, a kill), it is stale: it is removed and a new one made in
    /// its place, never reusing its memory, and [`origin`](Self::origin) says so. A
    /// segment in use, or kept on purpose ([`Unlink::Never`]), is
    /// [`AlreadyExists`](ShmError::AlreadyExists).
    ///
    /// It may wait, up to about 3 seconds: a file under the name without a header yet
    /// is taken for another creator at work until its metadata is a second old (then
    /// it is reclaimed), and a name another process is creating or removing is waited
    /// for; when that wait ends first, the name is
    /// [`AlreadyExists`](ShmError::AlreadyExists). A process that keeps such a file
    /// young (touching it) makes every `create` wait the 3 seconds.
    ///
    /// `value` is built on the stack first: for a large one, use
    /// [`create_with`](Self::create_with).
    pub fn create(name: &str, value: T) -> Result<Self, ShmError> {
        Self::create_filled(name, true, by_value(value))
    }

    /// [`create`](Self::create), with the value made in place as
    /// [`anonymous_with`](Self::anonymous_with) makes it.
    ///
    /// ```
    /// use shmsync::{Array, Shared};
    /// # let name = format!("shmsync-doc-create-with-{}", std::process::id());
    ///
    /// let samples = Shared::<Array<f32, { 1 << 20 }>>::create_with(&name, |samples| {
    ///     samples.set(0, 1.5).unwrap();
    /// })?;
    /// assert_eq!(samples.get(0), Ok(1.5));
    /// # Ok::<(), shmsync::ShmError>(())
    /// ```
    pub fn create_with(name: &str, init: impl FnOnce(&mut T)) -> Result<Self, ShmError> {
        Self::create_filled(name, true, in_place(init))
    }

    fn create_filled(
        name: &str,
        patient: bool,
        fill: impl FnOnce(Unpublished<T>),
    ) -> Result<Self, ShmError> {
        let mut unfinished = lifecycle::create::<T>(name, patient)?;
        let mapping = Mapping::of(unfinished.file(), segment_len::<T>())?;
        // Should `fill` panic, `unfinished` removes the name as it unwinds, still
        // attached (so that the name is surely this segment's).
        // SAFETY: a new file, sized (so all zeros) and its header written without the
        // ready mark; openers wait for the mark before they map the value.
        let value = unsafe { Self::fill(&mapping, fill) };
        let origin = match unfinished.reclaimed.take() {
            Some(stale) => Origin::Reclaimed(stale),
            None => Origin::Created,
        };
        let file = unfinished.finish();
        Ok(Self::assemble(value, mapping, Some(file), Some(0), origin))
    }

    /// Writes the value with `fill` into `mapping` and marks it ready.
    ///
    /// # Safety
    ///
    /// `mapping` was just made, `segment_len::<T>()` bytes of zeros with the header
    /// written, and no other process may look at its value before it is marked ready.
    unsafe fn fill(mapping: &Mapping, fill: impl FnOnce(Unpublished<T>)) -> NonNull<T> {
        // SAFETY: the mapping is `segment_len::<T>()` bytes, so `data_offset` holds a
        // `T`, aligned because the mapping is page-aligned and the offset a multiple
        // of `T`'s alignment; the caller promises the rest `Unpublished` relies on.
        let value = unsafe { mapping.base().add(data_offset::<T>()) }.cast::<T>();
        fill(Unpublished(value));
        lifecycle::mark_ready(mapping);
        value
    }

    fn assemble(
        value: NonNull<T>,
        mapping: Mapping,
        file: Option<SegmentFile>,
        slot: Option<usize>,
        origin: Origin,
    ) -> Self {
        Shared {
            value,
            mapping: Some(mapping),
            file,
            slot,
            origin,
            made_by: crate::robust::process_incarnation(),
            _type: PhantomData,
        }
    }

    /// Opens the named segment `name`, waiting up to `timeout` for the name to appear
    /// and for its creator to finish initialising it. It checks the segment through
    /// the file before mapping it: a segment that holds another type, was made by
    /// another version, or was cut short by another program is an error.
    ///
    /// ```
    /// use shmsync::{Shared, ShmError, Value};
    /// use std::time::Duration;
    /// # let name = format!("shmsync-doc-open-{}", std::process::id());
    ///
    /// let opener = std::thread::spawn({
    ///     let name = name.clone();
    ///     move || Shared::<Value<u32>>::open(&name, Duration::from_secs(10)).map(|v| v.get())
    /// });
    /// let _created = Shared::create(&name, Value::<u32>::new(7))?;
    /// assert_eq!(opener.join().unwrap()?, 7);
    ///
    /// let missing = Shared::<Value<u32>>::open("shmsync-doc-nobody", Duration::ZERO);
    /// assert!(matches!(missing, Err(ShmError::NotFound { .. })));
    /// # Ok::<(), ShmError>(())
    /// ```
    pub fn open(name: &str, timeout: Duration) -> Result<Self, ShmError> {
        let (began, deadline) = lifecycle::deadline(timeout);
        let attached = lifecycle::open::<T>(name, began, deadline, false)?;
        Ok(Self::attached(attached))
    }

    /// Opens the named segment `name`, or creates it if there is none (or a stale one),
    /// as [`create_with`](Self::create_with) does. Any number of processes may call it
    /// at once: exactly one creates and initialises the segment, and the others wait up
    /// to `timeout` for it to be ready. [`origin`](Self::origin) tells which this was.
    ///
    /// ```
    /// use shmsync::{Origin, Shared, Value};
    /// use std::time::Duration;
    /// # let name = format!("shmsync-doc-open-or-create-{}", std::process::id());
    ///
    /// let first = Shared::<Value<u32>>::open_or_create(&name, Duration::from_secs(1), |v| v.set(5))?;
    /// let second = Shared::<Value<u32>>::open_or_create(&name, Duration::from_secs(1), |v| v.set(6))?;
    /// assert_eq!((first.origin(), second.origin()), (&Origin::Created, &Origin::Opened));
    /// assert_eq!(second.get(), 5);
    /// # Ok::<(), shmsync::ShmError>(())
    /// ```
    pub fn open_or_create(
        name: &str,
        timeout: Duration,
        init: impl FnOnce(&mut T),
    ) -> Result<Self, ShmError> {
        let (began, deadline) = lifecycle::deadline(timeout);
        let mut init = Some(init);
        loop {
            // Only this first step can call `init`; every later one fails before it.
            let fill = in_place(|value: &mut T| init.take().expect("called once")(value));
            match Self::create_filled(name, false, fill) {
                Err(ShmError::AlreadyExists { .. }) => {}
                created => return created,
            }
            match lifecycle::open::<T>(name, began, deadline, true) {
                Ok(attached) => return Ok(Self::attached(attached)),
                // Missing (the last user may have just removed it), removed while we
                // looked, or left half-made by a creator that died: create it.
                Err(ShmError::NotFound { .. } | ShmError::Abandoned { .. })
                    if !shmsync_core::expired::<crate::Futex>(Some(deadline)) => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Maps a segment made by [`memfd`](Self::memfd) in another process, from its
    /// file descriptor (inherited across `exec`), waiting up to `timeout` for it to be
    /// ready.
    ///
    /// What it trusts: nothing in the file but what it checks, as [`open`](Self::open)
    /// does (the header, the layout, the size), and the kernel's seals for the rest. A
    /// descriptor whose size is not sealed against shrinking, such as a named
    /// segment's or a memfd its maker did not seal, is
    /// [`Unsealed`](ShmError::Unsealed): whoever else holds it could shrink the file
    /// under this process's mapping, and `SIGBUS` would kill it. Open a named segment
    /// by its name.
    ///
    /// ```
    /// use shmsync::{Shared, ShmError, Value};
    /// use std::time::Duration;
    /// # let name = format!("shmsync-doc-from-fd-{}", std::process::id());
    ///
    /// let named = Shared::create(&name, Value::<u32>::new(1))?;
    /// let fd = named.fd().unwrap().try_clone_to_owned().unwrap();
    /// let refused = Shared::<Value<u32>>::from_fd(fd, Duration::ZERO);
    /// assert!(matches!(refused, Err(ShmError::Unsealed { .. })));
    /// # Ok::<(), ShmError>(())
    /// ```
    pub fn from_fd(fd: OwnedFd, timeout: Duration) -> Result<Self, ShmError> {
        Self::from_handed_fd(fd, "(memfd)", timeout)
    }

    /// Maps the memfd segment `fd`, labelled `label`, handed to a spawned child.
    pub(crate) fn from_handed_fd(
        fd: OwnedFd,
        label: &str,
        timeout: Duration,
    ) -> Result<Self, ShmError> {
        let (began, deadline) = lifecycle::deadline(timeout);
        match lifecycle::attach::<T>(SegmentFile::from_fd(fd, label)?, began, deadline)? {
            Attach::Attached(attached) => Ok(Self::attached(attached)),
            // Only named segments are removed or abandoned.
            Attach::Gone | Attach::Abandoned => unreachable!("a memfd has no name"),
        }
    }

    fn attached(attached: Attached) -> Self {
        let Attached {
            file,
            mapping,
            slot,
        } = attached;
        // SAFETY: `attach` checked that the mapping is `segment_len::<T>()` bytes and
        // holds a ready `T` at `data_offset::<T>()`, aligned as `fill` argues.
        let value = unsafe { mapping.base().add(data_offset::<T>()) }.cast::<T>();
        Self::assemble(value, mapping, Some(file), slot, Origin::Opened)
    }

    /// How this handle came to be: created, created over a stale segment, or opened.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The segment's name (a memfd's label); `None` for an anonymous one.
    pub fn name(&self) -> Option<&str> {
        self.file.as_ref().map(SegmentFile::name)
    }

    /// The file descriptor of a memfd or named segment.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.file.as_ref().map(SegmentFile::fd)
    }

    /// The file of a named segment.
    fn named(&self) -> Option<&SegmentFile> {
        self.file.as_ref().filter(|file| file.kind() == Kind::Named)
    }

    /// How [`Spawn`](crate::Spawn) hands this segment to a child.
    pub(crate) fn handoff(&self) -> Handoff<'_> {
        match &self.file {
            Some(file) if file.kind() == Kind::Memfd => Handoff::Fd {
                fd: file.fd(),
                label: file.name(),
            },
            Some(file) => Handoff::Name(file.name()),
            None => Handoff::Anonymous,
        }
    }

    /// Sets who removes a named segment's name (see [`Unlink`]), for every process
    /// attached to it. Nothing to do for an anonymous or memfd segment, which has no
    /// name.
    pub fn set_unlink(&self, rule: Unlink) -> Result<(), ShmError> {
        match self.named() {
            Some(file) => lifecycle::set_unlink(file, rule),
            None => Ok(()),
        }
    }

    /// Who removes a named segment's name; `None` for an anonymous or memfd segment.
    pub fn unlink_rule(&self) -> Option<Unlink> {
        // A rule that cannot be read (a file cut short) is kept as "never".
        self.named()
            .map(|file| lifecycle::unlink_rule(file).unwrap_or(Unlink::Never))
    }

    /// Keeps the name after this `Shared` is dropped, for processes that come later
    /// (`set_unlink(Unlink::Never)`); remove it with [`unlink`](Self::unlink).
    pub fn persist(&self) -> Result<(), ShmError> {
        self.set_unlink(Unlink::Never)
    }

    /// The processes attached to a named segment, as its participant table records
    /// them: every process that created or opened it and has not let go, up to 64
    /// (further ones are attached all the same, but not listed). A child forked from a
    /// participant shares its entry. Empty for an anonymous or memfd segment.
    pub fn participants(&self) -> Result<Vec<Participant>, ShmError> {
        match self.named() {
            Some(file) => lease::participants(file, self.slot),
            None => Ok(Vec::new()),
        }
    }

    /// Removes the named segment `name`, whoever uses it. Processes that have it mapped
    /// keep it; later ones cannot open it.
    ///
    /// A file under that name that is not shmsync's (it starts with other bytes than
    /// shmsync's magic or a creator's zeros) is [`NotShmsync`](ShmError::NotShmsync)
    /// and stays. The look and the removal are two steps: a file put in the segment's
    /// place between them is removed all the same.
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        let file = SegmentFile::open_named(name)?;
        if let header::Probe::Foreign = header::read(&file)? {
            return Err(ShmError::NotShmsync {
                name: name.to_owned(),
            });
        }
        mapping::unlink_name(name)
    }
}

impl<T: ShmSafe> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a `Shared` exists only once the value was written (by `finish`) or
        // seen ready with a matching layout (by `attach`); it stays mapped until drop,
        // and `T: ShmSafe` without plain data (refused at compile time by
        // `data_offset`) changes every byte through atomics, so `&T` is sound while
        // other processes write it, whatever they write.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ShmSafe> Drop for Shared<T> {
    fn drop(&mut self) {
        let Some(mapping) = self.mapping.take() else {
            return;
        };
        // A lock in here that this thread still holds (a forgotten guard, an `acquire`
        // never released) goes to the next locker as if this thread had died, before
        // the memory its robust-list entry names goes away.
        crate::Robust::abandon_range(mapping.base().as_ptr() as usize, mapping.len());
        if let Some(file) = self.file.take() {
            let here = self.made_by == crate::robust::process_incarnation();
            let created_here = here && !matches!(self.origin, Origin::Opened);
            // The process that took the slot says it left; a forked child that shares
            // it says nothing, its parent may still be attached.
            if let Some(slot) = self.slot.filter(|_| here) {
                lease::clear_entry(&file, slot);
            }
            lifecycle::leave(file, mapping, created_here);
        }
    }
}

impl<T: ShmSafe + std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name())
            .field("fd", &self.fd().map(|fd| fd.as_raw_fd()))
            .field("origin", &self.origin)
            .field("value", &**self)
            .finish()
    }
}
