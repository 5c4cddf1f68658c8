//! A layout's readable description, read back into a tree: the inverse of
//! [`Layout::describe`](shmsync_core::Layout::describe), for a program that finds the
//! description in a segment's header and knows nothing else of the type.
//!
//! The text is another program's: it may be cut short (at 512 bytes, ending in `…`),
//! garbled, or not a description at all. Parsing is bounded (in depth, and by the
//! text's length) and never panics; what cannot be read is an error, and what was cut
//! off is left out, never guessed.

use std::fmt;

/// The mark a description that was cut short ends with.
const CUT: &str = "…";
/// The deepest nesting of arrays and structs read; deeper is an error.
const MAX_DEPTH: usize = 32;
/// The scalar types a description names as plain (`Shape::Plain`).
const PLAIN: [&str; 13] = [
    "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "u128", "i128", "f32", "f64", "()",
];

/// A layout's description, read back into a tree.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{TypeDescription, TypeNode};
/// use shmsync::{shm_struct, Lock, ShmSafe, Value};
///
/// shm_struct! {
///     struct Stats { lock: Lock, count: Value<u64>, ids: [u32; 4] }
/// }
///
/// let text = Stats::LAYOUT.description();
/// let described = TypeDescription::parse(text.as_str())?;
/// assert_eq!((described.size, described.align, described.cut), (104, 8, false));
/// let TypeNode::Struct { fields, .. } = &described.root else { unreachable!() };
/// let names: Vec<_> = fields.iter().map(|f| (f.name.as_str(), f.offset)).collect();
/// assert_eq!(names, [("lock", 0), ("count", 40), ("ids", 88)]);
/// assert_eq!(fields[2].node.to_string(), "[u32; 4]");
/// // It reads back to the same text.
/// assert_eq!(described.to_string(), text.as_str());
/// # Ok::<(), shmsync::inspect::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDescription {
    /// The outermost type.
    pub root: TypeNode,
    /// Its size in bytes, as the description states it.
    pub size: usize,
    /// Its alignment, as the description states it.
    pub align: usize,
    /// Whether the description was cut short: the parts after the cut are missing
    /// from the tree ([`TypeNode::Struct`]'s `complete` says where).
    pub cut: bool,
}

/// A part of a [`TypeDescription`].
///
/// # Example
///
/// ```
/// use shmsync::inspect::{TypeArg, TypeDescription, TypeNode};
///
/// let described = TypeDescription::parse("[Value<u8, Futex, Robust>; 2] (96 bytes, align 8)")?;
/// let TypeNode::Array { item, len: 2 } = described.root else { unreachable!() };
/// let TypeNode::Builtin { name, args } = *item else { unreachable!() };
/// assert_eq!(name, "Value");
/// assert_eq!(args[0], TypeArg::Name("u8".into()));
/// # Ok::<(), shmsync::inspect::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeNode {
    /// An integer, a float or `()`: `u32`.
    Plain(String),
    /// `[item; len]`.
    Array {
        /// The items' type.
        item: Box<TypeNode>,
        /// How many items.
        len: usize,
    },
    /// A struct: `app::Stats { a: u32@0, b: u8@4 }`.
    Struct {
        /// Its path, as its program named it (shown, never compared).
        name: String,
        /// The fields the description records, in order.
        fields: Vec<FieldNode>,
        /// Whether every field is recorded (false where the description was cut
        /// short inside the list).
        complete: bool,
    },
    /// One of the library's types with its parameters: `Value<u64, Futex, Robust>`.
    Builtin {
        /// The type's name: `Value`.
        name: String,
        /// Its parameters.
        args: Vec<TypeArg>,
    },
    /// A type that describes only its name.
    Opaque(String),
}

