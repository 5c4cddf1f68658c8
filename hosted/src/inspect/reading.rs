//! Reading a value's live state from its bytes, part by part, as its description lays
//! it out: what each lock's, event's, semaphore's and queue's words say, each value and
//! array. The bytes say what they say: a lock's word tells that somebody waits, not
//! how many; a holder is a thread id in the holder's own PID namespace.

use std::fmt;

use shmsync_core::{LockState, QueueState, SemaphoreState};

use super::description::{FieldNode, TypeDescription, TypeNode};
use super::fingerprint::{measure, Verification};
use super::known::{self, QUEUE, QUEUE_SLOT};
use super::ReadOptions;

/// A part of a segment's value, read from its bytes: a field, an element, or the whole.
///
/// Its [`Display`](fmt::Display) form is one line, its type and what it holds:
/// `Lock: held by thread 4121, someone waits`, `Value<u32> = 17`.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{PartState, Segment};
/// use shmsync::{shm_struct, Event, Lock, Shared, Value};
/// # let name = format!("shmsync-doc-part-{}", std::process::id());
///
/// shm_struct! {
///     struct Job { lock: Lock, start: Event, done: Value<u32> }
/// }
///
/// let job = Shared::<Job>::create_with(&name, |job| job.done.set(17))?;
/// job.start.set();
/// let _held = job.lock.lock().unwrap();
///
/// let value = Segment::look(&name)?.read_value(&Default::default())?;
/// let lines: Vec<String> = value.root.parts.iter().map(|part| part.to_string()).collect();
/// let me = nix::unistd::gettid();
/// assert_eq!(lines, [format!("lock: Lock: held by thread {me}"),
///                    "start: Event: set".to_string(),
///                    "done: Value<u32> = 17".to_string()]);
/// assert!(matches!(value.root.parts[0].state, PartState::Lock(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Part {
    /// Its field name, `[i]` for an array's element; `None` for the whole value.
    pub name: Option<String>,
    /// Where it starts in the value, in bytes.
    pub offset: u64,
    /// Its type, as a program using the hosted crate writes it: `Value<u32>`,
    /// `Semaphore`, `app::Stats`.
    pub type_name: String,
    /// Its type as the description wrote it: `Value<u32, Futex, Robust>`.
    pub described: String,
    /// What its bytes say.
    pub state: PartState,
    /// Its fields, or its first elements.
    pub parts: Vec<Part>,
}

