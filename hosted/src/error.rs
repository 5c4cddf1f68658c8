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
/// use shmsync::{Shared, ShmError};
/// use std::time::Duration;
///
/// let err = Shared::<u64>::open("shmsync-doc-no-such-segment", Duration::ZERO).unwrap_err();
/// assert!(matches!(err, ShmError::NotFound { .. }));
/// println!("{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmError {
    /// The name cannot name a segment.
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` found a segment of that name already.
    AlreadyExists {
        /// The segment's name.
        name: String,
    },
    /// `open` found no segment of that name.
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
    /// Its creator had not finished initialising it within the timeout (or died
    /// while doing so).
    NotReady {
        /// The segment's name.
        name: String,
        /// How long `open` waited.
        waited: Duration,
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
                "a segment named {name:?} already exists; open it, or remove it with \
                 Shared::unlink if it is left over"
            ),
            ShmError::NotFound { name } => write!(
                f,
                "no segment named {name:?}; is the creating process running, and is the \
                 name spelt the same?"
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
                "segment {name:?} has format version {found}, this program reads version \
                 {expected}; build both programs with the same shmsync"
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
            ShmError::NotReady { name, waited } => write!(
                f,
                "segment {name:?} was still being initialised after {waited:?}; its \
                 creator is slow or died while creating it"
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

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}
