//! Errors of shared-memory segments: each says what was expected, what was found, and
//! what to do.

use std::fmt;
use std::io;
use std::time::Duration;

use shmsync_core::Difference;

use crate::identity::TypeRecord;

/// Why a shared-memory segment could not be created, opened or mapped.
///
/// # Example
///
/// ```
/// use shmsync::{Shared, ShmError, Value};
/// use std::time::Duration;
///
/// let err = Shared::<Value<u64>>::open("shmsync-doc-no-such-segment", Duration::ZERO).unwrap_err();
/// assert!(matches!(err, ShmError::NotFound { .. }));
/// // Both forms print the message, so `main` returning the error prints it too.
/// assert_eq!(format!("{err:?}"), err.to_string());
/// assert!(err.to_string().starts_with("no segment named \"shmsync-doc-no-such-segment\""));
/// ```
#[non_exhaustive]
pub enum ShmError {
    /// The name cannot name a segment.
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` found a segment of that name in use, or kept on purpose
    /// ([`Unlink::Never`](crate::Unlink::Never)).
    AlreadyExists {
        /// The segment's name.
        name: String,
    },
    /// `open` found no segment of that name within its timeout.
    NotFound {
        /// The segment's name.
        name: String,
    },
    /// The segment exists but this user may not open it.
    PermissionDenied {
        /// The segment's name.
        name: String,
    },
    /// The segment does not start with shmsync's header: another program made it.
    NotShmsync {
        /// The segment's name.
        name: String,
    },
    /// The segment was made by an incompatible version of shmsync.
    VersionMismatch {
        /// The segment's name.
        name: String,
        /// The format version this program reads.
        expected: u32,
        /// The version in the segment.
        found: u32,
    },
    /// The segment holds another type than the one asked for: their layouts'
    /// fingerprints differ (see [`Layout`](crate::Layout) for what counts).
    LayoutMismatch {
        /// The segment's name.
        name: String,
        /// The type asked for.
        expected: TypeRecord,
        /// The type the segment holds, as its creator recorded it.
        found: TypeRecord,
        /// Where the two first differ; `None` if their descriptions agree, and they
        /// differ only in what descriptions do not show.
        difference: Option<Difference>,
    },
    /// The segment's size disagrees with its header: it was truncated or resized by
    /// another program.
    SizeMismatch {
        /// The segment's name.
        name: String,
        /// The bytes its header calls for.
        expected: u64,
        /// The bytes it has.
        found: u64,
    },
    /// The segment's header records a length or a data offset other than the one
    /// its type (whose layout matches) needs: another program wrote the header, or a
    /// build for another target made it.
    HeaderMismatch {
        /// The segment's name.
        name: String,
        /// Which of the header's fields disagrees: `"length"` or `"data offset"`.
        field: &'static str,
        /// What the header records.
        recorded: u64,
        /// What the type needs.
        expected: u64,
        /// The bytes the segment's file has.
        file_len: u64,
    },
    /// A descriptor handed to [`Shared::from_fd`](crate::Shared::from_fd) whose size
    /// is not sealed against shrinking (a named segment's, or an unsealed memfd):
    /// whoever else holds it could shrink the file and crash this process with
    /// `SIGBUS`.
    Unsealed {
        /// The label it was handed under.
        name: String,
    },
    /// The name led to a segment, but `open` could not enter it within the timeout:
    /// another process held its gate exclusively (removing it, looking whether it is
    /// stale, or a program holding a lock on its file), or it was removed each time
    /// it was looked at.
    Unavailable {
        /// The segment's name.
        name: String,
        /// How long `open` tried.
        waited: Duration,
    },
    /// Its creator had not finished initialising it within the timeout.
    NotReady {
        /// The segment's name.
        name: String,
        /// How long `open` waited.
        waited: Duration,
    },
    /// Its creator died before it finished initialising it, and nobody has replaced
    /// it (`create` or `open_or_create` would) within the timeout.
    Abandoned {
        /// The segment's name.
        name: String,
    },
    /// There is no room for the segment (a full `/dev/shm`, or a memory limit).
    NoSpace {
        /// The segment's name.
        name: String,
        /// The bytes asked for.
        bytes: u64,
    },
    /// Another system call failed.
    Os {
        /// What was being done.
        operation: &'static str,
        /// The segment's name.
        name: String,
        /// The system's error.
        source: io::Error,
    },
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::InvalidName { name, reason } => {
                write!(f, "{name:?} is not a valid segment name: {reason}")
            }
            ShmError::AlreadyExists { name } => write!(
                f,
                "a segment named {name:?} already exists and is in use (or kept with \
                 Unlink::Never); open it, or choose another name"
            ),
            ShmError::NotFound { name } => write!(
                f,
                "no segment named {name:?}; is the creating process running, and is the \
                 name spelt the same?"
            ),
            ShmError::Abandoned { name } => write!(
                f,
                "segment {name:?} was left half-made by a creator that died; create it \
                 again (Shared::create reclaims the name)"
            ),
            ShmError::PermissionDenied { name } => write!(
                f,
                "no permission to open segment {name:?}; segments are created with mode \
                 0600, readable only by the creating user"
            ),
            ShmError::NotShmsync { name } => write!(
                f,
                "segment {name:?} was not created by shmsync (no shmsync header)"
            ),
            ShmError::VersionMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "segment {name:?} has format version {found}, and this program reads \
                 version {expected}: {}",
                if found > expected {
                    "it was made by a newer shmsync; build this program with it too"
                } else {
                    "it was made by an older shmsync; build its maker with this one, or \
                     remove the segment (Shared::unlink) and create it again"
                }
            ),
            ShmError::LayoutMismatch {
                name,
                expected,
                found,
                difference,
            } => {
                write!(
                    f,
                    "segment {name:?} holds {found}, but {expected} was asked for"
                )?;
                match difference {
                    Some(difference) => write!(
                        f,
                        "; they first differ {difference}. Both programs must use the \
                         same layout: the same fields in the same order, with the same \
                         types and backends (struct names and modules may differ)"
                    ),
                    None => write!(
                        f,
                        "; the descriptions agree, but the fingerprints ({:#018x} and \
                         {:#018x}) do not: a size or alignment inside differs. Build \
                         both programs for the same target with the same shmsync",
                        found.fingerprint, expected.fingerprint
                    ),
                }
            }
            ShmError::SizeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "segment {name:?} has {found} bytes but its header calls for {expected}; \
                 another program truncated or resized it"
            ),
            ShmError::HeaderMismatch {
                name,
                field,
                recorded,
                expected,
                file_len,
            } => write!(
                f,
                "segment {name:?}'s header records a {field} of {recorded} bytes, but the \
                 type it holds needs {expected} (the file has {file_len} bytes); another \
                 program wrote the header, or a build for another target made it"
            ),
            ShmError::Unsealed { name } => write!(
                f,
                "the descriptor handed as segment {name:?} is not sealed against \
                 shrinking: whoever else holds it could cut the file short and crash this \
                 process with SIGBUS. Hand a segment made by Shared::memfd, which is \
                 sealed, and open a named segment by its name"
            ),
            ShmError::Unavailable { name, waited } => write!(
                f,
                "segment {name:?} exists, but could not be entered for {waited:?}: \
                 another process held it exclusively (removing it, or a program locking \
                 its file), or it was removed each time it was looked at; try again, or \
                 look for the process that holds /dev/shm/{name}"
            ),
            ShmError::NotReady { name, waited } => write!(
                f,
                "segment {name:?} was still being initialised after {waited:?}; its \
                 creator is slow, or stopped"
            ),
            ShmError::NoSpace { name, bytes } => write!(
                f,
                "no room for the {bytes} bytes of segment {name:?}; /dev/shm or the \
                 memory limit is full"
            ),
            ShmError::Os {
                operation,
                name,
                source,
            } => {
                write!(f, "{operation} failed for segment {name:?}: {source}")
            }
        }
    }
}

/// The message, as `Display` writes it: what `main` prints when it returns the error.
impl fmt::Debug for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}
