//! The shared footprint and layout of each type: small, fixed and position-independent.
#![cfg(not(loom))]

mod common;

use core::mem::{align_of, size_of};
use shmsync_core::spin::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RwLock, Semaphore, Value,
};
use shmsync_core::ShmSafe;

#[test]
fn sizes_are_as_documented() {
    assert_eq!(size_of::<Lock>(), 8);
    assert_eq!(size_of::<Event>(), 4);
    assert_eq!(size_of::<Semaphore>(), 8);
    assert_eq!(size_of::<BoundedSemaphore>(), 12);
    assert_eq!(size_of::<Value<u8>>(), 12);
    assert_eq!(size_of::<Value<i32>>(), 12);
    assert_eq!(size_of::<Value<f64>>(), 16);
    assert_eq!(size_of::<Array<u8, 16>>(), 24);
    assert_eq!(size_of::<Array<u64, 4>>(), 40);
    assert_eq!(size_of::<Condition>(), 104);
    assert_eq!(size_of::<Barrier>(), 8);
    assert_eq!(size_of::<RwLock>(), 76);
    assert_eq!(align_of::<Lock>(), 4);
    assert_eq!(align_of::<Value<u64>>(), 8);
}

fn assert_shareable<T: ShmSafe + Send + Sync>() {}

#[test]
fn every_type_may_be_shared() {
    assert_shareable::<Lock>();
    assert_shareable::<Event>();
    assert_shareable::<Semaphore>();
    assert_shareable::<BoundedSemaphore>();
    assert_shareable::<Value<f32>>();
    assert_shareable::<Array<bool, 3>>();
    assert_shareable::<[Value<u16>; 2]>();
    assert_shareable::<Condition>();
    assert_shareable::<Barrier>();
    assert_shareable::<RwLock>();
}

/// The state is bytes and nothing else: copied to another address (as a second process
/// sees it), it means the same.
#[test]
fn state_means_the_same_at_another_address() {
    let lock: Lock = Lock::new();
    let sem: Semaphore = Semaphore::new(5);
    let value: Value<i16> = Value::new(-7);
    core::mem::forget(lock.lock().unwrap());
    sem.acquire();

    let moved_lock: Lock = unsafe { core::ptr::read(&lock) };
    let moved_sem: Semaphore = unsafe { core::ptr::read(&sem) };
    let moved_value: Value<i16> = unsafe { core::ptr::read(&value) };
    assert!(moved_lock.is_locked());
    assert_eq!(moved_lock.release(), Ok(()));
    assert_eq!(moved_sem.value(), 4);
    assert_eq!(moved_value.get(), -7);
}

#[test]
fn constructors_are_const() {
    static LOCK: Lock = Lock::new();
    static EVENT: Event = Event::new();
    static SEM: BoundedSemaphore = BoundedSemaphore::new(2);
    static RATIO: Value<f64> = Value::new(0.5);
    static NAME: Array<u8, 8> = Array::new(*b"shmsync\0");
    static ZEROS: Array<i64, 3> = Array::zeroed();
    static READY: Condition = Condition::new();
    static PHASE: Barrier = Barrier::new(3);
    static TABLE: RwLock = RwLock::new();
    assert_eq!(READY.notify_all(), 0);
    assert_eq!(PHASE.parties(), 3);
    assert!(!TABLE.is_locked());
    assert!(!LOCK.is_locked());
    assert!(!EVENT.is_set());
    assert_eq!(SEM.value(), 2);
    assert_eq!(RATIO.get(), 0.5);
    assert_eq!(NAME.value().unwrap().as_slice(), b"shmsync");
    assert_eq!(ZEROS.snapshot(), Ok([0; 3]));
}

mod described {
    //! The layouts that a segment's header records: what they say, what they tell
    //! apart, and where two first differ.

    use shmsync_core::{
        shm_struct, Array, BoundedSemaphore, Description, Difference, Event, Layout, Lock,
        Semaphore, ShmSafe, Spin, TrackedBoundedSemaphore, TrackedSemaphore, Unowned, Value,
    };

    fn described<T: ShmSafe>() -> String {
        T::LAYOUT.description().to_string()
    }

    fn path(difference: Option<Difference>) -> String {
        match difference {
            Some(Difference::Field(path)) => path.to_string(),
            other => panic!("expected a field, got {other:?}"),
        }
    }