/// A field of a [`TypeNode::Struct`].
///
/// # Example
///
/// ```
/// use shmsync::inspect::{TypeDescription, TypeNode};
///
/// let described = TypeDescription::parse("app::P (8 bytes, align 4) { x: u32@0, y: u32@4 }")?;
/// let TypeNode::Struct { fields, .. } = described.root else { unreachable!() };
/// assert_eq!((fields[1].name.as_str(), fields[1].offset), ("y", 4));
/// assert_eq!(fields[1].node, TypeNode::Plain("u32".into()));
/// # Ok::<(), shmsync::inspect::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNode {
    /// The field's name.
    pub name: String,
    /// Its offset in the struct, in bytes.
    pub offset: usize,
    /// Its type.
    pub node: TypeNode,
}

/// A parameter of a [`TypeNode::Builtin`]: a name (a scalar, a backend) or a length.
///
/// # Example
///
/// ```
/// use shmsync::inspect::{TypeArg, TypeDescription, TypeNode};
///
/// let described = TypeDescription::parse("Array<u8, 4, Futex, Robust> (48 bytes, align 8)")?;
/// let TypeNode::Builtin { args, .. } = described.root else { unreachable!() };
/// assert_eq!(args[1], TypeArg::Len(4));
/// # Ok::<(), shmsync::inspect::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeArg {
    /// A scalar's or a backend's name.
    Name(String),
    /// A length.
    Len(usize),
}

/// Why a text is not a layout description.
///
/// # Example
///
/// ```
/// use shmsync::inspect::TypeDescription;
///
/// let error = TypeDescription::parse("Stats (8 bytes, align 4) { a: u32@").unwrap_err();
/// assert_eq!(error.to_string(), "not a layout description: a number expected at byte 34");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The byte of the text where reading stopped.
    pub at: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a layout description: {} expected at byte {}",
            self.expected, self.at
        )
    }
}

impl std::error::Error for ParseError {}

impl TypeDescription {
    /// Reads `text`, a [description](shmsync_core::Layout::describe) another program
    /// wrote, back into a tree. A description cut short yields the parts recorded in
    /// full before the cut: a field is kept only if its offset was recorded whole.
    pub fn parse(text: &str) -> Result<TypeDescription, ParseError> {
        let (body, cut) = match text.strip_suffix(CUT) {
            Some(body) => (body, true),
            None => (text, false),
        };
        let mut reader = Reader {
            text: body.as_bytes(),
            at: 0,
            cut,
            depth: 0,
        };
        match reader.outermost() {
            Ok(described) => Ok(described),
            Err(Stop::Cut) => Err(ParseError {
                at: body.len(),
                expected: "more text (the description was cut short too early to read)",
            }),
            Err(Stop::Bad(error)) => Err(error),
        }
    }
}

/// Why reading stopped.
enum Stop {
    /// At the cut: what was being read is not recorded in full.
    Cut,
    /// At something that is not a description.
    Bad(ParseError),
}

type Step<T> = Result<T, Stop>;

/// A cursor over a description's text (without its cut mark).
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    /// Whether the text was cut: its end is then the cut, not the description's end.
    cut: bool,
    depth: usize,
}

