//! What a type in shared memory looks like, told to a program that did not compile it:
//! see [`Layout`].

use core::fmt;

/// What a type in shared memory looks like, told to a program that did not compile it.
///
/// Every [`ShmSafe`](crate::ShmSafe) type has one, built at compile time
/// ([`ShmSafe::LAYOUT`](crate::ShmSafe::LAYOUT)): a
/// tree of kinds (plain numbers, arrays, structs and their fields, this crate's types
/// with their parameters), names, offsets, sizes and alignments. From it come
///
/// - a 64-bit [`fingerprint`](Layout::fingerprint), which a segment's header records
///   and an opener compares with its own;
/// - a readable [description](Layout::describe) of bounded length, recorded beside it,
///   such as `app::Stats (104 bytes, align 8) { lock: Lock<Futex, Robust>@0, count:
///   Value<u64, Futex, Robust>@40, ids: [u32; 4]@88 }`;
/// - the [first difference](Layout::first_difference) between a layout and another
///   program's description, so that a refusal can name the field at fault.
///
/// # What makes two layouts the same
///
/// The fingerprint covers what the bytes mean: the kind of every part; field names, in
/// order, with their offsets; the size and alignment of every part; the scalar, the
/// length and the backends of this crate's types (`Lock<Futex, Robust>`, with its
/// robust-list record, is another layout than `Lock<Spin, Unowned>`, which a futex
/// waiter would never be woken through); and the name of an [opaque](Layout::opaque)
/// type, which says nothing else about itself.
///
/// It leaves out the name and module path of a struct, which the description still
/// shows. Two programs that each declare `struct Stats { count: Value<u64> }`, each in
/// its own crate or module, share a segment; so does a struct that was renamed or
/// moved. What the bytes mean is fixed by the fields — their names, kinds and places —
/// not by what a program calls the whole, and requiring equal paths would refuse the
/// usual case of two programs that each declare the shared struct, without catching a
/// mistake the fields do not: a `a::Rec { x: u32, flag: u8 }` and a
/// `b::Rec { x: u32, flag: Value<bool> }` differ at `flag` whatever their names.
///
/// Field names do count: `ready` and `done` may sit at the same offset with the same
/// kind and mean opposite things, so a renamed field is refused (the fail-safe side).
///
/// Types that implement `ShmSafe` by hand build theirs with
/// [`structure`](Self::structure) or [`opaque`](Self::opaque);
/// [`shm_struct!`](crate::shm_struct) calls `structure`.
///
/// # Example
///
/// ```
/// use shmsync_core::{Lock, ShmSafe, Spin, Unowned};
///
/// let lock = <Lock<Spin, Unowned> as ShmSafe>::LAYOUT;
/// assert_eq!((lock.size(), lock.align()), (8, 4));
/// assert_eq!(lock.description().as_str(), "Lock<Spin, Unowned> (8 bytes, align 4)");
///
/// // Two types of the same name, with other fields:
/// mod a {
///     shmsync_core::shm_struct! {
///         pub struct Rec { pub x: u32, pub flag: u8 }
///     }
/// }
/// mod b {
///     use shmsync_core::{Spin, Unowned, Value};
///     shmsync_core::shm_struct! {
///         pub struct Rec { pub x: u32, pub flag: Value<bool, Spin, Unowned> }
///     }
/// }
///
/// let theirs = a::Rec::LAYOUT.description();
/// assert!(theirs.as_str().ends_with("::a::Rec (8 bytes, align 4) { x: u32@0, flag: u8@4 }"));
/// assert_ne!(a::Rec::LAYOUT.fingerprint(), b::Rec::LAYOUT.fingerprint());
/// let difference = b::Rec::LAYOUT.first_difference(theirs.as_str()).unwrap();
/// assert_eq!(difference.to_string(), "at field `flag`");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    size: usize,
    align: usize,
    shape: Shape,
    /// Whether every byte is changed and read only through atomics (see
    /// [`has_plain_data`](Layout::has_plain_data)). Not hashed: it follows from the
    /// shape, but for what a hand-written type [declares](Layout::accessed_atomically).
    atomic_only: bool,
}

