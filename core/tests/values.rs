//! Value and Array for every typecode.
#![cfg(not(loom))]

use shmsync_core::spin::{Array, Value};
use shmsync_core::Scalar;

fn round_trip<T: Scalar>(a: T, b: T) {
    let value: Value<T> = Value::new(a);
    assert_eq!(value.get(), a);
    assert_eq!(value.swap(b), a);
    assert_eq!(value.compare_exchange(a, a), Err(b));
    assert_eq!(value.compare_exchange(b, a), Ok(b));
    assert_eq!(value.update(|_| b), Ok(b));
    let array: Array<T, 2> = Array::new([a, b]);
    assert_eq!(array.snapshot(), Ok([a, b]));
    array.set(0, b).unwrap();
    assert_eq!(array.get(0), Ok(b));
}

#[test]
fn every_typecode_round_trips() {
    round_trip::<i8>(-128, 127);
    round_trip::<u8>(0, 255);
    round_trip::<i16>(i16::MIN, -1);
    round_trip::<u16>(1, u16::MAX);
    round_trip::<i32>(i32::MIN, i32::MAX);
    round_trip::<u32>(7, u32::MAX);
    round_trip::<i64>(i64::MIN, -3);
    round_trip::<u64>(0, u64::MAX);
    round_trip::<f32>(-1.5, f32::INFINITY);
    round_trip::<f64>(f64::MIN_POSITIVE, -0.0);
    round_trip::<bool>(false, true);
    let codes: String = [
        i8::TYPECODE,
        u8::TYPECODE,
        i16::TYPECODE,
        u16::TYPECODE,
        i32::TYPECODE,
        u32::TYPECODE,
        i64::TYPECODE,
        u64::TYPECODE,
        f32::TYPECODE,
        f64::TYPECODE,
        bool::TYPECODE,
    ]
    .into_iter()
    .collect();
    assert_eq!(codes, "bBhHiIqQfd?");
}

#[test]
fn integer_arithmetic_wraps_like_std_atomics() {
    let small: Value<i8> = Value::new(127);
    assert_eq!(small.fetch_add(1), 127);
    assert_eq!(small.get(), -128);
    assert_eq!(small.fetch_sub(1), -128);
    assert_eq!(small.get(), 127);
    let bits: Value<u16> = Value::new(0b1100);
    bits.fetch_and(0b0100);
    bits.fetch_xor(0b0001);
    assert_eq!(bits.get(), 0b0101);
}

#[test]
fn float_arithmetic_adds() {
    let x: Value<f32> = Value::new(0.25);
    assert_eq!(x.fetch_add(0.5), 0.25);
    assert_eq!(x.fetch_sub(1.0), 0.75);
    assert_eq!(x.get(), -0.25);
}

#[test]
fn bool_bitwise() {
    let flag: Value<bool> = Value::new(false);
    assert!(!flag.fetch_or(true));
    assert!(flag.fetch_xor(true));
    assert!(!flag.get());
}

#[test]
fn iteration_is_over_a_snapshot() {
    let array: Array<u32, 4> = Array::new([1, 2, 3, 4]);
    let doubled: Vec<u32> = (&array).into_iter().map(|x| x * 2).collect();
    assert_eq!(doubled, [2, 4, 6, 8]);
    assert_eq!(array.len(), 4);
    assert!(!array.is_empty());
    assert_eq!(format!("{array:?}"), "Array([1, 2, 3, 4])");
}

/// Writes `byte` into the storage of a `Value<bool>`, as another process may: the
/// value's bits follow its lock.
fn peer_writes(flag: &Value<bool>, byte: u8) {
    let offset = size_of::<shmsync_core::spin::Lock>();
    // SAFETY: `Value` is `#[repr(C)]`: its lock, then the `AtomicU8` at `offset`, an
    // `UnsafeCell` that may be written through a shared reference by atomics.
    let bits = unsafe {
        &*(flag as *const Value<bool>)
            .cast::<u8>()
            .add(offset)
            .cast::<std::sync::atomic::AtomicU8>()
    };
    bits.store(byte, std::sync::atomic::Ordering::SeqCst);
}

/// A peer's byte is not a valid `bool`; it reads as one by C's rule (non-zero is
/// true), and every operation goes by that reading.
#[test]
fn a_bool_byte_from_a_peer_reads_as_non_zero_is_true() {
    let flag: Value<bool> = Value::new(false);
    peer_writes(&flag, 0);
    assert!(!flag.get());
    for byte in [1, 2, 0x80, 0xff] {
        peer_writes(&flag, byte);
        assert!(flag.get(), "byte {byte}");
        assert_eq!(format!("{flag:?}"), "Value(true)");
        // Compared by value: any non-zero byte is `true`.
        assert_eq!(flag.compare_exchange(false, true), Err(true));
        assert_eq!(flag.compare_exchange(true, false), Ok(true));
        assert!(!flag.get());

        peer_writes(&flag, byte);
        assert!(flag.fetch_and(true)); // true & true stays true
        assert!(flag.get());
        peer_writes(&flag, byte);
        assert!(flag.fetch_xor(true)); // true ^ true is false
        assert!(!flag.get());
        peer_writes(&flag, byte);
        assert!(flag.fetch_or(false));
        assert!(flag.get());
        peer_writes(&flag, byte);
        assert!(flag.fetch_and(false));
        assert!(!flag.get());
        peer_writes(&flag, byte);
        assert!(flag.swap(false));
        assert_eq!(flag.update(|v| !v), Ok(true));
    }
}