impl Reader<'_> {
    fn rest(&self) -> &[u8] {
        &self.text[self.at..]
    }

    fn bad(&self, expected: &'static str) -> Stop {
        Stop::Bad(ParseError {
            at: self.at,
            expected,
        })
    }

    /// The end of the text: the cut, or else `expected` was missing.
    fn at_end(&self, expected: &'static str) -> Stop {
        if self.cut {
            Stop::Cut
        } else {
            self.bad(expected)
        }
    }

    /// Whether the text goes on with `literal`, then consumes it. Text that ends inside
    /// it, in a cut description, is the cut.
    fn eat(&mut self, literal: &str) -> Step<bool> {
        let literal = literal.as_bytes();
        let rest = self.rest();
        if rest.starts_with(literal) {
            self.at += literal.len();
            return Ok(true);
        }
        if self.cut && literal.starts_with(rest) {
            return Err(Stop::Cut);
        }
        Ok(false)
    }

    /// Whether the text goes on with `literal`, without consuming it.
    fn peek(&self, literal: &str) -> Step<bool> {
        let literal = literal.as_bytes();
        let rest = self.rest();
        if self.cut && literal.starts_with(rest) && rest.len() < literal.len() {
            return Err(Stop::Cut);
        }
        Ok(rest.starts_with(literal))
    }

    fn expect(&mut self, literal: &'static str) -> Step<()> {
        if self.eat(literal)? {
            Ok(())
        } else if self.rest().is_empty() {
            Err(self.at_end(literal))
        } else {
            Err(self.bad(literal))
        }
    }

    /// A decimal number, whole: one that runs into the cut may have lost digits.
    fn number(&mut self) -> Step<usize> {
        let digits = self
            .rest()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(if self.rest().is_empty() {
                self.at_end("a number")
            } else {
                self.bad("a number")
            });
        }
        if self.at + digits == self.text.len() && self.cut {
            return Err(Stop::Cut);
        }
        let text = &self.text[self.at..self.at + digits];
        let mut value: usize = 0;
        for &digit in text {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(digit - b'0')))
                .ok_or_else(|| self.bad("a number that fits in a usize"))?;
        }
        self.at += digits;
        Ok(value)
    }

    /// The longest run of bytes that `keep` accepts, non-empty; one that runs into the
    /// cut may have lost its end.
    fn run(&mut self, keep: impl Fn(u8) -> bool, expected: &'static str) -> Step<String> {
        let len = self.rest().iter().take_while(|&&b| keep(b)).count();
        if len == 0 {
            return Err(if self.rest().is_empty() {
                self.at_end(expected)
            } else {
                self.bad(expected)
            });
        }
        if self.at + len == self.text.len() && self.cut {
            return Err(Stop::Cut);
        }
        let run = &self.text[self.at..self.at + len];
        self.at += len;
        // The run ends at an ASCII byte or at the text's end: a character boundary.
        Ok(String::from_utf8_lossy(run).into_owned())
    }

    /// ` (N bytes, align M)`.
    fn size_clause(&mut self) -> Step<(usize, usize)> {
        self.expect(" (")?;
        let size = self.number()?;
        self.expect(" bytes, align ")?;
        let align = self.number()?;
        self.expect(")")?;
        Ok((size, align))
    }

    fn outermost(&mut self) -> Step<TypeDescription> {
        match self.outermost_described() {
            // An opaque name may hold any printable text: it is what comes before the
            // size clause that ends the text.
            Err(Stop::Bad(error)) if !self.cut => {
                self.at = 0;
                self.opaque_outermost().map_err(|_| Stop::Bad(error))
            }
            other => other,
        }
    }

    fn outermost_described(&mut self) -> Step<TypeDescription> {
        let root;
        let (size, align);
        if self.rest().first() == Some(&b'[') {
            root = self.node()?;
            (size, align) = self.size_clause()?;
        } else if self.eat("()")? {
            root = TypeNode::Plain("()".into());
            (size, align) = self.size_clause()?;
        } else {
            let name = self.run(is_path_byte, "a type's name")?;
            if self.rest().first() == Some(&b'<') {
                root = self.builtin(name)?;
                (size, align) = self.size_clause()?;
            } else {
                (size, align) = self.size_clause()?;
                root = if self.rest().is_empty() && !self.cut {
                    leaf(name)
                } else {
                    self.fields(name)?
                };
            }
        }
        if !self.rest().is_empty() {
            return Err(self.bad("the end of the description"));
        }
        if self.cut && !matches!(root, TypeNode::Struct { .. }) {
            // Only a field list can lose its end and keep what came before.
            return Err(Stop::Cut);
        }
        Ok(TypeDescription {
            root,
            size,
            align,
            cut: self.cut,
        })
    }

    /// An opaque outermost type named with text beyond a path's bytes: everything up
    /// to the size clause that ends the text.
    fn opaque_outermost(&mut self) -> Step<TypeDescription> {
        let text = self.rest();
        let clause_start = text
            .windows(2)
            .rposition(|pair| pair == b" (")
            .ok_or_else(|| self.bad("a size clause"))?;
        let name = String::from_utf8_lossy(&text[..clause_start]).into_owned();
        if name.is_empty() {
            return Err(self.bad("a type's name"));
        }
        self.at += clause_start;
        let (size, align) = self.size_clause()?;
        if !self.rest().is_empty() {
            return Err(self.bad("the end of the description"));
        }
        Ok(TypeDescription {
            root: TypeNode::Opaque(name),
            size,
            align,
            cut: false,
        })
    }

    /// A type inside another: an array's item or a field's type.
    fn node(&mut self) -> Step<TypeNode> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.bad("a type nested less deeply"));
        }
        let node = self.node_inside();
        self.depth -= 1;
        node
    }

    fn node_inside(&mut self) -> Step<TypeNode> {
        if self.eat("[")? {
            let item = self.node()?;
            self.expect("; ")?;
            let len = self.number()?;
            self.expect("]")?;
            return Ok(TypeNode::Array {
                item: Box::new(item),
                len,
            });
        }
        if self.eat("()")? {
            return Ok(TypeNode::Plain("()".into()));
        }
        let name = self.run(is_path_byte, "a type's name")?;
        if self.rest().first() == Some(&b'<') {
            return self.builtin(name);
        }
        if self.peek(" {")? {
            return self.fields(name);
        }
        Ok(leaf(name))
    }

    /// `Name<A, B, 3>`, after its name.
    fn builtin(&mut self, name: String) -> Step<TypeNode> {
        if name.contains(':') {
            return Err(self.bad("a type's name without a path"));
        }
        self.expect("<")?;
        let mut args = Vec::new();
        loop {
            let arg = if self.rest().first().is_some_and(u8::is_ascii_digit) {
                TypeArg::Len(self.number()?)
            } else {
                TypeArg::Name(self.run(|b| !b",>".contains(&b), "a parameter")?)
            };
            args.push(arg);
            if self.eat(">")? {
                return Ok(TypeNode::Builtin { name, args });
            }
            self.expect(", ")?;
        }
    }

    /// ` { a: u32@0, b: u8@4 }` or ` {}`, after a struct's name (and size).
    fn fields(&mut self, name: String) -> Step<TypeNode> {
        let mut fields = Vec::new();
        if self.eat(" {}")? {
            return Ok(TypeNode::Struct {
                name,
                fields,
                complete: true,
            });
        }
        let unfinished = |fields| TypeNode::Struct {
            name: name.clone(),
            fields,
            complete: false,
        };
        match self.eat(" { ") {
            Ok(true) => {}
            Ok(false) => return Err(self.at_end_or_bad(" { or {}")),
            Err(stop) => return Err(stop),
        }
        loop {
            match self.field() {
                Ok(field) => fields.push(field),
                // Everything after the cut is missing; what came before stands.
                Err(Stop::Cut) => return self.cut_short(unfinished(fields)),
                Err(stop) => return Err(stop),
            }
            match self.eat(" }") {
                Ok(true) => {
                    return Ok(TypeNode::Struct {
                        name,
                        fields,
                        complete: true,
                    })
                }
                Ok(false) => {}
                Err(_) => return self.cut_short(unfinished(fields)),
            }
            match self.eat(", ") {
                Ok(true) => {}
                Ok(false) => return Err(self.at_end_or_bad(", or }")),
                Err(_) => return self.cut_short(unfinished(fields)),
            }
        }
    }

    /// A struct cut inside its field list: it holds what was recorded, and the reading
    /// stops (nothing after the cut is left).
    fn cut_short(&mut self, node: TypeNode) -> Step<TypeNode> {
        self.at = self.text.len();
        if self.depth == 0 {
            Ok(node)
        } else {
            // A nested struct's place (its field's offset) comes after it: lost too.
            Err(Stop::Cut)
        }
    }

    fn at_end_or_bad(&self, expected: &'static str) -> Stop {
        if self.rest().is_empty() {
            self.at_end(expected)
        } else {
            self.bad(expected)
        }
    }

    /// `name: Type@offset`.
    fn field(&mut self) -> Step<FieldNode> {
        let name = self.run(is_field_name_byte, "a field's name")?;
        self.expect(": ")?;
        let node = self.node()?;
        self.expect("@")?;
        let offset = self.number()?;
        Ok(FieldNode { name, offset, node })
    }
}