/// What a [`Part`]'s bytes say.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{PartState, ScalarValue, Segment};
/// use shmsync::{Shared, Value};
/// # let name = format!("shmsync-doc-part-state-{}", std::process::id());
///
/// let _segment = Shared::create(&name, Value::<f32>::new(0.5))?;
/// let value = Segment::look(&name)?.read_value(&Default::default())?;
/// let PartState::Value { value, lock } = value.root.state else { unreachable!() };
/// assert_eq!(value, ScalarValue::F32(0.5));
/// assert_eq!(lock.to_string(), "free");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PartState {
    /// A struct: its fields are the part's parts.
    Struct {
        /// Whether every field was recorded (false where the description was cut
        /// short).
        complete: bool,
    },
    /// An array of structs or of the library's types: its first elements are the
    /// part's parts.
    Elements {
        /// How many elements it has.
        len: usize,
    },
    /// A lock.
    Lock(LockView),
    /// A re-entrant lock.
    RLock {
        /// Its lock.
        lock: LockView,
        /// How many levels its holder holds, as stored.
        depth: u32,
    },
    /// A condition variable.
    Condition {
        /// Waiters holding a slot (those beyond the slots are not counted).
        waiting: usize,
    },
    /// A barrier.
    Barrier {
        /// The parties it waits for.
        parties: u32,
        /// The parties waiting now.
        waiting: u32,
        /// Whether it is broken.
        broken: bool,
    },
    /// A readers-writer lock.
    RwLock {
        /// Its writer lock.
        writer: LockView,
        /// Whether readers are turned away: a writer holds it, or waits for readers.
        readers_turned_away: bool,
        /// Readers holding a slot.
        readers: usize,
        /// Slots held by readers that died (freed at the next look).
        readers_died: usize,
        /// Whether a writer died holding it, perhaps half-way through a change (or it
        /// is not recoverable).
        writer_died: bool,
    },
    /// An event.
    Event {
        /// Whether it is set.
        set: bool,
        /// Whether some waiter said it sleeps on it.
        sleepers_announced: bool,
    },
    /// A semaphore whose permits come back when their holder dies (the hosted crate's
    /// `Semaphore` and `BoundedSemaphore`).
    Semaphore {
        /// Its words.
        state: SemaphoreState,
        /// What the ids in its holders' lock states are.
        ids: HolderIds,
    },
    /// A semaphore without holders (the core crate's `Semaphore` and
    /// `BoundedSemaphore`).
    UntrackedSemaphore {
        /// Free permits.
        free: u32,
        /// Acquirers that said they wait (one that died waiting stays counted).
        waiters_announced: u32,
        /// Its bound, if it is bounded.
        bound: Option<u32>,
    },
    /// A `Value`.
    Value {
        /// Its value.
        value: ScalarValue,
        /// Its lock.
        lock: LockView,
    },
    /// An `Array`.
    Array {
        /// Its first items (at most [`ReadOptions::max_items`]).
        items: Vec<ScalarValue>,
        /// How many items it has.
        len: usize,
        /// Bytes (`u8` items) that are text up to their first zero, as that text.
        text: Option<String>,
        /// Its lock.
        lock: LockView,
    },
    /// A `Queue`.
    Queue {
        /// What its counter words say.
        state: QueueState,
        /// Its lock.
        lock: LockView,
    },
    /// A number.
    Scalar(ScalarValue),
    /// An array of numbers.
    Scalars {
        /// Its first items (at most [`ReadOptions::max_items`]).
        items: Vec<ScalarValue>,
        /// How many items it has.
        len: usize,
        /// Bytes (`u8` items) that are text up to their first zero, as that text.
        text: Option<String>,
    },
    /// A type that describes only its name: its bytes are not read.
    Opaque,
    /// Not read, for the reason given.
    NotRead(String),
    /// Its bytes are not there.
    Unreadable(Unreadable),
}

/// What a lock's word says.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{HolderIds, LockState, LockView};
///
/// let view = LockView {
///     state: LockState::Held { holder: 4121 },
///     sleepers_announced: true,
///     ids: HolderIds::Threads,
/// };
/// assert_eq!(view.to_string(), "held by thread 4121, someone waits");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockView {
    /// Who holds it, if anybody, and whether a holder died.
    pub state: LockState,
    /// Whether some locker said it sleeps waiting: somebody waits, not how many (the
    /// mark may outlive a waiter that timed out or died).
    pub sleepers_announced: bool,
    /// What the holder ids in `state` are.
    pub ids: HolderIds,
}

/// What the holder ids in a [`LockState`] are.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{HolderIds, LockState, LockView};
///
/// let view = LockView { state: LockState::Held { holder: 1 }, sleepers_announced: false, ids: HolderIds::Anonymous };
/// assert_eq!(view.to_string(), "held by an owner-less holder");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HolderIds {
    /// Linux thread ids, each in its holder's own PID namespace (in another namespace
    /// the same number may name another thread, or none), recorded by the robust
    /// backend.
    Threads,
    /// No holder is recorded: the lock has no owner backend ([`Unowned`](shmsync_core::Unowned)).
    Anonymous,
}

/// A number read from a segment.
///
/// # Example
///
/// ```
/// use shmsync::inspect::ScalarValue;
///
/// assert_eq!(ScalarValue::from(-3i8), ScalarValue::Signed(-3));
/// assert_eq!(ScalarValue::F64(2.0).to_string(), "2.0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ScalarValue {
    /// An unsigned integer.
    Unsigned(u128),
    /// A signed integer.
    Signed(i128),
    /// An `f32`.
    F32(f32),
    /// An `f64`.
    F64(f64),
    /// A `bool` (a `Value<bool>`: any non-zero byte is `true`).
    Bool(bool),
    /// `()`.
    Unit,
}

