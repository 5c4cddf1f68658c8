//! Checking a description read back into a tree against the fingerprint beside it.
//!
//! A description shows the offsets of fields, not the sizes of the parts inside, which
//! the fingerprint covers: rebuilding the sizes (those of the library's types and
//! scalars from this build, those of inner structs from their fields) and hashing the
//! tree as [`Layout::fingerprint`](shmsync_core::Layout::fingerprint) does tells
//! whether the tree is the layout the segment's creator compiled. Only then is the size
//! inferred for a struct trusted (a `#[repr(align)]` would change it unseen), and a
//! description that lies is caught.
//!
//! The hash is [`Layout::fingerprint`](shmsync_core::Layout::fingerprint)'s, fed the
//! same way (core's `Sink`): per part, its size, alignment and kind as 8-byte words,
//! then its text as the description writes it, less the names of structs. A change
//! there changes the segment format version, and the tests below compare the two on
//! every kind of layout.

use super::description::{TypeArg, TypeDescription, TypeNode};
use super::known;

/// Whether a description read back agrees with the fingerprint beside it.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{verify, TypeDescription, Verification};
/// use shmsync::{ShmSafe, Value};
///
/// let layout = <Value<u64> as ShmSafe>::LAYOUT;
/// let described = TypeDescription::parse(layout.description().as_str())?;
/// assert_eq!(verify(&described, layout.fingerprint()), Verification::Matches);
/// assert_eq!(verify(&described, 12345), Verification::Differs);
/// # Ok::<(), shmsync::inspect::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// The tree, with the sizes this build gives its parts, has the recorded
    /// fingerprint: it is the layout the segment's creator compiled.
    Matches,
    /// It does not: the description, or the sizes inferred for its inner structs, do
    /// not agree with the layout that was compiled. What it shows may be misread.
    Differs,
    /// It could not be checked, for the reason given.
    Unchecked(String),
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verification::Matches => f.write_str("checked against its fingerprint"),
            Verification::Differs => f.write_str(
                "does not match its fingerprint: the description or the sizes inferred \
                 from it are wrong, and what is shown may be misread",
            ),
            Verification::Unchecked(why) => write!(f, "not checked: {why}"),
        }
    }
}

/// Checks `described` against `fingerprint`.
pub fn verify(described: &TypeDescription, fingerprint: u64) -> Verification {
    if described.cut {
        return Verification::Unchecked("the description was cut short".into());
    }
    let mut hash = Fnv::new();
    match hash.part(&described.root, (described.size, described.align), true) {
        Ok(()) if hash.0 == fingerprint => Verification::Matches,
        Ok(()) => Verification::Differs,
        Err(Unmeasured(what)) => {
            Verification::Unchecked(format!("the size of `{what}` is not known to this shmsync"))
        }
    }
}

/// A part whose size this build does not know: the text of its type.
#[derive(Debug)]
pub(crate) struct Unmeasured(pub String);

/// The size and alignment of a part inside a value: those this build gives the
/// library's types and scalars; for a struct, its fields' extent rounded up to their
/// alignment, as `#[repr(C)]` lays it out (without an explicit `align`, which only a
/// fingerprint check shows).
pub(crate) fn measure(node: &TypeNode) -> Result<(usize, usize), Unmeasured> {
    let unmeasured = || Unmeasured(node.to_string());
    match node {
        TypeNode::Plain(name) => known::plain(name)
            .map(|plain| (plain.size, plain.align))
            .ok_or_else(unmeasured),
        TypeNode::Builtin { name, args } => known::builtin(name, args)
            .map(|known| (known.size, known.align))
            .ok_or_else(unmeasured),
        TypeNode::Array { item, len } => {
            let (size, align) = measure(item)?;
            Ok((size.checked_mul(*len).ok_or_else(unmeasured)?, align))
        }
        TypeNode::Struct { name, fields, .. } => {
            let mut end = 0usize;
            let mut align = known::struct_min_align(name);
            for field in fields {
                let (size, field_align) = measure(&field.node)?;
                end = end.max(field.offset.checked_add(size).ok_or_else(unmeasured)?);
                align = align.max(field_align);
            }
            Ok((
                end.checked_next_multiple_of(align).ok_or_else(unmeasured)?,
                align,
            ))
        }
        TypeNode::Opaque(_) => Err(unmeasured()),
    }
}

/// FNV-1a, as the fingerprint uses it.
struct Fnv(u64);