    #[test]
    fn every_core_type_describes_itself() {
        assert_eq!(described::<u8>(), "u8 (1 bytes, align 1)");
        assert_eq!(described::<f64>(), "f64 (8 bytes, align 8)");
        assert_eq!(described::<()>(), "() (0 bytes, align 1)");
        assert_eq!(described::<[i16; 3]>(), "[i16; 3] (6 bytes, align 2)");
        assert_eq!(
            described::<[[u8; 2]; 3]>(),
            "[[u8; 2]; 3] (6 bytes, align 1)"
        );
        assert_eq!(
            described::<Lock<Spin, Unowned>>(),
            "Lock<Spin, Unowned> (8 bytes, align 4)"
        );
        assert_eq!(described::<Event<Spin>>(), "Event<Spin> (4 bytes, align 4)");
        assert_eq!(
            described::<Semaphore<Spin>>(),
            "Semaphore<Spin> (8 bytes, align 4)"
        );
        assert_eq!(
            described::<BoundedSemaphore<Spin>>(),
            "BoundedSemaphore<Spin> (12 bytes, align 4)"
        );
        assert_eq!(
            described::<Value<u64, Spin, Unowned>>(),
            "Value<u64, Spin, Unowned> (16 bytes, align 8)"
        );
        assert_eq!(
            described::<Value<bool, Spin, Unowned>>(),
            "Value<bool, Spin, Unowned> (12 bytes, align 4)"
        );
        assert_eq!(
            described::<Array<u8, 16, Spin, Unowned>>(),
            "Array<u8, 16, Spin, Unowned> (24 bytes, align 4)"
        );
        let tracked = size_of::<TrackedSemaphore<Spin, Unowned>>();
        assert_eq!(
            described::<TrackedSemaphore<Spin, Unowned>>(),
            format!("TrackedSemaphore<Spin, Unowned> ({tracked} bytes, align 4)")
        );
        assert_eq!(
            described::<TrackedBoundedSemaphore<Spin, Unowned>>(),
            format!("TrackedBoundedSemaphore<Spin, Unowned> ({tracked} bytes, align 4)")
        );
    }

    shm_struct! {
        /// A struct whose layout is the same on every target.
        struct Known {
            start: Event<Spin>,
            count: Value<u32, Spin, Unowned>,
            ids: [u32; 4],
            tag: u8,
        }
    }

    /// The description and the fingerprint are a function of the layout alone, the
    /// same in every build: a segment made by one build opens in another. If this
    /// fails, the format changed: bump the hosted crate's `FORMAT_VERSION`.
    #[test]
    fn a_known_struct_is_pinned() {
        assert_eq!(
            described::<Known>(),
            "layout::described::Known (36 bytes, align 4) { start: Event<Spin>@0, \
             count: Value<u32, Spin, Unowned>@4, ids: [u32; 4]@16, tag: u8@32 }"
        );
        assert_eq!(Known::LAYOUT.fingerprint(), 0xec0a_b11a_76ca_bad2);
    }

    #[test]
    fn layouts_are_constants() {
        const FINGERPRINT: u64 = Known::LAYOUT.fingerprint();
        const DESCRIPTION: Description = Known::LAYOUT.description();
        assert_eq!(FINGERPRINT, Known::LAYOUT.fingerprint());
        assert_eq!(DESCRIPTION.as_str(), described::<Known>());
    }

    mod a {
        shmsync_core::shm_struct! {
            pub struct Rec { pub x: u32, pub flag: u8 }
        }
    }
    mod b {
        use shmsync_core::{Spin, Unowned, Value};
        shmsync_core::shm_struct! {
            pub struct Rec { pub x: u32, pub flag: Value<bool, Spin, Unowned> }
        }
    }
    mod c {
        shmsync_core::shm_struct! {
            /// `a::Rec` again, in another module under another name.
            pub struct Record { pub x: u32, pub flag: u8 }
        }
    }
    mod renamed {
        shmsync_core::shm_struct! {
            pub struct Rec { pub x: u32, pub done: u8 }
        }
    }

    #[test]
    fn the_same_short_name_with_other_fields_differs_at_the_field() {
        assert_eq!(
            described::<a::Rec>(),
            "layout::described::a::Rec (8 bytes, align 4) { x: u32@0, flag: u8@4 }"
        );
        assert_ne!(a::Rec::LAYOUT.fingerprint(), b::Rec::LAYOUT.fingerprint());
        let theirs = a::Rec::LAYOUT.description();
        assert_eq!(
            path(b::Rec::LAYOUT.first_difference(theirs.as_str())),
            "flag"
        );
        let ours = b::Rec::LAYOUT.description();
        assert_eq!(path(a::Rec::LAYOUT.first_difference(ours.as_str())), "flag");
    }