/// Why a part's bytes could not be read.
///
/// # Example
///
/// ```
/// use shmsync::inspect::Unreadable;
///
/// let why = Unreadable::PastFileEnd;
/// assert!(why.to_string().starts_with("past the end of the file"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreadable {
    /// The part lies outside the value, as its header sizes it: the description does
    /// not fit the header.
    OutsideValue,
    /// The file ends before the part: another program cut it short.
    PastFileEnd,
    /// Reading failed.
    Io(String),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::OutsideValue => f.write_str("outside the value its header sizes"),
            Unreadable::PastFileEnd => {
                f.write_str("past the end of the file (another program cut it short)")
            }
            Unreadable::Io(error) => write!(f, "{error}"),
        }
    }
}

macro_rules! scalar_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for ScalarValue {
            fn from(value: $t) -> ScalarValue {
                ScalarValue::$variant(value.into())
            }
        }
    )*};
}
scalar_from!(u8 => Unsigned, u16 => Unsigned, u32 => Unsigned, u64 => Unsigned,
             i8 => Signed, i16 => Signed, i32 => Signed, i64 => Signed,
             f32 => F32, f64 => F64, bool => Bool);

impl fmt::Display for ScalarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarValue::Unsigned(n) => write!(f, "{n}"),
            ScalarValue::Signed(n) => write!(f, "{n}"),
            ScalarValue::F32(x) => write!(f, "{x:?}"),
            ScalarValue::F64(x) => write!(f, "{x:?}"),
            ScalarValue::Bool(b) => write!(f, "{b}"),
            ScalarValue::Unit => f.write_str("()"),
        }
    }
}

/// Where a value's bytes come from: a segment's file, or memory.
pub(crate) trait ReadBytes {
    /// Fills `buf` with the value's bytes from `offset`; all of them, or an error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), Unreadable>;
}

impl ReadBytes for &[u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), Unreadable> {
        let start = usize::try_from(offset).map_err(|_| Unreadable::OutsideValue)?;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(Unreadable::OutsideValue)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// Reads the value `described` lays out from `bytes`. `verification` says whether the
/// sizes inferred for its inner structs can be trusted (an array of structs is read
/// element by element only then).
pub(crate) fn read(
    described: &TypeDescription,
    verification: &Verification,
    bytes: &dyn ReadBytes,
    options: &ReadOptions,
) -> Part {
    let walk = Walk {
        bytes,
        options,
        strides_known: *verification == Verification::Matches,
        parts_left: std::cell::Cell::new(options.max_parts),
    };
    walk.part(None, &described.root, 0)
}

struct Walk<'a> {
    bytes: &'a dyn ReadBytes,
    options: &'a ReadOptions,
    /// Whether the sizes measured for structs are their true ones.
    strides_known: bool,
    /// How many more parts may be read: arrays of arrays of structs multiply.
    parts_left: std::cell::Cell<usize>,
}