/// What kind of type a [`Layout`] describes.
///
/// # Example
///
/// ```
/// use shmsync_core::{Shape, ShmSafe};
///
/// match <[u16; 3] as ShmSafe>::LAYOUT.shape() {
///     Shape::Array { item, len } => assert_eq!((item.size(), len), (2, 3)),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Shape {
    /// An integer, a float or `()`, by its Rust name (`u32`, `f64`).
    Plain {
        /// The type's name.
        name: &'static str,
    },
    /// `[item; len]`.
    Array {
        /// The items' layout.
        item: &'static Layout,
        /// How many items.
        len: usize,
    },
    /// A `#[repr(C)]` struct. Its name is shown, not compared.
    Struct {
        /// The struct's path, `crate::module::Name`.
        name: &'static str,
        /// Its fields, in declaration order.
        fields: &'static [Field],
    },
    /// A type of this crate (`Lock`, `Value`, …) with its parameters.
    Builtin {
        /// The type's name in this crate, without parameters: `Value`.
        name: &'static str,
        /// Its parameters: `[u64, Futex, Robust]`.
        args: &'static [Arg],
    },
    /// A type that says nothing of its fields: compared by name, size and alignment.
    Opaque {
        /// The name it gave, unique to it.
        name: &'static str,
    },
}

/// A parameter of one of this crate's types in a [`Shape::Builtin`].
///
/// # Example
///
/// ```
/// use shmsync_core::{Arg, Array, Shape, ShmSafe, Spin, Unowned};
///
/// let Shape::Builtin { args, .. } = <Array<u8, 16, Spin, Unowned> as ShmSafe>::LAYOUT.shape() else {
///     unreachable!()
/// };
/// assert!(matches!(args, [Arg::Name("u8"), Arg::Len(16), Arg::Name("Spin"), Arg::Name("Unowned")]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A scalar or a backend, by name.
    Name(&'static str),
    /// A length.
    Len(usize),
}

/// A field of a [`Shape::Struct`].
///
/// # Example
///
/// ```
/// use core::mem::offset_of;
/// use shmsync_core::{Field, Layout, ShmSafe};
///
/// #[repr(C)]
/// struct Pair { a: u32, b: u32 }
/// // SAFETY: `#[repr(C)]` plain integers, valid for every byte; its layout says so.
/// unsafe impl ShmSafe for Pair {
///     const LAYOUT: Layout = Layout::structure::<Self>("doc::Pair", &[
///         Field::new("a", offset_of!(Pair, a), &<u32 as ShmSafe>::LAYOUT),
///         Field::new("b", offset_of!(Pair, b), &<u32 as ShmSafe>::LAYOUT),
///     ]);
/// }
/// assert_eq!(
///     Pair::LAYOUT.description().as_str(),
///     "doc::Pair (8 bytes, align 4) { a: u32@0, b: u32@4 }"
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The field's name.
    pub name: &'static str,
    /// Its offset from the start of the struct, in bytes.
    pub offset: usize,
    /// Its type's layout.
    pub layout: &'static Layout,
}

impl Field {
    /// The field `name` at `offset`, of the type laid out by `layout` (write
    /// `&<T as ShmSafe>::LAYOUT`; in a constant, it lives for `'static`).
    pub const fn new(name: &'static str, offset: usize, layout: &'static Layout) -> Field {
        assert!(
            is_name(name.as_bytes(), b"_#"),
            "a field name is letters, digits, '_' (and '#' of a raw identifier)"
        );
        Field {
            name,
            offset,
            layout,
        }
    }
}

/// Whether `name` is non-empty and made only of letters, digits (any script) and the
/// `extra` ASCII bytes: what lets a comparison find where a name ends.
const fn is_name(name: &[u8], extra: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        if !is_name_byte(name[i], extra) {
            return false;
        }
        i += 1;
    }
    true
}