/// A name without parameters or fields: a scalar, or an opaque type.
fn leaf(name: String) -> TypeNode {
    if PLAIN.contains(&name.as_str()) {
        TypeNode::Plain(name)
    } else {
        TypeNode::Opaque(name)
    }
}

/// The bytes of a struct's path, and of a scalar's or crate type's name: letters,
/// digits (any script), `_` and `:`.
fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || !byte.is_ascii() || byte == b'_' || byte == b':'
}

/// The bytes of a field's name: letters, digits (any script), `_` and `#` (of a raw
/// identifier).
fn is_field_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || !byte.is_ascii() || byte == b'_' || byte == b'#'
}

/// The description's text again, as [`Layout::describe`](shmsync_core::Layout::describe)
/// writes it (without a cut mark).
impl fmt::Display for TypeDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clause = format!(" ({} bytes, align {})", self.size, self.align);
        match &self.root {
            TypeNode::Struct { name, fields, .. } => {
                write!(f, "{name}{clause}")?;
                write_fields(f, fields)
            }
            other => write!(f, "{other}{clause}"),
        }
    }
}

/// The node's text, as a field's type is written in a description.
impl fmt::Display for TypeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeNode::Plain(name) | TypeNode::Opaque(name) => f.write_str(name),
            TypeNode::Array { item, len } => write!(f, "[{item}; {len}]"),
            TypeNode::Struct { name, fields, .. } => {
                f.write_str(name)?;
                write_fields(f, fields)
            }
            TypeNode::Builtin { name, args } => {
                write!(f, "{name}<")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match arg {
                        TypeArg::Name(name) => f.write_str(name)?,
                        TypeArg::Len(len) => write!(f, "{len}")?,
                    }
                }
                f.write_str(">")
            }
        }
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[FieldNode]) -> fmt::Result {
    if fields.is_empty() {
        return f.write_str(" {}");
    }
    f.write_str(" { ")?;
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}: {}@{}", field.name, field.node, field.offset)?;
    }
    f.write_str(" }")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        shm_struct, Array, BoundedSemaphore, Event, Lock, Queue, Semaphore, ShmSafe, Value,
    };
    use shmsync_core::{Spin, Unowned};

    shm_struct! {
        struct Inner { flag: Value<bool>, pair: [u16; 2] }
    }

    shm_struct! {
        struct Primitives {
            lock: Lock,
            start: Event,
            slots: Semaphore,
            bounded: BoundedSemaphore,
            log: Array<u8, 64>,
            spin: shmsync_core::Lock<Spin, Unowned>,
            unit: (),
        }
    }

    shm_struct! {
        struct Nested { inner: Inner, inners: [Inner; 3], grid: [[u32; 2]; 3] }
    }

    // Long enough to be cut short.
    shm_struct! {
        struct Outer { primitives: Primitives, nested: Nested, jobs: Queue<u64, 4> }
    }

    shm_struct! {
        struct Empty {}
    }

    crate::pod_struct! {
        struct Reading { sensor: u16, kind: u8, flags: u8 }
    }

    fn round_trip<T: ShmSafe>() -> TypeDescription {
        let text = T::LAYOUT.description();
        let described = TypeDescription::parse(text.as_str())
            .unwrap_or_else(|e| panic!("{e}: {}", text.as_str()));
        assert_eq!(described.to_string(), text.as_str());
        assert!(!described.cut);
        described
    }

    #[test]
    fn every_kind_of_type_reads_back_to_its_text() {
        round_trip::<Primitives>();
        round_trip::<Nested>();
        round_trip::<Empty>();
        round_trip::<Lock>();
        round_trip::<[Value<f64>; 2]>();
        round_trip::<[[u8; 3]; 2]>();
        round_trip::<u32>();
        round_trip::<()>();
        round_trip::<Queue<Reading, 2>>();
        round_trip::<Queue<u8, 3>>();
        round_trip::<crate::RobustRecord>();
        assert!(Outer::LAYOUT.description().as_str().ends_with(CUT));
        let described = round_trip::<Primitives>();
        let TypeNode::Struct { fields, .. } = described.root else {
            panic!()
        };
        assert!(matches!(&fields[6].node, TypeNode::Plain(unit) if unit == "()"));
        assert_eq!(
            fields[4].node,
            TypeNode::Builtin {
                name: "Array".into(),
                args: vec![
                    TypeArg::Name("u8".into()),
                    TypeArg::Len(64),
                    TypeArg::Name("Futex".into()),
                    TypeArg::Name("Robust".into())
                ]
            }
        );
    }

    #[test]
    fn an_opaque_name_may_hold_any_printable_text() {
        let described =
            TypeDescription::parse("app::Ring<u64, 16> {x} (64 bytes, align 8)").expect("read");
        assert_eq!(
            described.root,
            TypeNode::Opaque("app::Ring<u64, 16> {x}".into())
        );
        assert_eq!((described.size, described.align), (64, 8));
    }

    #[test]
    fn a_cut_description_keeps_the_fields_recorded_whole() {
        let text = Outer::LAYOUT.description();
        let full = TypeDescription::parse(text.as_str()).unwrap();
        let TypeNode::Struct { fields: all, .. } = &full.root else {
            panic!()
        };
        // Every cut, at every character boundary, keeps a prefix of the fields: each
        // one whose offset was written out and followed by more text.
        let text = text.as_str();
        for end in (0..text.len()).filter(|&end| text.is_char_boundary(end)) {
            let cut = format!("{}{CUT}", &text[..end]);
            match TypeDescription::parse(&cut) {
                Ok(described) => {
                    assert!(described.cut);
                    let TypeNode::Struct {
                        fields, complete, ..
                    } = described.root
                    else {
                        panic!("{cut}")
                    };
                    assert!(!complete);
                    assert_eq!(fields[..], all[..fields.len()], "{cut}");
                    if let Some(last) = fields.last() {
                        let written = format!("{}@{}", last.node, last.offset);
                        let at = text[..end].rfind(&written).expect("written") + written.len();
                        assert!(at < end, "a field kept whose offset may go on: {cut}");
                    }
                }
                Err(error) => assert!(error.at <= end, "{cut}"),
            }
        }
    }

    #[test]
    fn any_text_is_read_or_refused_without_panicking() {
        let text = Outer::LAYOUT.description();
        let bytes = text.as_str().as_bytes();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut mutated = bytes.to_vec();
            for _ in 0..1 + random() % 4 {
                let at = (random() % mutated.len() as u64) as usize;
                match random() % 3 {
                    0 => mutated[at] = random() as u8,
                    1 => {
                        mutated.remove(at);
                    }
                    _ => mutated.insert(at, b"@{}[<>;, :0123456789"[(random() % 20) as usize]),
                }
            }
            let _ = TypeDescription::parse(&String::from_utf8_lossy(&mutated));
        }
        let deep = format!(
            "{}u8{} (1 bytes, align 1)",
            "[".repeat(100),
            "; 1]".repeat(100)
        );
        // Too deep to read as arrays: at most an opaque name.
        assert!(!matches!(
            TypeDescription::parse(&deep),
            Ok(TypeDescription {
                root: TypeNode::Array { .. },
                ..
            })
        ));
        for text in [
            "",
            "…",
            " (",
            "x (99999999999999999999999 bytes, align 1)",
            "[",
            "<",
        ] {
            assert!(TypeDescription::parse(text).is_err(), "{text}");
        }
    }
}