impl Walk<'_> {
    fn part(&self, name: Option<String>, node: &TypeNode, offset: u64) -> Part {
        let mut part = Part {
            name,
            offset,
            type_name: short_name(node),
            described: node.to_string(),
            state: PartState::Opaque,
            parts: Vec::new(),
        };
        let Some(left) = self.parts_left.get().checked_sub(1) else {
            part.state = PartState::NotRead(format!(
                "more than {} parts in all (see ReadOptions::max_parts)",
                self.options.max_parts
            ));
            return part;
        };
        self.parts_left.set(left);
        let state = match node {
            TypeNode::Plain(name) => match known::plain(name) {
                Some(plain) => self
                    .scalars(plain, offset, 1)
                    .map(|mut items| PartState::Scalar(items.pop().unwrap_or(ScalarValue::Unit))),
                None => Ok(PartState::NotRead(format!(
                    "{name} is no scalar this shmsync reads"
                ))),
            },
            TypeNode::Builtin { name, args } => match known::builtin(name, args) {
                Some(known) => known.read(self.bytes, offset, self.options),
                None => Ok(PartState::NotRead(
                    "a type this version of shmsync does not read".into(),
                )),
            },
            TypeNode::Opaque(_) => Ok(PartState::Opaque),
            TypeNode::Struct {
                name,
                fields,
                complete,
            } => {
                if let Some(queue) = self.queue(name, fields, offset) {
                    return Part {
                        state: queue,
                        ..part
                    };
                }
                part.parts = (fields.iter())
                    .map(|field| {
                        let at = offset.saturating_add(field.offset as u64);
                        self.part(Some(field.name.clone()), &field.node, at)
                    })
                    .collect();
                Ok(PartState::Struct {
                    complete: *complete,
                })
            }
            TypeNode::Array { item, len } => self.array(&mut part, item, *len, offset),
        };
        part.state = state.unwrap_or_else(PartState::Unreadable);
        part
    }

    /// `count` scalars from `offset`.
    fn scalars(
        &self,
        plain: known::Plain,
        offset: u64,
        count: usize,
    ) -> Result<Vec<ScalarValue>, Unreadable> {
        let mut raw = vec![0u8; plain.size * count];
        self.bytes.read_at(&mut raw, offset)?;
        if plain.size == 0 {
            return Ok(vec![ScalarValue::Unit; count]);
        }
        Ok(raw
            .chunks_exact(plain.size)
            .map(|b| plain.decode(b))
            .collect())
    }

    fn array(
        &self,
        part: &mut Part,
        item: &TypeNode,
        len: usize,
        offset: u64,
    ) -> Result<PartState, Unreadable> {
        let shown = len.min(self.options.max_items);
        if let TypeNode::Plain(name) = item {
            if let Some(plain) = known::plain(name) {
                let items = self.scalars(plain, offset, shown)?;
                let text = (name == "u8").then(|| as_text(&items)).flatten();
                return Ok(PartState::Scalars { items, len, text });
            }
        }
        // A struct's size is inferred from its fields: trusted once the fingerprint
        // agrees with it.
        let stride = match (item, measure(item)) {
            (TypeNode::Struct { .. }, _) if !self.strides_known => None,
            (_, Ok((size, _))) => Some(size as u64),
            (_, Err(_)) => None,
        };
        let Some(stride) = stride else {
            return Ok(PartState::NotRead(
                "the size of its items is not known for sure (the layout was not checked \
                 against its fingerprint)"
                    .into(),
            ));
        };
        part.parts = (0..shown as u64)
            .map(|i| {
                let at = offset.saturating_add(stride.saturating_mul(i));
                self.part(Some(format!("[{i}]")), item, at)
            })
            .collect();
        Ok(PartState::Elements { len })
    }

    /// The library's queue, whose layout is a struct of its lock, three counter words
    /// and its slots.
    fn queue(&self, name: &str, fields: &[FieldNode], offset: u64) -> Option<PartState> {
        let [lock, tail, head, done, slots] = fields else {
            return None;
        };
        let names = [&lock.name, &tail.name, &head.name, &done.name, &slots.name];
        if name != QUEUE || names != ["lock", "tail", "head", "done", "slots"] {
            return None;
        }
        let TypeNode::Array { item, len } = &slots.node else {
            return None;
        };
        let TypeNode::Builtin { name, args } = &lock.node else {
            return None;
        };
        let (Some(lock_type), Some(word)) = (known::builtin(name, args), known::plain("u32"))
        else {
            return None;
        };
        if !matches!(&**item, TypeNode::Struct { name, .. } if name == QUEUE_SLOT) {
            return None;
        }
        let read = || -> Result<PartState, Unreadable> {
            let at = |field: &FieldNode| offset.saturating_add(field.offset as u64);
            let PartState::Lock(lock) = lock_type.read(self.bytes, at(lock), self.options)? else {
                return Err(Unreadable::Io("the queue's lock is no lock".into()));
            };
            let mut words = [0u32; 3];
            for (word_value, field) in words.iter_mut().zip([tail, head, done]) {
                if let [ScalarValue::Unsigned(w)] = self.scalars(word, at(field), 1)?[..] {
                    *word_value = w as u32;
                }
            }
            let [tail, head, done] = words;
            Ok(PartState::Queue {
                state: QueueState::from_words(*len, tail, head, done),
                lock,
            })
        };
        Some(read().unwrap_or_else(PartState::Unreadable))
    }
}

