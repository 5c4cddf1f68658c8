//! Bad input and faults around segments: each gives a typed error, and nothing is lost.
//! Large values are made in place; a peer that truncates a segment gives an error, or
//! (sealed memfd) cannot truncate it at all.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, shm_open, MapFlags, ProtFlags};
use nix::sys::stat::{fstat, Mode};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::ftruncate;
use shmsync::{Array, Difference, Event, Process, Shared, ShmError, Value, FORMAT_VERSION};
use shmsync_tests::{daemon, join, join_thread, wait, ShmName, XorShift};
use std::ffi::CString;
use std::io::Read;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A segment made by some other program: `len` zero bytes.
fn raw(name: &ShmName, len: usize) -> OwnedFd {
    let path = CString::new(format!("/{}", name.0)).unwrap();
    let fd = shm_open(
        path.as_c_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .unwrap();
    nix::unistd::ftruncate(&fd, len as i64).unwrap();
    fd
}

/// Writes `bytes` at `offset` of a segment, as a foreign program might.
fn poke(fd: impl AsFd, offset: usize, bytes: &[u8]) {
    let len = NonZeroUsize::new(offset + bytes.len()).unwrap();
    // SAFETY: a fresh mapping of a file we own, written only here.
    let base = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            fd,
            0,
        )
    }
    .unwrap();
    // SAFETY: `offset + bytes.len()` bytes are mapped at `base`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            base.as_ptr().cast::<u8>().add(offset),
            bytes.len(),
        );
        nix::sys::mman::munmap(base, len.get()).unwrap();
    }
}

const SHORT: Duration = Duration::from_millis(50);