    /// Struct names and module paths are shown, not compared: two programs that each
    /// declare the shared struct agree (see the `Layout` docs for why).
    #[test]
    fn the_same_fields_under_another_name_are_the_same_layout() {
        assert_eq!(
            a::Rec::LAYOUT.fingerprint(),
            c::Record::LAYOUT.fingerprint()
        );
        let theirs = c::Record::LAYOUT.description();
        assert!(theirs.as_str().contains("c::Record"));
        assert_eq!(a::Rec::LAYOUT.first_difference(theirs.as_str()), None);
    }

    #[test]
    fn a_renamed_field_differs() {
        assert_ne!(
            a::Rec::LAYOUT.fingerprint(),
            renamed::Rec::LAYOUT.fingerprint()
        );
        let theirs = renamed::Rec::LAYOUT.description();
        assert_eq!(
            path(a::Rec::LAYOUT.first_difference(theirs.as_str())),
            "flag"
        );
    }

    /// Every type on another backend is another layout, though its bytes are as many:
    /// a waiter would not be woken the way it expects.
    #[test]
    fn backends_count() {
        use super::common::yielding;
        use shmsync_core::spin;

        fn differ<A: ShmSafe, B: ShmSafe>() {
            assert_eq!(size_of::<A>(), size_of::<B>());
            assert_ne!(A::LAYOUT.fingerprint(), B::LAYOUT.fingerprint());
            let theirs = B::LAYOUT.description();
            assert_eq!(
                A::LAYOUT.first_difference(theirs.as_str()),
                Some(Difference::Type),
                "{theirs}"
            );
        }
        differ::<spin::Lock, yielding::Lock>();
        differ::<spin::Event, yielding::Event>();
        differ::<spin::Semaphore, yielding::Semaphore>();
        differ::<spin::BoundedSemaphore, yielding::BoundedSemaphore>();
        differ::<spin::Value<u8>, yielding::Value<u8>>();
        differ::<spin::Array<u16, 3>, yielding::Array<u16, 3>>();
        differ::<spin::Condition, yielding::Condition>();
        differ::<spin::Barrier, yielding::Barrier>();
        differ::<spin::RwLock, yielding::RwLock>();
        assert!(described::<yielding::Lock>().starts_with("Lock<Yield, Unowned>"));
        // The same bytes, read as another scalar.
        assert_ne!(
            <Value<u8, Spin, Unowned>>::LAYOUT.fingerprint(),
            <Value<bool, Spin, Unowned>>::LAYOUT.fingerprint()
        );
        assert_ne!(
            <Value<u32, Spin, Unowned>>::LAYOUT.fingerprint(),
            <Value<f32, Spin, Unowned>>::LAYOUT.fingerprint()
        );
        // And the same size, as another kind.
        assert_ne!(
            <u32 as ShmSafe>::LAYOUT.fingerprint(),
            <[u8; 4] as ShmSafe>::LAYOUT.fingerprint()
        );
        assert_ne!(
            <Semaphore<Spin>>::LAYOUT.fingerprint(),
            <[u32; 2] as ShmSafe>::LAYOUT.fingerprint()
        );
    }

    mod v1 {
        shmsync_core::shm_struct! { pub struct Inner { pub a: u32, pub b: u32 } }
    }
    mod v2 {
        shmsync_core::shm_struct! { pub struct Inner { pub a: u32, pub b: i32 } }
    }
    mod v3 {
        shmsync_core::shm_struct! { pub struct Inner { pub a: u32, pub b: u32, pub c: u32 } }
    }
    mod v4 {
        use shmsync_core::{Spin, Unowned, Value};
        shmsync_core::shm_struct! { pub struct Inner { pub a: u32, pub b: Value<u64, Spin, Unowned> } }
    }
    shm_struct! { struct Outer1 { head: u64, inner: v1::Inner, tail: u8 } }
    shm_struct! { struct Outer2 { head: u64, inner: v2::Inner, tail: u8 } }
    shm_struct! { struct Outer3 { head: u64, inner: v3::Inner, tail: u8 } }
    shm_struct! { struct Outer4 { head: u64, inner: v4::Inner, tail: u8 } }
    shm_struct! { struct Shorter { head: u64, inner: v1::Inner } }
    shm_struct! { struct Listed { items: [v1::Inner; 2] } }
    shm_struct! { struct Listed2 { items: [v2::Inner; 2] } }