impl TypeNode {
    /// The type as a program using the hosted crate writes it: `Value<u32>` for
    /// `Value<u32, Futex, Robust>`, `Semaphore` for `TrackedSemaphore<Futex, Robust>`,
    /// `Queue<u64, 16>` for the queue's layout, a struct's path without its fields.
    ///
    /// ```
    /// use shmsync::inspect::TypeDescription;
    ///
    /// let described = TypeDescription::parse("Array<u8, 64, Futex, Robust> (112 bytes, align 8)")?;
    /// assert_eq!(described.root.short_name(), "Array<u8, 64>");
    /// # Ok::<(), shmsync::inspect::ParseError>(())
    /// ```
    pub fn short_name(&self) -> String {
        short_name(self)
    }
}

/// A node's type as a program using the hosted crate writes it.
fn short_name(node: &TypeNode) -> String {
    match node {
        TypeNode::Builtin { name, args } => match known::builtin(name, args) {
            Some(known) => known.short_name,
            None => node.to_string(),
        },
        TypeNode::Struct { name, fields, .. } if name == QUEUE => {
            let slots = fields.iter().find(|field| field.name == "slots");
            let lock = fields.iter().find(|field| field.name == "lock");
            match (slots.map(|f| &f.node), lock.map(|f| short_name(&f.node))) {
                (Some(TypeNode::Array { item, len }), Some(lock)) => {
                    let item = match &**item {
                        TypeNode::Struct { fields, .. } if fields.len() == 1 => {
                            short_name(&fields[0].node)
                        }
                        other => short_name(other),
                    };
                    let backends = lock.strip_prefix("Lock").unwrap_or_default();
                    let backends = backends.trim_start_matches('<').trim_end_matches('>');
                    if backends.is_empty() {
                        format!("Queue<{item}, {len}>")
                    } else {
                        format!("Queue<{item}, {len}, {backends}>")
                    }
                }
                _ => name.clone(),
            }
        }
        TypeNode::Struct { name, .. } => name.clone(),
        TypeNode::Array { item, len } => format!("[{}; {len}]", short_name(item)),
        TypeNode::Plain(name) | TypeNode::Opaque(name) => name.clone(),
    }
}

/// One line: the part's name, its type, and what it holds.
impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "{name}: ")?;
        }
        f.write_str(&self.type_name)?;
        fmt::Display::fmt(&self.state, f)
    }
}

/// What a part holds, as it follows the part's type: ` = 17`, `: held by thread 4121`.
impl fmt::Display for PartState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartState::Struct { complete: true } | PartState::Elements { .. } => Ok(()),
            PartState::Struct { complete: false } => f.write_str(
                " (its description was cut short: the fields after the cut are not shown)",
            ),
            PartState::Lock(lock) => write!(f, ": {lock}"),
            PartState::RLock { lock, depth } => {
                write!(f, ": {lock}")?;
                if *depth > 1 && lock.state != LockState::Free {
                    write!(f, " ({depth} levels)")?;
                }
                Ok(())
            }
            PartState::Condition { waiting } => match waiting {
                0 => f.write_str(": nobody waits"),
                1 => f.write_str(": 1 waiter"),
                n => write!(f, ": {n} waiters"),
            },
            PartState::Barrier {
                parties,
                waiting,
                broken,
            } => {
                write!(f, ": {waiting} of {parties} parties waiting")?;
                if *broken {
                    f.write_str(", broken")?;
                }
                Ok(())
            }
            PartState::RwLock {
                writer,
                readers_turned_away,
                readers,
                readers_died,
                writer_died,
            } => {
                match readers {
                    0 => f.write_str(": no readers")?,
                    1 => f.write_str(": 1 reader")?,
                    n => write!(f, ": {n} readers")?,
                }
                if *readers_died > 0 {
                    write!(f, " ({readers_died} died reading, freed at the next look)")?;
                }
                write!(f, "; writer lock {writer}")?;
                if *readers_turned_away {
                    f.write_str(", readers turned away")?;
                }
                if *writer_died {
                    f.write_str("; a writer died mid-change")?;
                }
                Ok(())
            }
            PartState::Event {
                set,
                sleepers_announced,
            } => {
                f.write_str(if *set { ": set" } else { ": clear" })?;
                if *sleepers_announced {
                    f.write_str(", someone waits")?;
                }
                Ok(())
            }
            PartState::Semaphore { state, ids } => write_semaphore(f, state, *ids),
            PartState::UntrackedSemaphore {
                free,
                waiters_announced,
                bound,
            } => {
                write!(f, ": {}", permits(*free))?;
                if let Some(bound) = bound {
                    write!(f, " (bound {bound})")?;
                }
                if *waiters_announced > 0 {
                    write!(f, ", {waiters_announced} said they wait")?;
                }
                Ok(())
            }
            PartState::Value { value, lock } => {
                write!(f, " = {value}")?;
                write_lock_note(f, lock)
            }
            PartState::Array {
                items,
                len,
                text,
                lock,
            } => {
                f.write_str(" = ")?;
                write_items(f, items, *len, text.as_deref())?;
                write_lock_note(f, lock)
            }
            PartState::Queue { state, lock } => {
                write!(f, ": {} of {} items", state.len, state.capacity)?;
                if state.unfinished_tasks != state.len {
                    write!(f, ", {} unfinished tasks", state.unfinished_tasks)?;
                }
                if state.closed {
                    f.write_str(", closed")?;
                }
                let sleeping: Vec<_> = [
                    (state.getters_sleep, "getters"),
                    (state.putters_sleep, "putters"),
                    (state.joiners_sleep, "joiners"),
                ]
                .iter()
                .filter(|(sleep, _)| *sleep)
                .map(|(_, who)| *who)
                .collect();
                if !sleeping.is_empty() {
                    write!(f, "; {} wait", sleeping.join(" and "))?;
                }
                write_lock_note(f, lock)
            }
            PartState::Scalar(value) => write!(f, " = {value}"),
            PartState::Scalars { items, len, text } => {
                f.write_str(" = ")?;
                write_items(f, items, *len, text.as_deref())
            }
            PartState::Opaque => f.write_str(": opaque (it describes only its name), not read"),
            PartState::NotRead(why) => write!(f, ": not read: {why}"),
            PartState::Unreadable(why) => write!(f, ": unreadable: {why}"),
        }
    }
}

