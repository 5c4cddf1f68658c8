//! Which type a segment holds: what its header records (the type's layout fingerprint
//! and readable description, see [`shmsync_core::Layout`]) and the check an opener
//! makes against it.

use std::fmt;

use shmsync_core::{Description, ShmSafe};

use crate::error::ShmError;

/// How many bytes a header keeps for the description: all of any [`Description`].
pub(crate) const DESCRIPTION_LEN: usize = Description::CAPACITY;

/// A type as a segment's header records it.
///
/// # Example
///
/// ```
/// use shmsync::{Shared, ShmError, Value};
/// use std::time::Duration;
///
/// # let name = format!("shmsync-doc-type-record-{}", std::process::id());
/// let _segment = Shared::create(&name, Value::<u32>::new(1))?;
/// match Shared::<Value<f64>>::open(&name, Duration::from_secs(1)) {
///     Err(ShmError::LayoutMismatch { expected, found, .. }) => {
///         assert_eq!(&*found.description, "Value<u32, Futex, Robust> (48 bytes, align 8)");
///         assert_eq!(&*expected.description, "Value<f64, Futex, Robust> (48 bytes, align 8)");
///         assert_ne!(expected.fingerprint, found.fingerprint);
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), ShmError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRecord {
    /// The layout's [fingerprint](shmsync_core::Layout::fingerprint), which opening
    /// compares.
    pub fingerprint: u64,
    /// The layout's [description](shmsync_core::Layout::describe), for people. One a
    /// segment's header recorded is another program's bytes: read as UTF-8 (lossily),
    /// with control characters escaped (`\u{1b}`), so that it prints safely.
    pub description: Box<str>,
}

impl fmt::Display for TypeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.description)
    }
}

/// What a segment holding `T` records in its header: `T`'s layout fingerprint and its
/// description, both computed at compile time.
pub(crate) fn type_identity<T: ShmSafe>() -> (u64, &'static Description) {
    (
        const { T::LAYOUT.fingerprint() },
        const { &T::LAYOUT.description() },
    )
}

/// Checks that the segment `segment`, whose header records `fingerprint` and the
/// `description` bytes (as written there, by whatever program made it), holds a `T`.
pub(crate) fn check_type<T: ShmSafe>(
    segment: &str,
    fingerprint: u64,
    description: &[u8],
) -> Result<(), ShmError> {
    let (expected, ours) = type_identity::<T>();
    if fingerprint == expected {
        return Ok(());
    }
    // Another program's bytes: up to the padding, and not necessarily UTF-8.
    let end = description
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(description.len());
    let theirs = String::from_utf8_lossy(&description[..end]);
    Err(ShmError::LayoutMismatch {
        name: segment.to_owned(),
        difference: T::LAYOUT.first_difference(&theirs),
        expected: TypeRecord {
            fingerprint: expected,
            description: ours.as_str().into(),
        },
        found: TypeRecord {
            fingerprint,
            description: printable(&theirs).into(),
        },
    })
}

/// `text` (another program's) with its control characters escaped (`\u{1b}`, `\n`), so
/// that printing it cannot move a terminal's cursor, change its colours or hide text.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `description` as the bytes of a header's field: zero after its end.
pub(crate) fn description_bytes(description: &Description) -> [u8; DESCRIPTION_LEN] {
    let mut bytes = [0; DESCRIPTION_LEN];
    let text = description.as_str().as_bytes();
    bytes[..text.len()].copy_from_slice(text);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, BoundedSemaphore, Event, Lock, Semaphore, Value};
    use shmsync_core::Difference;

    fn described<T: ShmSafe>() -> &'static str {
        type_identity::<T>().1.as_str()
    }

    #[test]
    fn the_hosted_types_describe_their_backends() {
        assert_eq!(
            described::<Lock>(),
            "Lock<Futex, Robust> (40 bytes, align 8)"
        );
        assert_eq!(described::<Event>(), "Event<Futex> (4 bytes, align 4)");
        assert_eq!(
            described::<Value<i32>>(),
            "Value<i32, Futex, Robust> (48 bytes, align 8)"
        );
        assert_eq!(
            described::<Array<u8, 3>>(),
            "Array<u8, 3, Futex, Robust> (48 bytes, align 8)"
        );
        let semaphore = size_of::<Semaphore>();
        assert_eq!(
            described::<Semaphore>(),
            format!("TrackedSemaphore<Futex, Robust> ({semaphore} bytes, align 8)")
        );
        assert_eq!(
            described::<BoundedSemaphore>(),
            format!("TrackedBoundedSemaphore<Futex, Robust> ({semaphore} bytes, align 8)")
        );
        // The robust owner's lock is another layout than an owner-less one's, even
        // where the sizes agree.
        assert_ne!(
            type_identity::<Lock>().0,
            type_identity::<shmsync_core::Lock<crate::Futex, shmsync_core::Unowned>>().0
        );
    }

    crate::shm_struct! {
        struct Stats { lock: Lock, count: Value<u64>, ids: [u32; 4] }
    }

    #[test]
    fn a_struct_describes_its_fields() {
        assert_eq!(
            described::<Stats>(),
            "shmsync::identity::tests::Stats (104 bytes, align 8) { \
             lock: Lock<Futex, Robust>@0, count: Value<u64, Futex, Robust>@40, \
             ids: [u32; 4]@88 }"
        );
    }

    #[test]
    fn a_header_holds_a_whole_description() {
        let (_, description) = type_identity::<Stats>();
        let bytes = description_bytes(description);
        assert!(bytes.starts_with(description.as_str().as_bytes()));
        assert!(bytes[description.as_str().len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_same_fingerprint_opens() {
        let (fingerprint, _) = type_identity::<Stats>();
        assert!(check_type::<Stats>("s", fingerprint, b"anything").is_ok());
    }

    /// The description is another program's bytes: any bytes make an error that
    /// prints.
    #[test]
    fn any_recorded_bytes_make_a_readable_error() {
        let (fingerprint, _) = type_identity::<Stats>();
        let cases: [&[u8]; 4] = [b"", b"\xff\xfe not text", b"Stats (1 bytes", &[b'x'; 600]];
        for bytes in cases {
            match check_type::<Stats>("s", fingerprint ^ 1, bytes) {
                Err(error @ ShmError::LayoutMismatch { .. }) => {
                    assert!(error.to_string().starts_with("segment \"s\" holds `"))
                }
                other => panic!("{other:?}"),
            }
        }
        // A terminal's escape sequences and line breaks come out escaped.
        match check_type::<Stats>("s", fingerprint ^ 1, b"Stats\x1b[2J\r\nok\x07") {
            Err(error @ ShmError::LayoutMismatch { .. }) => assert!(
                error
                    .to_string()
                    .contains(r"holds `Stats\u{1b}[2J\r\nok\u{7}`"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
        // The same description under another fingerprint: something unshown differs.
        let (_, description) = type_identity::<Stats>();
        match check_type::<Stats>("s", fingerprint ^ 1, &description_bytes(description)) {
            Err(
                error @ ShmError::LayoutMismatch {
                    difference: None, ..
                },
            ) => assert!(
                error.to_string().contains("the descriptions agree"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
        // A description that stops short of the difference.
        match check_type::<Stats>("s", fingerprint ^ 1, "shmsync::identity::tests::Stats (104 bytes, align 8) { lock: Lock<Futex, Robust>@0, cou…".as_bytes()) {
            Err(ShmError::LayoutMismatch {
                difference: Some(Difference::Unrecorded), ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