const fn is_name_byte(byte: u8, extra: &[u8]) -> bool {
    if byte.is_ascii_alphanumeric() || !byte.is_ascii() {
        return true;
    }
    let mut i = 0;
    while i < extra.len() {
        if byte == extra[i] {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether `name` is non-empty text without control characters (NUL included).
const fn is_printable(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_control() {
            return false;
        }
        i += 1;
    }
    !bytes.is_empty()
}

/// The bytes a struct's path may hold besides letters and digits.
const PATH_BYTES: &[u8] = b"_:";

impl Layout {
    /// An integer, a float or `()`.
    pub(crate) const fn plain<T>(name: &'static str) -> Layout {
        Layout::of::<T>(Shape::Plain { name })
    }

    /// `T`, an array of `len` items laid out by `item`.
    pub(crate) const fn array<T>(item: &'static Layout, len: usize) -> Layout {
        Layout::of::<T>(Shape::Array { item, len })
    }

    /// `T`, the crate's type `name` with parameters `args`.
    pub(crate) const fn builtin<T>(name: &'static str, args: &'static [Arg]) -> Layout {
        let mut i = 0;
        while i < args.len() {
            if let Arg::Name(name) = args[i] {
                assert!(
                    is_printable(name),
                    "a backend's or scalar's name is printable text"
                );
            }
            i += 1;
        }
        Layout::of::<T>(Shape::Builtin { name, args })
    }

    /// The `#[repr(C)]` struct `T`, whose path is `name` (`crate::module::Name`: shown,
    /// not compared) and whose fields are `fields`, in declaration order.
    ///
    /// Fails to compile if a field does not fit in `T`, if the fields are not in the
    /// order of their offsets, or if a name is not a path or an identifier:
    ///
    /// ```compile_fail,E0080
    /// use shmsync_core::{Field, Layout, ShmSafe};
    ///
    /// #[repr(C)]
    /// struct Pair { a: u32, b: u32 }
    /// // SAFETY: `#[repr(C)]` plain integers, valid for every byte; its layout says so.
    /// unsafe impl ShmSafe for Pair {
    ///     const LAYOUT: Layout = Layout::structure::<Self>("doc::Pair", &[
    ///         Field::new("b", 4, &<u32 as ShmSafe>::LAYOUT),
    ///         Field::new("a", 0, &<u32 as ShmSafe>::LAYOUT), // out of order
    ///     ]);
    /// }
    /// let _ = Pair::LAYOUT.fingerprint();
    /// ```
    pub const fn structure<T>(name: &'static str, fields: &'static [Field]) -> Layout {
        assert!(
            is_name(name.as_bytes(), PATH_BYTES),
            "a struct's name is its path: letters, digits, '_' and '::'"
        );
        let size = core::mem::size_of::<T>();
        let mut end = 0;
        let mut i = 0;
        while i < fields.len() {
            let field = &fields[i];
            assert!(
                field.offset >= end && field.offset + field.layout.size <= size,
                "fields are listed in the order of their offsets and lie within the struct"
            );
            end = field.offset + field.layout.size;
            i += 1;
        }
        Layout::of::<T>(Shape::Struct { name, fields })
    }

    /// A type `T` that does not describe its fields, named `name`: it matches only a
    /// layout of the same name, size and alignment.
    ///
    /// The name must tell `T` apart from every other type the programs may share: give
    /// its path and its parameters (`app::Ring<u64, 16>`). Where programs declare the
    /// type in different modules, describe its fields with
    /// [`structure`](Self::structure) instead.
    ///
    /// # Example
    ///
    /// ```
    /// use shmsync_core::{Layout, ShmSafe};
    ///
    /// #[repr(C)]
    /// struct Samples([u16; 64]);
    /// // SAFETY: `#[repr(C)]` plain integers, valid for every byte; its layout says so.
    /// unsafe impl ShmSafe for Samples {
    ///     const LAYOUT: Layout = Layout::opaque::<Self>("sensor::Samples");
    /// }
    /// assert_eq!(Samples::LAYOUT.description().as_str(), "sensor::Samples (128 bytes, align 2)");
    /// ```
    pub const fn opaque<T>(name: &'static str) -> Layout {
        assert!(
            is_printable(name),
            "an opaque type's name is printable text"
        );
        Layout::of::<T>(Shape::Opaque { name })
    }

    const fn of<T>(shape: Shape) -> Layout {
        let size = core::mem::size_of::<T>();
        // A type without bytes has none that could race.
        let atomic_only = size == 0
            || match shape {
                Shape::Plain { .. } | Shape::Opaque { .. } => false,
                Shape::Array { item, .. } => item.atomic_only,
                Shape::Struct { fields, .. } => {
                    let mut i = 0;
                    while i < fields.len() && fields[i].layout.atomic_only {
                        i += 1;
                    }
                    i == fields.len()
                }
                Shape::Builtin { .. } => true,
            };
        Layout {
            size,
            align: core::mem::align_of::<T>(),
            shape,
            atomic_only,
        }
    }

    /// Whether the type holds plain data: bytes read and written without atomics (an
    /// integer or a float, an array of them, a field of one, or an
    /// [opaque](Self::opaque) type that did not declare itself
    /// [atomic](Self::accessed_atomically)).
    ///
    /// Such bytes may be shared within one process (a `static` the program writes
    /// only before it shares it), but not with another process, which may write them
    /// while this one reads them: a data race, undefined behaviour, whatever the
    /// reader does. The hosted crate refuses at compile time to place a type with
    /// plain data in shared memory; share a number as a `Value<T>`, an array as an
    /// `Array<T, N>`.
    ///
    /// ```
    /// use shmsync_core::{Array, ShmSafe, Spin, Unowned, Value};
    ///
    /// assert!(<u64 as ShmSafe>::LAYOUT.has_plain_data());
    /// assert!(<[u8; 4] as ShmSafe>::LAYOUT.has_plain_data());
    /// assert!(!<Value<u64, Spin, Unowned> as ShmSafe>::LAYOUT.has_plain_data());
    /// assert!(!<Array<u8, 4, Spin, Unowned> as ShmSafe>::LAYOUT.has_plain_data());
    ///
    /// shmsync_core::shm_struct! {
    ///     struct Status { ready: u32, count: Value<u32, Spin, Unowned> }
    /// }
    /// assert!(Status::LAYOUT.has_plain_data()); // `ready`
    /// ```
    pub const fn has_plain_data(&self) -> bool {
        !self.atomic_only
    }

    /// This layout, declared to have no [plain data](Self::has_plain_data): every byte
    /// of the type is read and written only through atomics, although its layout
    /// describes it otherwise (an [opaque](Self::opaque) type of atomics, or fields
    /// described as the integers an atomic holds). Part of the [`ShmSafe`](crate::ShmSafe)
    /// promise of the `unsafe impl` that builds it; the fingerprint and description do
    /// not change.
    ///
    /// ```
    /// use core::sync::atomic::AtomicU32;
    /// use shmsync_core::{Layout, ShmSafe};
    ///
    /// #[repr(C)]
    /// struct Counters([AtomicU32; 4]);
    /// // SAFETY: `#[repr(C)]` atomics only, valid for every byte.
    /// unsafe impl ShmSafe for Counters {
    ///     const LAYOUT: Layout = Layout::opaque::<Self>("app::Counters").accessed_atomically();
    /// }
    /// assert!(!Counters::LAYOUT.has_plain_data());
    /// ```
    pub const fn accessed_atomically(self) -> Layout {
        Layout {
            atomic_only: true,
            ..self
        }
    }

    /// The type's size in bytes.
    pub const fn size(&self) -> usize {
        self.size
    }

    /// The type's alignment in bytes.
    pub const fn align(&self) -> usize {
        self.align
    }

    /// What kind of type it is.
    pub const fn shape(&self) -> Shape {
        self.shape
    }

    /// A 64-bit hash of everything that counts (see [above](Self)). Equal layouts
    /// have equal fingerprints in every build, on every target where their sizes and
    /// offsets agree; a change to what it covers or how changes the segment format
    /// version.
    pub const fn fingerprint(&self) -> u64 {
        let mut sink = Sink::new(&mut [], None);
        sink.layout(self);
        sink.hash
    }

    /// Writes the readable description into `out`, cut short with `…` if it does not
    /// fit, and returns how many bytes it took (valid UTF-8, no NUL).
    pub const fn describe(&self, out: &mut [u8]) -> usize {
        let mut sink = Sink::new(out, None);
        sink.layout(self);
        sink.written
    }

    /// The readable description, in a [`Description`] (at most
    /// [`Description::CAPACITY`] bytes).
    pub const fn description(&self) -> Description {
        let mut bytes = [0; Description::CAPACITY];
        let len = self.describe(&mut bytes);
        Description { bytes, len }
    }

    /// Where `described`, another layout's [description](Self::describe), first differs
    /// from this layout; `None` if the two descriptions agree.
    ///
    /// Struct names are passed over, as the fingerprint passes them over. A difference
    /// in a field wins over one in the overall size that it causes. Equal
    /// descriptions with different fingerprints differ in the size or alignment of a
    /// part that descriptions do not show (a build for another target, or another
    /// version of this crate).
    pub const fn first_difference(&self, described: &str) -> Option<Difference> {
        let mut sink = Sink::new(&mut [], Some(described.as_bytes()));
        sink.layout(self);
        sink.finish_comparing()
    }
}

/// A layout's readable description, of at most [`CAPACITY`](Self::CAPACITY) bytes.
///
/// # Example
///
/// ```
/// use shmsync_core::{ShmSafe, Spin, Unowned, Value};
///
/// let text = <[Value<u64, Spin, Unowned>; 2] as ShmSafe>::LAYOUT.description();
/// assert_eq!(text.to_string(), "[Value<u64, Spin, Unowned>; 2] (32 bytes, align 8)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Description {
    bytes: [u8; Description::CAPACITY],
    len: usize,
}

impl Description {
    /// The longest description kept: a longer one ends in `…`.
    pub const CAPACITY: usize = 512;

    /// The description.
    pub fn as_str(&self) -> &str {
        // The writer cuts only between characters: this never fails.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// Whether it was cut short.
    pub fn is_cut(&self) -> bool {
        self.as_str().ends_with(CUT)
    }
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Where two layouts' descriptions first part, from [`Layout::first_difference`].
///
/// # Example
///
/// ```
/// use shmsync_core::{Difference, ShmSafe};
///
/// let ours = <u64 as ShmSafe>::LAYOUT;
/// let theirs = <u32 as ShmSafe>::LAYOUT.description();
/// assert_eq!(ours.first_difference(theirs.as_str()), Some(Difference::Type));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// In this field (its name, kind, offset or something inside it).
    Field(FieldPath),
    /// In the field list after this field: one type has more fields than the other, or
    /// another field follows.
    After(FieldPath),
    /// Outside every field: the kind of type, its size or its alignment.
    Type,
    /// Beyond the part of the other description that was recorded (it was cut short).
    Unrecorded,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Field(path) => write!(f, "at field `{path}`"),
            Difference::After(path) => write!(f, "in the fields after `{path}`"),
            Difference::Type => f.write_str("in the type itself, outside any field"),
            Difference::Unrecorded => {
                f.write_str("beyond the part of the description that was recorded")
            }
        }
    }
}