/// `held by thread 4121, someone waits`.
impl fmt::Display for LockView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holder = |id: u32| match self.ids {
            HolderIds::Threads => format!("thread {id}"),
            HolderIds::Anonymous => "an owner-less holder".into(),
        };
        match self.state {
            LockState::Free => f.write_str("free")?,
            LockState::Held { holder: id } => write!(f, "held by {}", holder(id))?,
            LockState::OwnerDied => f.write_str(
                "free, owner died: its holder died holding it (the next locker is told \
                 OwnerDied)",
            )?,
            LockState::Recovering { holder: id } => write!(
                f,
                "held by {}, recovering: its previous holder died holding it",
                holder(id)
            )?,
            LockState::NotRecoverable => f.write_str(
                "not recoverable: a holder died and the data was never marked consistent",
            )?,
            LockState::HandedOver => {
                f.write_str("free, handed over to a locker that waited (a fair turn)")?
            }
        }
        if self.sleepers_announced {
            f.write_str(", someone waits")?;
        }
        Ok(())
    }
}

/// `; its lock held by thread 4121`, for a lock that is not simply free.
fn write_lock_note(f: &mut fmt::Formatter<'_>, lock: &LockView) -> fmt::Result {
    if lock.state == LockState::Free && !lock.sleepers_announced {
        return Ok(());
    }
    write!(f, "; its lock {lock}")
}

fn permits(n: u32) -> String {
    if n == 1 {
        "1 permit free".into()
    } else {
        format!("{n} permits free")
    }
}

/// A semaphore's holder slots that hold permits (or whose lock is not free), each as
/// its lock and its permits; and its internal lock.
///
/// ```
/// use shmsync::inspect::{holdings, HolderIds, LockState};
/// use shmsync_core::{Spin, TrackedSemaphore, Unowned};
///
/// let sem: TrackedSemaphore<Spin, Unowned> = TrackedSemaphore::new(2);
/// let _permit = sem.permit();
/// let (holders, guard) = holdings(&sem.state(), HolderIds::Anonymous);
/// assert_eq!(holders.len(), 1);
/// assert_eq!(holders[0].1, 1);
/// assert_eq!(guard.state, LockState::Free);
/// ```
pub fn holdings(state: &SemaphoreState, ids: HolderIds) -> (Vec<(LockView, u32)>, LockView) {
    let view = |state| LockView {
        state,
        sleepers_announced: false,
        ids,
    };
    let holders = (state.holders.iter())
        .filter(|holding| holding.permits > 0 || holding.lock != LockState::Free)
        .map(|holding| (view(holding.lock), holding.permits))
        .collect();
    (holders, view(state.guard))
}