/// The kinds of part, as the fingerprint hashes them.
const PLAIN: u64 = 1;
const ARRAY: u64 = 2;
const STRUCT: u64 = 3;
const BUILTIN: u64 = 4;
const OPAQUE: u64 = 5;

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn word(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    /// The outermost part's ` (N bytes, align M)`.
    fn clause(&mut self, (size, align): (usize, usize)) {
        self.text(&format!(" ({size} bytes, align {align})"));
    }

    fn part(
        &mut self,
        node: &TypeNode,
        sized: (usize, usize),
        outermost: bool,
    ) -> Result<(), Unmeasured> {
        self.word(sized.0 as u64);
        self.word(sized.1 as u64);
        match node {
            TypeNode::Plain(name) => {
                self.word(PLAIN);
                self.text(name);
            }
            TypeNode::Array { item, len } => {
                self.word(ARRAY);
                self.text("[");
                self.part(item, measure(item)?, false)?;
                self.text(&format!("; {len}]"));
            }
            TypeNode::Builtin { name, args } => {
                self.word(BUILTIN);
                self.text(name);
                self.text("<");
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        self.text(", ");
                    }
                    match arg {
                        TypeArg::Name(name) => self.text(name),
                        TypeArg::Len(len) => self.text(&len.to_string()),
                    }
                }
                self.text(">");
            }
            TypeNode::Opaque(name) => {
                self.word(OPAQUE);
                self.text(name);
            }
            TypeNode::Struct { fields, .. } => {
                // The struct's name is shown, never hashed.
                self.word(STRUCT);
                if outermost {
                    self.clause(sized);
                }
                if fields.is_empty() {
                    self.text(" {}");
                    return Ok(());
                }
                self.text(" { ");
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        self.text(", ");
                    }
                    self.text(&field.name);
                    self.text(": ");
                    self.part(&field.node, measure(&field.node)?, false)?;
                    self.text(&format!("@{}", field.offset));
                }
                self.text(" }");
                return Ok(());
            }
        }
        if outermost {
            self.clause(sized);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        pod_struct, shm_struct, Array, BoundedSemaphore, Event, Lock, Queue, Semaphore, ShmSafe,
        Value,
    };
    use shmsync_core::{Spin, Unowned};

    fn verified<T: ShmSafe>() -> Verification {
        let text = T::LAYOUT.description();
        let described = TypeDescription::parse(text.as_str()).expect("parsed");
        verify(&described, T::LAYOUT.fingerprint())
    }

    shm_struct! {
        struct In { a: Value<bool>, b: [u16; 3] }
    }
    shm_struct! {
        struct Many { l: Lock, e: Event, s: Semaphore, b: BoundedSemaphore, x: Array<u8, 5> }
    }
    shm_struct! {
        struct Nest { i: In, is: [In; 2], g: [[u8; 3]; 2], u: (), sp: shmsync_core::Lock<Spin, Unowned> }
    }
    shm_struct! {
        struct Empty {}
    }
    shm_struct! {
        struct Later { r: crate::RLock, b: crate::Barrier, c: crate::Condition, w: crate::RwLock }
    }
    pod_struct! {
        struct Item { a: u16, b: u8, c: u8 }
    }
    pod_struct! {
        struct Odd { a: [u8; 3] }
    }
    #[repr(C, align(16))]
    struct Wide {
        a: u8,
    }
    // SAFETY: `#[repr(C)]`, one byte and padding, valid for every bit pattern.
    unsafe impl ShmSafe for Wide {
        const LAYOUT: crate::Layout = crate::Layout::structure::<Self>(
            "t::Wide",
            &[crate::Field::new(
                "a",
                std::mem::offset_of!(Wide, a),
                &<u8 as ShmSafe>::LAYOUT,
            )],
        );
    }
    shm_struct! {
        struct Wides { w: [Wide; 2] }
    }

    #[test]
    fn every_kind_of_layout_is_rebuilt_to_its_fingerprint() {
        assert_eq!(verified::<Many>(), Verification::Matches);
        assert_eq!(verified::<Nest>(), Verification::Matches);
        assert_eq!(verified::<Empty>(), Verification::Matches);
        assert_eq!(verified::<Later>(), Verification::Matches);
        assert_eq!(verified::<[Value<f32>; 3]>(), Verification::Matches);
        assert_eq!(verified::<u64>(), Verification::Matches);
        assert_eq!(verified::<()>(), Verification::Matches);
        assert_eq!(verified::<Queue<u64, 4>>(), Verification::Matches);
        // The slots are word-aligned whatever their item.
        assert_eq!(verified::<Queue<u8, 3>>(), Verification::Matches);
        assert_eq!(verified::<Queue<Item, 2>>(), Verification::Matches);
        assert_eq!(verified::<Queue<Odd, 5>>(), Verification::Matches);
    }

    #[test]
    fn what_cannot_be_rebuilt_is_never_passed() {
        // A struct aligned beyond its fields: its size cannot be inferred.
        assert_eq!(verified::<Wides>(), Verification::Differs);
        assert!(matches!(
            verified::<crate::RobustRecord>(),
            Verification::Matches | Verification::Unchecked(_)
        ));
        let text = Many::LAYOUT.description();
        let described = TypeDescription::parse(text.as_str()).unwrap();
        assert_eq!(
            verify(&described, Many::LAYOUT.fingerprint() ^ 1),
            Verification::Differs
        );
        let unknown = "t::S (8 bytes, align 4) { r: Mutex<Futex, Robust>@0 }";
        let described = TypeDescription::parse(unknown).unwrap();
        assert!(matches!(verify(&described, 0), Verification::Unchecked(_)));
    }
}