/// The most nested fields a [`FieldPath`] names; deeper ones show as `…`.
const PATH_DEPTH: usize = 8;

/// A field inside nested structs, outermost first: `stats.ids`.
///
/// # Example
///
/// ```
/// use shmsync_core::{Difference, ShmSafe};
///
/// mod v1 { shmsync_core::shm_struct! { pub struct Inner { pub a: u32 } } }
/// mod v2 { shmsync_core::shm_struct! { pub struct Inner { pub a: i32 } } }
/// shmsync_core::shm_struct! { struct Old { pad: u64, inner: v1::Inner } }
/// shmsync_core::shm_struct! { struct New { pad: u64, inner: v2::Inner } }
///
/// let theirs = Old::LAYOUT.description();
/// match New::LAYOUT.first_difference(theirs.as_str()) {
///     Some(Difference::Field(path)) => assert_eq!(path.to_string(), "inner.a"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Copy)]
pub struct FieldPath {
    /// The field of the outermost struct.
    top: Option<&'static Field>,
    /// Which field at each level below it, outermost first (the first `PATH_DEPTH - 1`).
    below: [u16; PATH_DEPTH - 1],
    depth: u16,
}

impl FieldPath {
    const TOP: FieldPath = FieldPath {
        top: None,
        below: [0; PATH_DEPTH - 1],
        depth: 0,
    };