fn write_semaphore(
    f: &mut fmt::Formatter<'_>,
    state: &SemaphoreState,
    ids: HolderIds,
) -> fmt::Result {
    write!(f, ": {} of {}", permits(state.free), state.total)?;
    if let Some(bound) = state.bound {
        write!(f, " (bound {bound})")?;
    }
    let (holders, guard) = holdings(state, ids);
    let holders: Vec<String> = (holders.iter())
        .map(|(lock, permits)| {
            let who = match lock.state {
                LockState::Held { holder } | LockState::Recovering { holder } => match ids {
                    HolderIds::Threads => format!("thread {holder}"),
                    HolderIds::Anonymous => "a holder".into(),
                },
                LockState::OwnerDied | LockState::NotRecoverable => {
                    "a holder that died (its permits come back at the next call)".into()
                }
                LockState::Free | LockState::HandedOver => "a holder".into(),
            };
            format!("{who} ×{permits}")
        })
        .collect();
    if !holders.is_empty() {
        write!(f, "; held by {}", holders.join(", "))?;
    }
    if state.untracked > 0 {
        write!(f, "; {} held untracked", state.untracked)?;
    }
    if guard.state != LockState::Free {
        write!(f, "; its internal lock {guard}")?;
    }
    if state.sleepers_announced {
        f.write_str(", someone waits")?;
    }
    Ok(())
}

/// `"text"` for text; else `[1, 2, 3, … 61 more]`.
fn write_items(
    f: &mut fmt::Formatter<'_>,
    items: &[ScalarValue],
    len: usize,
    text: Option<&str>,
) -> fmt::Result {
    if let Some(text) = text {
        write!(f, "{text:?}")?;
        // No zero among the bytes read: the text may go on.
        if len > items.len() && text.len() == items.len() {
            write!(f, " (the first {} of {len} bytes)", items.len())?;
        }
        return Ok(());
    }
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    if len > items.len() {
        if !items.is_empty() {
            f.write_str(", ")?;
        }
        write!(f, "… {} more", len - items.len())?;
    }
    f.write_str("]")
}