    #[test]
    fn differences_are_found_where_they_are() {
        let outer1 = Outer1::LAYOUT.description();
        let theirs = outer1.as_str();
        // Inside a nested struct, by its path.
        assert_eq!(path(Outer2::LAYOUT.first_difference(theirs)), "inner.b");
        // A field more in a nested struct: after its last common field.
        match Outer3::LAYOUT.first_difference(theirs) {
            Some(Difference::After(path)) => assert_eq!(path.to_string(), "inner.b"),
            other => panic!("{other:?}"),
        }
        // A field that changes the overall size is named, not the size.
        assert_eq!(path(Outer4::LAYOUT.first_difference(theirs)), "inner.b");
        // A field fewer at the end.
        match Shorter::LAYOUT.first_difference(theirs) {
            Some(Difference::After(path)) => assert_eq!(path.to_string(), "inner"),
            other => panic!("{other:?}"),
        }
        // Inside the items of an array.
        let listed = Listed::LAYOUT.description();
        assert_eq!(
            path(Listed2::LAYOUT.first_difference(listed.as_str())),
            "items.b"
        );
        // Another kind of type altogether.
        assert_eq!(
            <u64 as ShmSafe>::LAYOUT.first_difference(theirs),
            Some(Difference::Type)
        );
        assert_eq!(
            Outer1::LAYOUT.first_difference(&described::<u64>()),
            Some(Difference::Type)
        );
        assert_eq!(Outer1::LAYOUT.first_difference(theirs), None);
    }

    /// A struct whose description is longer than a header keeps, ending in `last`.
    macro_rules! wide {
        ($name:ident, $last:ty) => {
            shm_struct! {
                struct $name {
                    first_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    second_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    third_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    fourth_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    fifth_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    sixth_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    seventh_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    eighth_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    ninth_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    tenth_field_with_a_long_name: Value<u64, Spin, Unowned>,
                    last: $last,
                }
            }
        };
    }
    wide!(Wide, u8);
    wide!(WideToo, i8);

    #[test]
    fn long_descriptions_are_cut_and_still_fully_fingerprinted() {
        let wide = Wide::LAYOUT.description();
        assert!(wide.is_cut(), "{wide}");
        assert_eq!(wide.as_str().len(), Description::CAPACITY);
        assert!(wide.as_str().ends_with('…'));
        assert!(!WideToo::LAYOUT.description().as_str().contains("last"));
        // The fingerprint sees the field the description leaves out.
        assert_ne!(Wide::LAYOUT.fingerprint(), WideToo::LAYOUT.fingerprint());
        assert_eq!(
            WideToo::LAYOUT.first_difference(wide.as_str()),
            Some(Difference::Unrecorded)
        );
        // Any buffer holds a whole number of characters.
        for len in 0..40 {
            let mut out = vec![0u8; len];
            let written = Wide::LAYOUT.describe(&mut out);
            let text = std::str::from_utf8(&out[..written]).unwrap();
            assert!(written <= len);
            assert!(written < 3 || text.ends_with('…'), "{text:?}");
        }
    }

    /// Wherever a recorded description was cut, the comparison reports the difference
    /// if it lies before the cut, and that it cannot tell if it lies after.
    #[test]
    fn a_cut_anywhere_is_told_apart_from_a_difference() {
        let full = described::<Outer1>();
        let differs_at = full.find("b: u32").unwrap();
        for cut in (0..full.len()).filter(|&cut| full.is_char_boundary(cut)) {
            let theirs = format!("{}…", &full[..cut]);
            assert_eq!(
                Outer1::LAYOUT.first_difference(&theirs),
                Some(Difference::Unrecorded),
                "{theirs}"
            );
            let found = Outer2::LAYOUT.first_difference(&theirs);
            if cut > differs_at + "b: ".len() {
                assert_eq!(path(found), "inner.b", "{theirs}");
            } else {
                assert_eq!(found, Some(Difference::Unrecorded), "{theirs}");
            }
        }
    }

    /// A description read from a segment is whatever another program wrote there: any
    /// text gives an answer, never a panic.
    #[test]
    fn any_text_compares() {
        let known = described::<Known>();
        let layouts: [&Layout; 3] = [&Known::LAYOUT, &Outer1::LAYOUT, &<u8 as ShmSafe>::LAYOUT];
        let mut texts = vec![String::new(), "}".into(), "(((".into(), "…".into()];
        for cut in 0..known.len() {
            if known.is_char_boundary(cut) {
                texts.push(known[..cut].to_string());
                texts.push(format!("{}…", &known[..cut]));
            }
        }
        for layout in layouts {
            for text in &texts {
                let _ = layout.first_difference(text);
            }
        }
        assert_eq!(Known::LAYOUT.first_difference(""), Some(Difference::Type));
    }
}