    /// The field names, outermost first (at most 8; [`depth`](Self::depth) tells how
    /// many there are).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let below = &self.below[..self.depth().clamp(1, PATH_DEPTH) - 1];
        let mut fields = self.top.map_or(&[][..], fields_inside);
        self.top
            .map(|top| top.name)
            .into_iter()
            .chain(below.iter().map(move |&index| {
                let field = &fields[usize::from(index)];
                fields = fields_inside(field);
                field.name
            }))
    }

    /// How deep the field is: 1 for a field of the outermost struct.
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// Into field `index` of `fields`, the struct the walk is in.
    const fn enter(&mut self, fields: &'static [Field], index: usize) {
        let depth = self.depth as usize;
        if depth == 0 {
            self.top = Some(&fields[index]);
        } else if depth < PATH_DEPTH {
            // A struct of more than 65535 fields shows a wrong name, never a panic.
            self.below[depth - 1] = index as u16;
        }
        self.depth = self.depth.saturating_add(1);
    }

    const fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// The fields of the struct `field` is, or is an array of (of arrays of…).
fn fields_inside(field: &'static Field) -> &'static [Field] {
    let mut layout = field.layout;
    loop {
        match layout.shape {
            Shape::Array { item, .. } => layout = item,
            Shape::Struct { fields, .. } => return fields,
            _ => return &[],
        }
    }
}

impl PartialEq for FieldPath {
    fn eq(&self, other: &Self) -> bool {
        self.depth == other.depth && self.names().eq(other.names())
    }
}

impl Eq for FieldPath {}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(name)?;
        }
        if self.depth() > PATH_DEPTH {
            f.write_str(".…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({self})")
    }
}