/// Bytes read as text: UTF-8 up to the first zero byte (all zeros after it), without
/// control characters other than whitespace, and not whitespace alone; `None` if they
/// are not text.
pub(crate) fn as_text(items: &[ScalarValue]) -> Option<String> {
    let mut bytes = Vec::with_capacity(items.len());
    for item in items {
        match item {
            ScalarValue::Unsigned(byte) if *byte <= 0xFF => bytes.push(*byte as u8),
            _ => return None,
        }
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    if bytes[end..].iter().any(|&b| b != 0) {
        return None;
    }
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let control = |c: char| c.is_control() && !c.is_ascii_whitespace();
    // Text shows something: whitespace alone is rather numbers (nine is a tab).
    let shows = text.is_empty() || text.chars().any(|c| !c.is_whitespace());
    if text.chars().any(control) || !shows {
        return None;
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::inspect::{ReadOptions, Segment, Verification};
    use crate::{shm_struct, Array, BoundedSemaphore, Shared, Value};
    use shmsync_core::{Spin, Unowned};

    shm_struct! {
        struct Widths {
            shorts: Array<u16, 3>,
            doubles: Array<f64, 2>,
            tiny: Value<i8>,
            flag: Value<bool>,
            pair: [Value<i32>; 2],
            many: Array<u16, 100>,
            untracked: shmsync_core::Semaphore<crate::Futex>,
            bounded: BoundedSemaphore,
            spin: shmsync_core::Lock<Spin, Unowned>,
            binary: Array<u8, 4>,
        }
    }

    fn name(what: &str) -> String {
        format!("shmsync-unit-{what}-{}", std::process::id())
    }

    /// Every scalar width and each kind of part reads back as it was written, at the
    /// offsets this build computes for the library's types.
    #[test]
    fn every_width_reads_back_as_written() {
        let name = name("widths");
        let widths = Shared::<Widths>::create_with(&name, |w| {
            w.shorts.write(0, &[1, 65535, 3]).unwrap();
            w.doubles.write(0, &[0.5, -2.0]).unwrap();
            w.tiny.set(-5);
            w.flag.set(true);
            w.pair[0].set(-1);
            w.pair[1].set(7);
            w.many.write(0, &[9; 100]).unwrap();
            w.untracked = shmsync_core::Semaphore::new(4);
            w.bounded = BoundedSemaphore::new(2);
            w.binary.write(0, &[1, 2, 0, 3]).unwrap();
        })
        .unwrap();
        let held = widths.spin.lock().unwrap();
        let permit = widths.bounded.permit();
        let options = ReadOptions::default().with_max_items(4);
        let value = Segment::look(&name).unwrap().read_value(&options).unwrap();
        assert_eq!(value.verification, Verification::Matches);
        let lines: Vec<String> = value.root.parts.iter().map(|p| p.to_string()).collect();
        let me = nix::unistd::gettid();
        assert_eq!(
            lines,
            [
                "shorts: Array<u16, 3> = [1, 65535, 3]".to_owned(),
                "doubles: Array<f64, 2> = [0.5, -2.0]".into(),
                "tiny: Value<i8> = -5".into(),
                "flag: Value<bool> = true".into(),
                "pair: [Value<i32>; 2]".into(),
                "many: Array<u16, 100> = [9, 9, 9, 9, … 96 more]".into(),
                "untracked: Semaphore<Futex>: 4 permits free".into(),
                format!("bounded: BoundedSemaphore: 1 permit free of 2 (bound 2); held by thread {me} ×1"),
                "spin: Lock<Spin, Unowned>: held by an owner-less holder".into(),
                "binary: Array<u8, 4> = [1, 2, 0, 3]".into(),
            ]
        );
        drop((held, permit));
    }

    shm_struct! {
        struct Later { r: crate::RLock, b: crate::Barrier, c: crate::Condition, w: crate::RwLock }
    }

    #[test]
    fn rlocks_barriers_conditions_and_rwlocks_read_as_their_state() {
        let name = name("later");
        let later = Shared::<Later>::create_with(&name, |later| {
            later.b = crate::Barrier::new(3);
        })
        .unwrap();
        let outer = later.r.lock().unwrap();
        let inner = later.r.lock().unwrap();
        let reading = later.w.read().unwrap();
        let value = Segment::look(&name)
            .unwrap()
            .read_value(&ReadOptions::default())
            .unwrap();
        assert_eq!(value.verification, Verification::Matches);
        let lines: Vec<String> = value.root.parts.iter().map(|p| p.to_string()).collect();
        let me = nix::unistd::gettid();
        assert_eq!(
            lines,
            [
                format!("r: RLock: held by thread {me} (2 levels)"),
                "b: Barrier: 0 of 3 parties waiting".into(),
                "c: Condition: nobody waits".into(),
                "w: RwLock: 1 reader; writer lock free".into(),
            ]
        );
        drop((inner, outer, reading));
    }
}

#[cfg(test)]
mod bounds {
    use super::*;
    use crate::inspect::{verify, ReadOptions};

    /// A description names far more parts than any screen holds: the walk stops at
    /// its budget, whatever the nesting.
    #[test]
    fn arrays_of_arrays_of_structs_are_read_within_a_budget() {
        let text = "t::S (64 bytes, align 1) { deep: [[[[[[t::I { a: u8@0 }; 64]; 64]; 64]; 64]; 64]; 64]@0 }";
        let described = TypeDescription::parse(text).unwrap();
        let bytes: &[u8] = &[0; 64];
        let options = ReadOptions::default();
        // As if the layout were checked, so that every level is walked.
        let part = read(&described, &Verification::Matches, &bytes, &options);
        fn count(part: &Part) -> usize {
            1 + part.parts.iter().map(count).sum::<usize>()
        }
        assert!(
            count(&part) <= options.max_parts + 64 * 6,
            "{}",
            count(&part)
        );
        assert!(matches!(verify(&described, 0), Verification::Differs));
    }
}
