//! The plain types a [`Value`](crate::Value) or [`Array`](crate::Array) can hold: those
//! behind Python's `ctypes` typecodes.
//!
//! Each is stored as the bits of an unsigned atomic of its width, so one definition of
//! every operation serves all of them (two's-complement wrapping arithmetic is the same
//! for signed and unsigned integers; a float is its IEEE bits).

#[cfg(has_atomic_64)]
use crate::sync::AtomicU64;
use crate::sync::{AtomicU16, AtomicU32, AtomicU8, Ordering};

/// A type a [`Value`](crate::Value) or [`Array`](crate::Array) can hold.
///
/// | Python typecode | Rust type |
/// |---|---|
/// | `'b'` / `'B'` | `i8` / `u8` |
/// | `'c'` (a byte) | `u8` (see [`Array::value`](crate::Array::value) for byte strings) |
/// | `'h'` / `'H'` | `i16` / `u16` |
/// | `'i'` / `'I'` (also `'l'`/`'L'` on 32-bit C) | `i32` / `u32` |
/// | `'q'` / `'Q'` (also `'l'`/`'L'` on 64-bit Linux) | `i64` / `u64` |
/// | `'f'` / `'d'` | `f32` / `f64` |
/// | `'?'` | `bool` |
///
/// Sealed: the layout guarantees below are checked for exactly these types.
///
/// Each is stored as an unsigned integer of its width, which every bit pattern is, so
/// whatever another process wrote reads as a value: a stored `bool` is a byte, and
/// any byte but 0 reads as `true` (as C's `_Bool` conversion and Python's
/// `ctypes.c_bool` read it). Comparisons and bitwise operations on a `bool` go by that
/// reading too, so a byte 2 written by a peer compares equal to `true`.
///
/// # Example
///
/// ```
/// use shmsync_core::Scalar;
/// assert_eq!(<i32 as Scalar>::TYPECODE, 'i');
/// assert_eq!(<f64 as Scalar>::TYPECODE, 'd');
/// ```
pub trait Scalar:
    sealed::Bits + Copy + PartialEq + core::fmt::Debug + Send + Sync + 'static
{
    /// Python's `array`/`ctypes` typecode for this type.
    const TYPECODE: char;
}

/// Scalars with addition and subtraction: `fetch_add` / `fetch_sub`.
///
/// Integers wrap around, as `AtomicI32::fetch_add` does. Floats add with a
/// compare-and-swap loop, which is lock-free where the width is native.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Value;
/// let x: Value<f64> = Value::new(1.5);
/// assert_eq!(x.fetch_add(1.0), 1.5);
/// assert_eq!(x.get(), 2.5);
/// ```
pub trait Number: Scalar + sealed::Arithmetic {}

/// Scalars with bitwise operations: `fetch_and` / `fetch_or` / `fetch_xor`.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Value;
/// let flags: Value<u8> = Value::new(0b0101);
/// flags.fetch_or(0b0010);
/// assert_eq!(flags.get(), 0b0111);
/// ```
pub trait Bitwise: Scalar + sealed::Logic {}

pub(crate) mod sealed {
    use super::Ordering;