/// The end of a description that was cut short.
const CUT: &str = "…";

/// One walk over a layout, the same for the three uses, so that they cannot disagree:
/// it hashes what counts (the fingerprint), writes the text (the description), and
/// compares the text with another description, all at once.
struct Sink<'a> {
    /// FNV-1a over what counts.
    hash: u64,
    /// Where the description goes (empty: nowhere), and how much of it is written.
    out: &'a mut [u8],
    written: usize,
    cut: bool,
    /// Whether the walk compares with another description, which one, and how far
    /// it matches.
    comparing: bool,
    theirs: &'a [u8],
    matched: usize,
    difference: Option<Difference>,
    size_differs: bool,
    /// Where the walk is: the field being described, and the field of the same struct
    /// finished last, while the walk is between that struct's fields.
    path: FieldPath,
    finished: Option<FieldPath>,
}

/// How a piece of text takes part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Hashed, written and compared.
    Counted,
    /// Written only; a comparison passes over the other side's name here.
    StructName,
    /// Hashed and written; a comparison notes a difference here but goes on, for a
    /// field difference that explains it.
    Size,
}

/// The kinds of node, hashed so that no two shapes can hash alike.
const PLAIN: u64 = 1;
const ARRAY: u64 = 2;
const STRUCT: u64 = 3;
const BUILTIN: u64 = 4;
const OPAQUE: u64 = 5;