#[test]
fn invalid_names_are_refused() {
    for name in ["", "a/b", "/leading", "..", "sp ace", &"x".repeat(300)] {
        match Shared::create(name, Value::<u8>::new(0)) {
            Err(ShmError::InvalidName { name: got, reason }) => {
                assert_eq!(got, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
}

#[test]
fn opening_a_missing_name() {
    let name = ShmName::new("missing");
    let err = Shared::<Value<u32>>::open(&name.0, SHORT).unwrap_err();
    assert!(
        matches!(&err, ShmError::NotFound { name: n } if *n == name.0),
        "{err:?}"
    );
    assert!(err.to_string().contains(&name.0));
    assert!(matches!(
        Shared::<Value<u32>>::unlink(&name.0),
        Err(ShmError::NotFound { .. })
    ));
}

#[test]
fn creating_over_an_existing_name_keeps_the_original() {
    let name = ShmName::new("exists");
    let first = Shared::create(&name.0, Value::<u32>::new(7)).unwrap();
    let err = Shared::create(&name.0, Value::<u32>::new(8)).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(first.get(), 7);
    assert_eq!(Shared::<Value<u32>>::open(&name.0, SHORT).unwrap().get(), 7);
    assert!(
        name.exists(),
        "the failed create removed the original's name"
    );
}

#[test]
fn segments_are_private_to_their_user() {
    let name = ShmName::new("mode");
    let _segment = Shared::create(&name.0, Value::<u32>::new(0)).unwrap();
    let mode = nix::sys::stat::stat(format!("/dev/shm/{}", name.0).as_str())
        .unwrap()
        .st_mode;
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_wrong_type_is_refused() {
    let name = ShmName::new("type");
    let _segment = Shared::create(&name.0, Value::<u32>::new(1)).unwrap();
    match Shared::<Value<u64>>::open(&name.0, SHORT) {
        Err(ShmError::LayoutMismatch {
            expected,
            found,
            difference,
            ..
        }) => {
            assert_eq!(
                &*found.description,
                "Value<u32, Futex, Robust> (48 bytes, align 8)"
            );
            assert_eq!(
                &*expected.description,
                "Value<u64, Futex, Robust> (48 bytes, align 8)"
            );
            assert_eq!(difference, Some(Difference::Type));
        }
        other => panic!("{other:?}"),
    }
    // Same size and alignment again, another kind of type.
    match Shared::<Array<u8, 4>>::open(&name.0, SHORT) {
        Err(ShmError::LayoutMismatch {
            expected, found, ..
        }) => {
            assert_ne!(expected.fingerprint, found.fingerprint);
            assert_eq!(
                &*expected.description,
                "Array<u8, 4, Futex, Robust> (48 bytes, align 8)"
            );
        }
        other => panic!("{other:?}"),
    }
    // The same bytes, read as another scalar.
    assert!(matches!(
        Shared::<Value<f32>>::open(&name.0, SHORT),
        Err(ShmError::LayoutMismatch { .. })
    ));
}

mod a {
    shmsync::shm_struct! {
        #[derive(Debug)]
        pub struct Rec { pub x: shmsync::Value<u32>, pub flag: shmsync::Value<u8> }
    }
}
mod b {
    shmsync::shm_struct! {
        #[derive(Debug)]
        pub struct Rec { pub x: shmsync::Value<u32>, pub flag: shmsync::Value<bool> }
    }
}
mod c {
    shmsync::shm_struct! {
        #[derive(Debug)]
        pub struct Rec { pub x: shmsync::Value<u32>, pub flag: shmsync::Value<i8> }
    }
}
mod d {
    shmsync::shm_struct! {
        /// `a::Rec`, declared again by another program.
        #[derive(Debug)]
        pub struct Record { pub x: shmsync::Value<u32>, pub flag: shmsync::Value<u8> }
    }
}

/// Two programs each declare a `Rec`, with other fields: the check is no longer a hash
/// of the short name, size and alignment (which let these open), and the error says
/// which field differs.
#[test]
fn a_type_of_the_same_short_name_with_other_fields_is_refused_at_the_field() {
    let name = ShmName::new("short-name");
    let _segment = Shared::create(
        &name.0,
        a::Rec {
            x: Value::new(1),
            flag: Value::new(2),
        },
    )
    .unwrap();

    // Same size and alignment: a `Value<i8>` where the segment has a `Value<u8>`.
    let err = Shared::<c::Rec>::open(&name.0, SHORT).unwrap_err();
    match &err {
        ShmError::LayoutMismatch {
            difference: Some(Difference::Field(path)),
            ..
        } => assert_eq!(path.to_string(), "flag"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "segment {:?} holds `segments::a::Rec (96 bytes, align 8) {{ \
             x: Value<u32, Futex, Robust>@0, flag: Value<u8, Futex, Robust>@48 }}`, but \
             `segments::c::Rec (96 bytes, align 8) {{ x: Value<u32, Futex, Robust>@0, \
             flag: Value<i8, Futex, Robust>@48 }}` was asked for; they first differ at \
             field `flag`. Both programs must use the same \
             layout: the same fields in the same order, with the same types and backends \
             (struct names and modules may differ)",
            name.0
        )
    );

    // A `Value<u8>` is not a `Value<bool>`, though both hold a byte: another layout.
    let err = Shared::<b::Rec>::open(&name.0, SHORT).unwrap_err();
    assert!(err.to_string().contains("at field `flag`"), "{err}");
    assert!(
        err.to_string()
            .contains("flag: Value<bool, Futex, Robust>@48"),
        "{err}"
    );
}

/// What the bytes mean is fixed by the fields, not by what a program calls the struct.
#[test]
fn the_same_fields_under_another_name_open() {
    let name = ShmName::new("same-fields");
    let _segment = Shared::create(
        &name.0,
        a::Rec {
            x: Value::new(7),
            flag: Value::new(1),
        },
    )
    .unwrap();
    let other = Shared::<d::Record>::open(&name.0, SHORT).unwrap();
    assert_eq!((other.x.get(), other.flag.get()), (7, 1));
}

/// A `Value<bool>` whose byte another program set to 2 reads as `true` (C's rule),
/// and every operation goes by that reading.
#[test]
fn a_bool_byte_written_by_a_peer_reads_as_true() {
    let name = ShmName::new("bool");
    let segment = Shared::create(&name.0, Value::<bool>::new(false)).unwrap();
    // The value's byte follows its lock; written as another program would.
    // SAFETY: `Value` is `#[repr(C)]`: its lock, then an `AtomicU8`, written here through
    // an atomic as every writer of shared memory does.
    let byte = unsafe {
        &*(&*segment as *const Value<bool>)
            .cast::<u8>()
            .add(size_of::<shmsync::Lock>())
            .cast::<std::sync::atomic::AtomicU8>()
    };
    byte.store(2, Ordering::SeqCst);
    let other = Shared::<Value<bool>>::open(&name.0, SHORT).unwrap();
    assert!(other.get());
    assert!(segment.get());
    assert_eq!(other.compare_exchange(true, false), Ok(true));
    assert!(!segment.get());
    assert_eq!(byte.load(Ordering::SeqCst), 0);
}

#[test]
fn another_format_version_is_refused() {
    let name = ShmName::new("version");
    let segment = Shared::create(&name.0, Value::<u32>::new(1)).unwrap();
    poke(segment.fd().unwrap(), 8, &99u32.to_ne_bytes());
    match Shared::<Value<u32>>::open(&name.0, SHORT) {
        Err(ShmError::VersionMismatch {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (FORMAT_VERSION, 99));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_foreign_segment_is_refused() {
    let name = ShmName::new("foreign");
    let fd = raw(&name, 4096);
    poke(&fd, 0, b"not ours, some other program's data");
    assert!(matches!(
        Shared::<Value<u32>>::open(&name.0, SHORT),
        Err(ShmError::NotShmsync { .. })
    ));
    // Nor does `create` replace it, nor `unlink` remove it.
    assert!(matches!(
        Shared::create(&name, Value::<u32>::new(0)),
        Err(ShmError::NotShmsync { .. })
    ));
    assert!(matches!(
        Shared::<Value<u32>>::unlink(&name),
        Err(ShmError::NotShmsync { .. })
    ));
    assert!(name.exists());
}

#[test]
fn a_segment_still_being_created_times_out_with_an_error() {
    let name = ShmName::new("creating");
    let _fd = raw(&name, 0); // created, not yet sized: the creator is mid-way
    let began = Instant::now();
    match Shared::<Value<u32>>::open(&name.0, SHORT) {
        Err(ShmError::NotReady { waited, .. }) => assert!(waited >= SHORT),
        other => panic!("{other:?}"),
    }
    assert!(began.elapsed() >= SHORT);

    let name = ShmName::new("creating");
    let _fd = raw(&name, 4096); // sized, header not yet written
    assert!(matches!(
        Shared::<Value<u32>>::open(&name.0, SHORT),
        Err(ShmError::NotReady { .. })
    ));
}

#[test]
fn a_creator_killed_mid_creation_leaves_openers_an_error() {
    let name = ShmName::new("killed");
    let fd = raw(&name, 4096);
    // A creator that dies after sizing the segment: it never writes the header.
    let child = Process::spawn(|| {
        let _keep = &fd;
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
    child.kill().unwrap();
    assert!(join(child).signal().is_some());
    assert!(matches!(
        Shared::<Value<u32>>::open(&name.0, SHORT),
        Err(ShmError::NotReady { .. })
    ));
}

#[test]
fn a_truncated_segment_is_refused() {
    let name = ShmName::new("truncated");
    let segment = Shared::create(&name.0, Array::<u64, 64>::zeroed()).unwrap();
    segment.persist().unwrap();
    // Past the header, short of the value.
    nix::unistd::ftruncate(segment.fd().unwrap(), 4100).unwrap();
    drop(segment);
    match Shared::<Array<u64, 64>>::open(&name.0, SHORT) {
        Err(ShmError::SizeMismatch {
            expected, found, ..
        }) => {
            assert_eq!(found, 4100);
            assert!(expected > found);
        }
        other => panic!("{other:?}"),
    }
}

/// A header whose length or data offset another program overwrote: the error names
/// the field, what it records, what the type needs and the file's real size.
#[test]
fn a_damaged_header_field_is_named() {
    let name = ShmName::new("damaged-header");
    let segment = Shared::create(&name.0, Value::<u64>::new(0)).unwrap();
    let fd = segment.fd().unwrap();
    let len = fstat(fd).unwrap().st_size as u64;
    let cases = [(24, u64::MAX - 1, "length"), (32, 0, "data offset")];
    for (offset, recorded, field) in cases {
        let mut original = [0u8; 8];
        assert_eq!(pread(fd, &mut original, offset), Ok(8));
        assert_eq!(pwrite(fd, &recorded.to_ne_bytes(), offset), Ok(8));
        let err = Shared::<Value<u64>>::open(&name.0, SHORT).unwrap_err();
        let expected = u64::from_ne_bytes(original);
        match &err {
            ShmError::HeaderMismatch {
                field: named,
                recorded: r,
                expected: e,
                file_len,
                ..
            } => assert_eq!(
                (*named, *r, *e, *file_len),
                (field, recorded, expected, len)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "segment {:?}'s header records a {field} of {recorded} bytes, but the type \
                 it holds needs {expected} (the file has {len} bytes); another program \
                 wrote the header, or a build for another target made it",
                name.0
            )
        );
        assert_eq!(pwrite(fd, &original, offset), Ok(8));
    }
    drop(Shared::<Value<u64>>::open(&name.0, SHORT).unwrap());
}

/// A segment that is there but cannot be entered (another program holds its gate, the
/// lock on its first byte, exclusively) is not reported as a missing name.
#[test]
fn a_segment_held_exclusively_is_unavailable_not_missing() {
    let name = ShmName::new("held-gate");
    let segment = Shared::create(&name.0, Value::<u32>::new(1)).unwrap();
    segment.persist().unwrap();
    drop(segment);
    let file = name.hold_gate();
    let err = Shared::<Value<u32>>::open(&name.0, SHORT).unwrap_err();
    assert!(matches!(err, ShmError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("exists, but could not be entered"));
    drop(file);
    assert_eq!(Shared::<Value<u32>>::open(&name.0, SHORT).unwrap().get(), 1);
}

#[test]
fn persisted_names_outlive_their_creator_until_unlinked() {
    let name = ShmName::new("persist");
    {
        let segment = Shared::create(&name.0, Value::<i64>::new(-5)).unwrap();
        segment.persist().unwrap();
    }
    assert!(name.exists());
    assert_eq!(
        Shared::<Value<i64>>::open(&name.0, SHORT).unwrap().get(),
        -5
    );
    Shared::<Value<i64>>::unlink(&name.0).unwrap();
    assert!(!name.exists());
}

#[test]
fn forked_children_do_not_remove_the_parents_name() {
    let name = ShmName::new("fork");
    let segment = Shared::create(&name.0, Value::<u32>::new(0)).unwrap();
    let child = Process::spawn(|| {
        let reopened = Shared::<Value<u32>>::open(&name.0, SHORT).unwrap();
        reopened.fetch_add(1);
    })
    .unwrap();
    assert!(join(child).success());
    assert!(name.exists());
    assert_eq!(segment.get(), 1);
    drop(segment);
    assert!(!name.exists(), "the creator must remove its name on drop");
}

#[test]
fn memfd_segments_open_from_their_descriptor() {
    let segment = Shared::memfd("shmsync-test-memfd", Value::<u32>::new(3)).unwrap();
    let fd = segment.fd().unwrap().try_clone_to_owned().unwrap();
    let child = Process::spawn(move || {
        let other = Shared::<Value<u32>>::from_fd(fd, SHORT).unwrap();
        other.fetch_add(4);
    })
    .unwrap();
    assert!(join(child).success());
    assert_eq!(segment.get(), 7);
    let wrong = segment.fd().unwrap().try_clone_to_owned().unwrap();
    assert!(matches!(
        Shared::<Value<u8>>::from_fd(wrong, SHORT),
        Err(ShmError::LayoutMismatch { .. })
    ));
}

#[test]
fn programs_started_with_command_inherit_no_segment() {
    let name = ShmName::new("not-inherited");
    let named = Shared::create(&name.0, Value::<u32>::new(0)).unwrap();
    let memfd = Shared::memfd("shmsync-test-not-inherited", Value::<u32>::new(0)).unwrap();
    let mut shell = Command::new("sh")
        .args(["-c", "ls -l /proc/$$/fd"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait(&mut shell).success());
    let mut listing = String::new();
    shell
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut listing)
        .unwrap();
    assert!(listing.contains(" 2 -> "), "no listing: {listing}");
    for label in ["shmsync-test-not-inherited", name.0.as_str()] {
        assert!(
            !listing.contains(label),
            "the shell inherited segment {label}:\n{listing}"
        );
    }
    drop((named, memfd));
}

/// 64 MiB: far more than any thread's stack.
const BIG: usize = 64 << 20;
type Big = Array<u8, BIG>;

#[test]
fn big_values_are_made_in_place_not_on_the_stack() {
    let name = ShmName::new("big");
    // Its name only: the test, not a worker it may leave hung, removes the segment.
    let named_at = name.0.clone();
    // A stack far smaller than the value: building it there, or copying it through
    // there, overflows the stack, which aborts the test binary.
    let worker = std::thread::Builder::new()
        .stack_size(512 << 10)
        .spawn(move || {
            let anonymous = Shared::<Big>::anonymous_with(|a| a.set(BIG - 1, 1).unwrap()).unwrap();
            assert_eq!(anonymous.get(BIG - 1), Ok(1));
            assert_eq!(anonymous.get(0), Ok(0));

            let memfd =
                Shared::<Big>::memfd_with("shmsync-test-big", |a| a.set(0, 2).unwrap()).unwrap();
            let fd = memfd.fd().unwrap().try_clone_to_owned().unwrap();
            assert_eq!(Shared::<Big>::from_fd(fd, SHORT).unwrap().get(0), Ok(2));

            let named =
                Shared::<Big>::create_with(&named_at, |a| a.set(BIG / 2, 3).unwrap()).unwrap();
            let opened =
                Shared::<Big>::open_or_create(&named_at, SHORT, |_| panic!("it exists")).unwrap();
            assert_eq!(opened.get(BIG / 2), Ok(3));
            drop((opened, named));

            // Printed item by item: a debug print copies nothing to the stack.
            let small = Shared::<Array<u64, { 1 << 17 }>>::anonymous_with(|a| {
                a.set(1, 7).unwrap();
            })
            .unwrap();
            let printed = format!("{small:?}");
            assert!(printed.contains("[0, 7, 0, "), "{}", &printed[..100]);
            let guard = small.lock().unwrap();
            assert!(format!("{guard:?}").starts_with("ArrayGuard([0, 7, 0, "));
        })
        .unwrap();
    join_thread(worker);
}

/// `from_fd` maps only a file whose size is sealed: the same bytes as a good segment's
/// in a memfd left unsealed, or a named segment's descriptor, could be cut short by
/// whoever else holds them, and the mapping would raise `SIGBUS`.
#[test]
fn from_fd_refuses_a_descriptor_not_sealed_against_shrinking() {
    let sealed = Shared::memfd("shmsync-test-sealed-copy", Value::<u64>::new(3)).unwrap();
    let len = fstat(sealed.fd().unwrap()).unwrap().st_size;
    let mut bytes = vec![0u8; len as usize];
    assert_eq!(pread(sealed.fd().unwrap(), &mut bytes, 0), Ok(len as usize));
    let label = CString::new("shmsync-test-unsealed").unwrap();
    let unsealed = memfd_create(label.as_c_str(), MFdFlags::MFD_CLOEXEC).unwrap();
    assert_eq!(pwrite(&unsealed, &bytes, 0), Ok(len as usize));
    let refused = Shared::<Value<u64>>::from_fd(unsealed, SHORT).unwrap_err();
    assert!(matches!(refused, ShmError::Unsealed { .. }), "{refused}");
    assert!(refused.to_string().contains("not sealed against shrinking"));

    let name = ShmName::new("from-fd-named");
    let named = Shared::create(&name.0, Value::<u64>::new(3)).unwrap();
    let fd = named.fd().unwrap().try_clone_to_owned().unwrap();
    assert!(matches!(
        Shared::<Value<u64>>::from_fd(fd, SHORT),
        Err(ShmError::Unsealed { .. })
    ));

    // The sealed original maps.
    let fd = sealed.fd().unwrap().try_clone_to_owned().unwrap();
    assert_eq!(Shared::<Value<u64>>::from_fd(fd, SHORT).unwrap().get(), 3);
}

#[test]
fn memfd_segments_are_sealed_against_resizing() {
    let segment = Shared::memfd("shmsync-test-sealed", Value::<u64>::new(0)).unwrap();
    let fd = segment.fd().unwrap();
    let len = fstat(fd).unwrap().st_size;
    for to in [0, 100, len - 1, len + 4096] {
        assert_eq!(ftruncate(fd, to), Err(Errno::EPERM), "resized to {to}");
    }
    // Nor can a peer add a write seal, which would keep later openers from mapping it.
    assert_eq!(
        fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_FUTURE_WRITE)),
        Err(Errno::EPERM)
    );
    assert_eq!(fstat(fd).unwrap().st_size, len);
    segment.set(5);
    assert_eq!(segment.get(), 5);
}

#[test]
fn users_of_a_memfd_segment_survive_a_peer_that_truncates_it() {
    type Data = Array<u64, 512>;
    let segment = Shared::memfd("shmsync-test-truncated-memfd", Data::zeroed()).unwrap();
    let stop = Shared::anonymous(Event::new()).unwrap();
    let fd = segment.fd().unwrap();
    // Daemons: if the test fails first, the truncator (which runs until told to stop)
    // and the users still running are killed, not waited for.
    let truncator = daemon(
        Process::spawn(|| {
            while !stop.is_set() {
                for to in [0, 8, 4096] {
                    assert_eq!(ftruncate(fd, to), Err(Errno::EPERM));
                }
            }
        })
        .unwrap(),
    );
    let users: Vec<Process> = (0..3u64)
        .map(|user| {
            let segment = &segment;
            daemon(
                Process::spawn(move || {
                    for round in 0..300 {
                        let fd = segment.fd().unwrap().try_clone_to_owned().unwrap();
                        let mine = Shared::<Data>::from_fd(fd, SHORT).unwrap();
                        mine.set(user as usize, round).unwrap();
                        assert_eq!(mine.get(user as usize), Ok(round));
                    }
                })
                .unwrap(),
            )
        })
        .collect();
    for user in users {
        // Killed by SIGBUS, it would end with a signal.
        assert!(join(user).success());
    }
    stop.set();
    assert!(join(truncator).success());
    assert_eq!(segment.get(0), Ok(299));
}

#[test]
fn open_never_crashes_on_a_segment_a_peer_truncates() {
    type Data = Array<u64, 512>;
    let name = ShmName::new("truncating");
    // This process never touches the segment's memory while it is truncated.
    let segment = Shared::create(&name, Data::zeroed()).unwrap();
    let fd = segment.fd().unwrap();
    let len = fstat(fd).unwrap().st_size;
    let mut original = vec![0u8; len as usize];
    assert_eq!(pread(fd, &mut original, 0), Ok(len as usize));
    let restore = || {
        ftruncate(fd, len).unwrap();
        assert_eq!(pwrite(fd, &original, 0), Ok(len as usize));
    };

    ftruncate(fd, 100).unwrap();
    match Shared::<Data>::open(&name, SHORT) {
        Err(ShmError::SizeMismatch {
            expected, found, ..
        }) => assert_eq!((expected, found), (len as u64, 100)),
        other => panic!("{other:?}"),
    }
    restore();
    drop(Shared::<Data>::open(&name, SHORT).unwrap());

    // A peer truncates it again and again (and puts it back) while others open it.
    let stop = Shared::anonymous(Event::new()).unwrap();
    // Daemons: if the test fails first, the truncator (which runs until told to stop)
    // and the openers still running are killed, not waited for.
    let truncator = daemon(
        Process::spawn(|| {
            let mut random = XorShift(0x7256_0001);
            while !stop.is_set() {
                let to = [0, 8, 100, 4096, len - 8][random.below(5) as usize];
                ftruncate(fd, to).unwrap();
                std::thread::sleep(Duration::from_micros(random.below(200)));
                restore();
            }
        })
        .unwrap(),
    );
    let openers: Vec<Process> = (0..3)
        .map(|_| {
            daemon(
                Process::spawn(|| {
                    for _ in 0..300 {
                        // Opened or refused, never killed; what was opened is not
                        // touched, since the peer may cut it at any moment.
                        match Shared::<Data>::open(&name, Duration::from_millis(2)) {
                            Ok(opened) => drop(opened),
                            Err(ShmError::Os { .. }) => panic!("a system call failed"),
                            Err(_) => {}
                        }
                    }
                })
                .unwrap(),
            )
        })
        .collect();
    for opener in openers {
        let status = join(opener);
        assert!(status.success(), "an opener ended with {status:?}");
    }
    stop.set();
    assert!(join(truncator).success());
}

#[test]
fn create_never_replaces_a_segment_of_another_version() {
    let name = ShmName::new("older-create");
    let fd = raw(&name, 4096);
    poke(&fd, 0, b"SHMSYNC\0");
    poke(&fd, 8, &1u32.to_ne_bytes());
    match Shared::create(&name, Value::<u32>::new(0)) {
        Err(error @ ShmError::VersionMismatch { found: 1, .. }) => {
            assert!(error.to_string().contains("older shmsync"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert!(name.exists());
}

#[test]
fn main_returning_an_error_prints_its_message() {
    let name = ShmName::new("main");
    let mut program = Command::new(env!("CARGO_BIN_EXE_shmsync-open"))
        .args([&name.0, "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(!wait(&mut program).success());
    let mut printed = String::new();
    program
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    let error = Shared::<Value<u64>>::open(&name, Duration::ZERO).unwrap_err();
    assert_eq!(printed, format!("Error: {error}\n"));
    assert_eq!(format!("{error:?}"), error.to_string());
}