    /// The atomic operations a scalar's storage offers, on raw bits.
    pub trait AtomicBits: Send + Sync {
        type Bits: Copy + Eq + Default;
        fn new(bits: Self::Bits) -> Self;
        fn load(&self, order: Ordering) -> Self::Bits;
        fn store(&self, bits: Self::Bits, order: Ordering);
        fn swap(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
        fn compare_exchange(
            &self,
            current: Self::Bits,
            new: Self::Bits,
            success: Ordering,
            failure: Ordering,
        ) -> Result<Self::Bits, Self::Bits>;
        fn fetch_add(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
        fn fetch_sub(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
        fn fetch_and(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
        fn fetch_or(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
        fn fetch_xor(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
    }

    /// How a scalar maps to its storage.
    ///
    /// # Safety
    ///
    /// `Self` and `Self::Atomic` have the same size, and the bytes of any `Self` value
    /// are a valid `Self::Atomic` holding `to_bits(value)`: `Value::new` copies them
    /// bytewise in a `const fn`.
    pub unsafe trait Bits: Sized {
        type Atomic: AtomicBits;
        /// The type's Rust name, as layouts show it.
        const NAME: &'static str;
        /// Whether every value has one bit pattern and every pattern is a value: then
        /// the atomics' own compare and bitwise operations are the type's. A `bool`
        /// has 255 patterns for `true`.
        const ONE_PATTERN_PER_VALUE: bool = true;
        fn to_bits(self) -> <Self::Atomic as AtomicBits>::Bits;
        /// Never fails: every pattern of the storage is some value.
        fn from_bits(bits: <Self::Atomic as AtomicBits>::Bits) -> Self;
        /// The pattern `to_bits` gives for the value `bits` hold.
        fn canonical(
            bits: <Self::Atomic as AtomicBits>::Bits,
        ) -> <Self::Atomic as AtomicBits>::Bits {
            bits
        }
    }

    /// And, or and exclusive or of values, for types whose patterns are not one per
    /// value (where the atomics' bitwise operations on patterns would not do).
    pub trait Logic: Bits {
        fn and(self, other: Self) -> Self;
        fn or(self, other: Self) -> Self;
        fn xor(self, other: Self) -> Self;
    }

    /// Addition for `fetch_add` / `fetch_sub`.
    pub trait Arithmetic: Bits {
        /// Whether `fetch_add` on the bits is this type's addition (integers: yes).
        const NATIVE_ADD: bool;
        fn add(self, other: Self) -> Self;
        fn sub(self, other: Self) -> Self;
    }
}

macro_rules! atomic_bits {
    ($($atomic:ty => $bits:ty),*) => {$(
        impl sealed::AtomicBits for $atomic {
            type Bits = $bits;
            fn new(bits: $bits) -> Self { <$atomic>::new(bits) }
            fn load(&self, order: Ordering) -> $bits { self.load(order) }
            fn store(&self, bits: $bits, order: Ordering) { self.store(bits, order) }
            fn swap(&self, bits: $bits, order: Ordering) -> $bits { self.swap(bits, order) }
            fn compare_exchange(&self, current: $bits, new: $bits, success: Ordering, failure: Ordering) -> Result<$bits, $bits> {
                self.compare_exchange(current, new, success, failure)
            }
            fn fetch_add(&self, bits: $bits, order: Ordering) -> $bits { self.fetch_add(bits, order) }
            fn fetch_sub(&self, bits: $bits, order: Ordering) -> $bits { self.fetch_sub(bits, order) }
            fn fetch_and(&self, bits: $bits, order: Ordering) -> $bits { self.fetch_and(bits, order) }
            fn fetch_or(&self, bits: $bits, order: Ordering) -> $bits { self.fetch_or(bits, order) }
            fn fetch_xor(&self, bits: $bits, order: Ordering) -> $bits { self.fetch_xor(bits, order) }
        }
    )*};
}

atomic_bits!(AtomicU8 => u8, AtomicU16 => u16, AtomicU32 => u32);
#[cfg(has_atomic_64)]
atomic_bits!(AtomicU64 => u64);

macro_rules! integers {
    ($($t:ty => $atomic:ty, $bits:ty, $code:literal);* $(;)?) => {$(
        // SAFETY: an integer and the unsigned atomic of its width have the same size,
        // and an integer's bytes are those of its two's-complement bits (`as` casts).
        unsafe impl sealed::Bits for $t {
            type Atomic = $atomic;
            const NAME: &'static str = stringify!($t);
            fn to_bits(self) -> $bits { self as $bits }
            fn from_bits(bits: $bits) -> Self { bits as $t }
        }
        impl sealed::Arithmetic for $t {
            const NATIVE_ADD: bool = true;
            fn add(self, other: Self) -> Self { self.wrapping_add(other) }
            fn sub(self, other: Self) -> Self { self.wrapping_sub(other) }
        }
        impl sealed::Logic for $t {
            fn and(self, other: Self) -> Self { self & other }
            fn or(self, other: Self) -> Self { self | other }
            fn xor(self, other: Self) -> Self { self ^ other }
        }
        impl Scalar for $t { const TYPECODE: char = $code; }
        impl Number for $t {}
        impl Bitwise for $t {}
    )*};
}

integers! {
    i8 => AtomicU8, u8, 'b';
    u8 => AtomicU8, u8, 'B';
    i16 => AtomicU16, u16, 'h';
    u16 => AtomicU16, u16, 'H';
    i32 => AtomicU32, u32, 'i';
    u32 => AtomicU32, u32, 'I';
}
#[cfg(has_atomic_64)]
integers! {
    i64 => AtomicU64, u64, 'q';
    u64 => AtomicU64, u64, 'Q';
}

macro_rules! floats {
    ($($t:ty => $atomic:ty, $code:literal);* $(;)?) => {$(
        // SAFETY: a float and the unsigned atomic of its width have the same size, and
        // a float's bytes are its IEEE-754 bits (`to_bits`).
        unsafe impl sealed::Bits for $t {
            type Atomic = $atomic;
            const NAME: &'static str = stringify!($t);
            fn to_bits(self) -> <$atomic as sealed::AtomicBits>::Bits { <$t>::to_bits(self) }
            fn from_bits(bits: <$atomic as sealed::AtomicBits>::Bits) -> Self { <$t>::from_bits(bits) }
        }
        impl sealed::Arithmetic for $t {
            const NATIVE_ADD: bool = false;
            fn add(self, other: Self) -> Self { self + other }
            fn sub(self, other: Self) -> Self { self - other }
        }
        impl Scalar for $t { const TYPECODE: char = $code; }
        impl Number for $t {}
    )*};
}

floats! { f32 => AtomicU32, 'f' }
#[cfg(has_atomic_64)]
floats! { f64 => AtomicU64, 'd' }

// SAFETY: `bool` is one byte, the same size as `AtomicU8`, and its bytes are 0 or 1:
// those of the `u8` it converts to. Only `true` and `false` are ever stored as a `bool`;
// a byte read back, whatever a peer wrote, becomes one by `from_bits`.
unsafe impl sealed::Bits for bool {
    type Atomic = AtomicU8;
    const NAME: &'static str = "bool";
    const ONE_PATTERN_PER_VALUE: bool = false;
    fn to_bits(self) -> u8 {
        self as u8
    }
    fn from_bits(bits: u8) -> Self {
        bits != 0
    }
    fn canonical(bits: u8) -> u8 {
        (bits != 0) as u8
    }
}
impl sealed::Logic for bool {
    fn and(self, other: Self) -> Self {
        self & other
    }
    fn or(self, other: Self) -> Self {
        self | other
    }
    fn xor(self, other: Self) -> Self {
        self ^ other
    }
}
impl Scalar for bool {
    const TYPECODE: char = '?';
}
impl Bitwise for bool {}