impl<'a> Sink<'a> {
    const fn new(out: &'a mut [u8], theirs: Option<&'a [u8]>) -> Sink<'a> {
        Sink {
            hash: 0xcbf2_9ce4_8422_2325,
            out,
            written: 0,
            cut: false,
            comparing: theirs.is_some(),
            theirs: match theirs {
                Some(theirs) => theirs,
                None => &[],
            },
            matched: 0,
            difference: None,
            size_differs: false,
            path: FieldPath::TOP,
            finished: None,
        }
    }

    const fn layout(&mut self, layout: &Layout) {
        self.node(layout, true);
    }

    const fn node(&mut self, layout: &Layout, outermost: bool) {
        self.hidden(layout.size as u64);
        self.hidden(layout.align as u64);
        match layout.shape {
            Shape::Plain { name } => {
                self.hidden(PLAIN);
                self.text(name, Part::Counted);
            }
            Shape::Array { item, len } => {
                self.hidden(ARRAY);
                self.text("[", Part::Counted);
                self.node(item, false);
                self.text("; ", Part::Counted);
                self.number(len, Part::Counted);
                self.text("]", Part::Counted);
            }
            Shape::Builtin { name, args } => {
                self.hidden(BUILTIN);
                self.text(name, Part::Counted);
                self.text("<", Part::Counted);
                let mut i = 0;
                while i < args.len() {
                    if i > 0 {
                        self.text(", ", Part::Counted);
                    }
                    match args[i] {
                        Arg::Name(name) => self.text(name, Part::Counted),
                        Arg::Len(len) => self.number(len, Part::Counted),
                    }
                    i += 1;
                }
                self.text(">", Part::Counted);
            }
            Shape::Opaque { name } => {
                self.hidden(OPAQUE);
                self.text(name, Part::Counted);
            }
            Shape::Struct { name, fields } => {
                self.hidden(STRUCT);
                self.text(name, Part::StructName);
                if outermost {
                    self.size(layout);
                }
                self.fields(fields);
                return;
            }
        }
        if outermost {
            self.size(layout);
        }
    }

    /// ` { a: u32@0, b: u8@4 }`, or ` {}`.
    const fn fields(&mut self, fields: &'static [Field]) {
        if fields.is_empty() {
            self.text(" {}", Part::Counted);
            return;
        }
        self.text(" { ", Part::Counted);
        let mut i = 0;
        while i < fields.len() {
            if i > 0 {
                self.text(", ", Part::Counted);
            }
            let field = &fields[i];
            self.path.enter(fields, i);
            self.finished = None;
            self.text(field.name, Part::Counted);
            self.text(": ", Part::Counted);
            self.node(field.layout, false);
            self.text("@", Part::Counted);
            self.number(field.offset, Part::Counted);
            self.finished = Some(self.path);
            self.path.leave();
            i += 1;
        }
        self.text(" }", Part::Counted);
        // Past the struct, a difference is in whatever holds it.
        self.finished = None;
    }

    /// ` (8 bytes, align 4)`, after the outermost type's name.
    const fn size(&mut self, layout: &Layout) {
        self.text(" (", Part::Size);
        self.number(layout.size, Part::Size);
        self.text(" bytes, align ", Part::Size);
        self.number(layout.align, Part::Size);
        self.text(")", Part::Size);
        // Their clause differs, and may be longer or shorter: go on after its end.
        if self.size_differs && self.difference.is_none() {
            while self.matched < self.theirs.len()
                && !is_cut_mark(self.theirs.split_at(self.matched).1)
            {
                self.matched += 1;
                if self.theirs[self.matched - 1] == b')' {
                    break;
                }
            }
        }
    }

    const fn number(&mut self, n: usize, part: Part) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut n = n as u64;
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let (_, used) = digits.split_at(start);
        self.bytes(used, part);
    }

    const fn text(&mut self, text: &str, part: Part) {
        self.bytes(text.as_bytes(), part);
    }

    /// Counts `n` without showing it.
    const fn hidden(&mut self, n: u64) {
        let bytes = n.to_le_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self.hash_byte(bytes[i]);
            i += 1;
        }
    }

    const fn hash_byte(&mut self, byte: u8) {
        self.hash = (self.hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }

    const fn bytes(&mut self, bytes: &[u8], part: Part) {
        if !matches!(part, Part::StructName) {
            let mut i = 0;
            while i < bytes.len() {
                self.hash_byte(bytes[i]);
                i += 1;
            }
        }
        if !self.out.is_empty() {
            self.write(bytes);
        }
        if self.comparing && self.difference.is_none() {
            self.compare(bytes, part);
        }
    }

    /// Appends to the description; past the end, cuts it between characters and
    /// ends it with `…`.
    const fn write(&mut self, bytes: &[u8]) {
        if self.cut {
            return;
        }
        if self.written + bytes.len() <= self.out.len() {
            let mut i = 0;
            while i < bytes.len() {
                self.out[self.written] = bytes[i];
                self.written += 1;
                i += 1;
            }
            return;
        }
        self.cut = true;
        // Fill what fits, then step back over whole characters to make room for the mark.
        let mut i = 0;
        while self.written < self.out.len() {
            self.out[self.written] = bytes[i];
            self.written += 1;
            i += 1;
        }
        let mark = CUT.as_bytes();
        if self.out.len() < mark.len() {
            self.written = 0;
            return;
        }
        let mut keep = self.out.len() - mark.len();
        while keep > 0 && self.out[keep] & 0xC0 == 0x80 {
            keep -= 1;
        }
        let mut i = 0;
        while i < mark.len() {
            self.out[keep + i] = mark[i];
            i += 1;
        }
        self.written = keep + mark.len();
    }

    const fn compare(&mut self, bytes: &[u8], part: Part) {
        if matches!(part, Part::StructName) {
            // Their name, whatever it is, up to the end of the text they recorded.
            while self.matched < self.theirs.len()
                && is_name_byte(self.theirs[self.matched], PATH_BYTES)
                && !is_cut_mark(self.theirs.split_at(self.matched).1)
            {
                self.matched += 1;
            }
            return;
        }
        if matches!(part, Part::Size) && self.size_differs {
            return;
        }
        let mut i = 0;
        while i < bytes.len() {
            if self.matched >= self.theirs.len() || self.theirs[self.matched] != bytes[i] {
                if matches!(part, Part::Size) && !is_cut_mark(self.theirs.split_at(self.matched).1)
                {
                    self.size_differs = true;
                } else {
                    self.difference = Some(self.here());
                }
                return;
            }
            self.matched += 1;
            i += 1;
        }
    }

    /// The difference where the walk is now.
    const fn here(&self) -> Difference {
        let (_, rest) = self.theirs.split_at(self.matched);
        if is_cut_mark(rest) {
            Difference::Unrecorded
        } else if let Some(finished) = self.finished {
            Difference::After(finished)
        } else if self.path.depth > 0 {
            Difference::Field(self.path)
        } else {
            Difference::Type
        }
    }

    const fn finish_comparing(mut self) -> Option<Difference> {
        if self.difference.is_none() && self.matched < self.theirs.len() {
            self.difference = Some(self.here());
        }
        match self.difference {
            Some(difference) => Some(difference),
            None if self.size_differs => Some(Difference::Type),
            None => None,
        }
    }
}

const fn is_cut_mark(rest: &[u8]) -> bool {
    let mark = CUT.as_bytes();
    if rest.len() != mark.len() {
        return false;
    }
    let mut i = 0;
    while i < mark.len() {
        if rest[i] != mark[i] {
            return false;
        }
        i += 1;
    }
    true
}
