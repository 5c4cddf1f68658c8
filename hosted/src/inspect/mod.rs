//! Seeing into named segments from outside, without attaching to them: who is
//! attached, who holds what, and removing names nobody uses. The `shmsync` command
//! (the `shmsync-cli` crate) is built on it.
//!
//! - [`names`] lists `/dev/shm`; [`Segment::look`] reads one name's header and
//!   participant table through its file, and [`Segment::read_value`] its value, part by
//!   part ([`Part`]), as the description in its header lays it out.
//! - [`remove`] removes a name by the rules [`Shared::create`](crate::Shared::create)
//!   follows to reclaim a stale one.
//! - [`TypeDescription`] reads a layout's description back into a tree, and [`verify`]
//!   checks the tree against the fingerprint beside it.
//!
//! Nothing here takes a lock, maps a file or waits: files are read with `pread` and
//! `fstat`, leases queried with `F_OFD_GETLK`. What is shown is what the bytes say,
//! read while the participants go on: a lock's word tells that somebody waits, not how
//! many; a holder is a thread id in its own PID namespace; a participant is attached
//! while the kernel keeps its lease, and one whose lease is gone without it having left
//! was killed, crashed or `exec`ed.
//!
//! # Example
//!
//! ```
//! use shmsync::inspect::{names, Segment};
//! use shmsync::{Shared, Value};
//! # let name = format!("shmsync-doc-inspect-{}", std::process::id());
//!
//! let _counter = Shared::create(&name, Value::<u64>::new(5))?;
//! assert!(names()?.contains(&name));
//! let seen = Segment::look(&name)?;
//! let value = seen.read_value(&Default::default())?;
//! assert_eq!(value.root.to_string(), "Value<u64> = 5");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod description;
mod fingerprint;
mod known;
pub(crate) mod reading;

pub use crate::shm::{
    names, remove, Condition, Contents, ParticipantRecord, RemoveIf, Removed, Segment,
    SegmentHeader, ValueError, ValueReading,
};
pub use description::{FieldNode, ParseError, TypeArg, TypeDescription, TypeNode};
pub use fingerprint::{verify, Verification};
pub use reading::{holdings, HolderIds, LockView, Part, PartState, ScalarValue, Unreadable};
pub use shmsync_core::{Holding, LockState, QueueState, SemaphoreState};

/// How much of a value [`Segment::read_value`] reads.
///
/// # Example
///
/// ```
/// let options = shmsync::inspect::ReadOptions::default().with_max_items(8);
/// assert_eq!(options.max_items, 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The most items of an array, or elements of an array of structs, read (64).
    pub max_items: usize,
    /// The most parts read in all (10,000): arrays of arrays of structs multiply, and a
    /// description is another program's.
    pub max_parts: usize,
}

impl ReadOptions {
    /// These options, reading at most `max_items` items of each array.
    pub fn with_max_items(self, max_items: usize) -> ReadOptions {
        ReadOptions { max_items, ..self }
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_items: 64,
            max_parts: 10_000,
        }
    }
}
