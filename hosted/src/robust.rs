//! Lock owners as the kernel knows them: Linux thread ids, and the thread's robust-futex
//! list, through which the kernel itself marks a lock whose holder died.
//!
//! Every Linux thread may register one list of the robust futexes it holds
//! (`set_robust_list(2)`). When the thread exits, is killed or calls `exec`, the kernel
//! walks the list and, for each futex word whose owner bits hold the thread's id (in the
//! thread's own PID namespace), sets `FUTEX_OWNER_DIED`, clears the id and wakes a
//! waiter. That is the whole liveness mechanism: no waiter ever asks whether an owner
//! lives, so nothing depends on `/proc`, on file descriptors, on which PID namespace
//! the waiter is in, or on ids being reused. `docs/ownership.md` in the repository has the
//! designs that lost and what this one does not cover.
//!
//! glibc registers one list per thread and keeps its robust mutexes on it, and the
//! kernel takes only one. So a held shmsync lock is put on glibc's list, in a run of
//! nodes of our own between two sentinel nodes that glibc sees as two quiet neighbours:
//!
//! ```text
//! head → … glibc's … → OPEN → lock₁ → node₁ → lock₂ → node₂ → CLOSE → … glibc's … → head
//! ```
//!
//! The kernel finds a lock's word 32 bytes before its entry (glibc's offset, which the
//! list's head fixes for every entry), so each lock keeps the entry (a `next` pointer)
//! 32 bytes after its word. Every held lock is followed by a node in this thread's own
//! memory, so that unlinking a lock writes only this thread's memory, never another
//! lock's. A node's own "word" is 0, never a thread id, so the kernel passes over it.
//! At a thread's exit, before the kernel walks its list, every entry is checked, and
//! one whose lock is no longer as the thread left it (freed, moved, or rewritten by a
//! peer) is taken off: the kernel then writes only into locks.

use std::cell::Cell;
use std::sync::atomic::{
    compiler_fence, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use shmsync_core::{DistinctIds, Owner, ShmSafe, Wait};

/// Records lock owners by Linux thread id and has the kernel mark a lock whose holder
/// died (see [`shmsync_core::Lock`]). The owner backend of [`Lock`](crate::Lock).
///
/// A lock's owner is a thread: its guard cannot move to another thread, and a thread
/// that exits holding it has died holding it. Each thread may hold up to 32 locks at
/// once, released in any order (a 33rd lock call panics, before it takes anything).
///
/// Where the thread's robust list cannot be used (a C library other than glibc, or a
/// 32-bit target), locks still exclude and release as always, but a holder's death is
/// not detected: a waiter waits (its timeout still ends the wait). [`Robust::detects_deaths`]
/// tells which.
///
/// # Example
///
/// ```
/// use shmsync::{Futex, Robust};
/// use shmsync_core::Lock;
///
/// let lock: Lock<Futex, Robust> = Lock::new(); // what `shmsync::Lock` is
/// drop(lock.lock().unwrap());
/// assert_eq!(std::mem::size_of_val(&lock), 40);
/// ```
pub struct Robust;

/// A lock's entry on its holder's robust list: 32 bytes after the lock's word, as the
/// list's head says, with the bytes between unused (and zero).
///
/// The `next` pointer is meaningful only in the holder's address space and only while it
/// holds the lock; other processes never read it.
#[repr(C, align(8))]
pub struct RobustRecord {
    _unused: [AtomicU32; 6],
    next: AtomicUsize,
}

// SAFETY: `#[repr(C)]` atomics only, valid for every byte pattern; nothing in this
// process ever follows `next` (only the kernel does, with its own checks).
unsafe impl ShmSafe for RobustRecord {
    const LAYOUT: shmsync_core::Layout =
        shmsync_core::Layout::opaque::<Self>("shmsync::RobustRecord").accessed_atomically();
}

/// Where a lock keeps its entry: 8 (the record after the 4-byte word, aligned to 8) plus
/// 24 (`next` in the record) is glibc's 32.
const ENTRY_AFTER_WORD: usize = 32;
const _: () = assert!(std::mem::offset_of!(RobustRecord, next) == ENTRY_AFTER_WORD - 8);
const _: () = assert!(std::mem::size_of::<shmsync_core::Lock<crate::Futex, Robust>>() == 40);

/// The kernel's `struct robust_list_head`.
#[repr(C)]
struct ListHead {
    list: AtomicUsize,
    futex_offset: AtomicIsize,
    pending: AtomicUsize,
}

/// A node of the list in this thread's own memory, laid out as glibc lays out the
/// list part of a mutex: a back link (which glibc writes in the sentinels) at 24, the
/// entry (`next`) at 32, and 0 where the kernel looks for a futex word.
#[repr(C, align(8))]
struct Node {
    word: AtomicU32,
    _unused: [u32; 5],
    prev: AtomicUsize,
    next: AtomicUsize,
}

impl Node {
    const fn new() -> Node {
        Node {
            word: AtomicU32::new(0),
            _unused: [0; 5],
            prev: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// The address the list links to: the node's `next` field.
    fn entry(&self) -> usize {
        &self.next as *const AtomicUsize as usize
    }
}

// The lock word's bits that the kernel reads and writes (see `shmsync_core::Lock`).
const WAITERS: u32 = 1 << 31;
const OWNER_DIED: u32 = 1 << 30;
const ID: u32 = (1 << 30) - 1;

/// How many locks a thread may hold at once.
const SLOTS: usize = 32;

/// This thread's part of the robust list, and what it holds.
///
/// The held locks sit in slots in the order of the list, which runs down them:
///
/// ```text
/// OPEN → lock[n-1] → node[n-1] → … → lock[0] → node[0] → CLOSE
/// ```
///
/// so that lock `i`'s entry points at `node[i]`, and `node[i]` at the next held lock
/// below (or at CLOSE). Taking a lock puts it on top; releasing the top one is one store
/// (`OPEN` skips it). Releasing another rewrites only a node of ours (the one above
/// it), and leaves its slot empty: the next lock taken fills the lowest empty slot, in
/// place in the list, and the top shrinks past empty slots.
///
/// It lives in static thread-local storage (no destructor) so that it stays valid
/// until the kernel has walked the list at the thread's exit. A forked child inherits
/// the forking thread's copy; see [`Thread::ready`].
///
/// What a lock and an unlock touch sits in few cache lines: the first line holds
/// `open`, `shape`, `pending` and `tid`, and each slot has a line of its own
/// (every store before the lock's compare-and-swap or swap must drain first, and a
/// store to a line already written is the cheapest kind).
#[repr(C, align(64))]
struct Thread {
    open: Node,
    /// Which slots are filled, in one word so that the common cases take one
    /// comparison: the low 32 bits are the depth (one past the highest filled slot),
    /// the high 32 the empty slots below it (one bit each). So it is below [`SLOTS`]
    /// exactly when the next lock goes on top of a stack without holes, [`SLOTS`]
    /// exactly when the table is full, and `slot + 1` exactly when `slot` is the top of
    /// a stack without holes.
    shape: Cell<u64>,
    /// The `list_op_pending` slot of the registered head, or `no_list` where deaths
    /// are not detected.
    pending: Cell<*const AtomicUsize>,
    tid: Cell<u32>,
    /// The process this state was set up in (see [`process_generation`]).
    generation: Cell<u64>,
    /// Where the process's generation is kept: [`NEVER`] until set up.
    process: Cell<*const AtomicU64>,
    no_list: AtomicUsize,
    close: Node,
    /// A head of our own, for a thread that has none registered (a child of a raw
    /// `clone`).
    own_head: ListHead,
    slots: [Slot; SLOTS],
}

/// A place for one held lock: the node that follows it on the list, the lock's entry
/// (0: empty) and its hold, in one cache line.
///
/// A hold is the slot's number in its low 5 bits (`hold % SLOTS`) and, above them, a
/// count of the slot's holds: each new hold adds [`SLOTS`], so that a guard finds its
/// slot without a bounds check and no two holds of a slot in a thread's life are equal
/// (2^59 of them would be needed to wrap).
#[repr(C, align(64))]
struct Slot {
    follower: Node,
    held: Cell<usize>,
    hold: Cell<u64>,
}

impl Slot {
    /// A hold of this slot that differs from every earlier one (see [`Slot`]).
    #[inline]
    fn new_hold(&self) -> u64 {
        let hold = self.hold.get().wrapping_add(SLOTS as u64);
        self.hold.set(hold);
        hold
    }

    /// The slot numbered `index`, with no hold yet.
    const fn new(index: usize) -> Slot {
        Slot {
            follower: Node::new(),
            held: Cell::new(0),
            hold: Cell::new(index as u64),
        }
    }

    /// The slots of a fresh thread.
    const fn table() -> [Slot; SLOTS] {
        let mut slots = [const { Slot::new(0) }; SLOTS];
        let mut index = 1;
        while index < SLOTS {
            slots[index] = Slot::new(index);
            index += 1;
        }
        slots
    }
}

const _: () = assert!(std::mem::offset_of!(Thread, tid) + 4 <= 64);
const _: () = assert!(std::mem::size_of::<Slot>() == 64);

thread_local! {
    static THREAD: Thread = const { Thread::new() };
    /// Its destructor checks the list before the kernel walks it at the thread's exit.
    static EXIT: ThreadExit = const { ThreadExit };
}

/// Runs `f` on the calling thread's [`Thread`]: what `THREAD.with` does, in a form the
/// compiler always inlines. `LocalKey::with` with the whole of a lock operation as its
/// closure is large enough that the compiler sometimes calls it out of line (and reaches
/// the thread-local through a function pointer), which costs an uncontended lock about
/// a third of its time; with a closure that only returns the address it is trivial.
#[inline(always)]
fn with_thread<R>(f: impl FnOnce(&Thread) -> R) -> R {
    let thread: *const Thread = THREAD.with(|thread| thread as *const Thread);
    // SAFETY: `THREAD` is const-initialised and has no destructor, so it is there, at
    // this address, for the whole life of the calling thread; the reference does not
    // outlive this call, and `Thread` is not `Sync`, so it stays on this thread.
    f(unsafe { &*thread })
}

/// The generation of a thread that was never set up: 0, which no thread's generation is.
static NEVER: AtomicU64 = AtomicU64::new(0);

/// Runs [`Thread::exiting`] when the thread exits normally.
struct ThreadExit;

impl Drop for ThreadExit {
    fn drop(&mut self) {
        THREAD.with(Thread::exiting);
    }
}

impl Thread {
    const fn new() -> Thread {
        Thread {
            open: Node::new(),
            shape: Cell::new(0),
            pending: Cell::new(std::ptr::null()),
            tid: Cell::new(0),
            generation: Cell::new(1),
            process: Cell::new(&NEVER),
            no_list: AtomicUsize::new(0),
            close: Node::new(),
            own_head: ListHead {
                list: AtomicUsize::new(0),
                futex_offset: AtomicIsize::new(0),
                pending: AtomicUsize::new(0),
            },
            slots: Slot::table(),
        }
    }

    /// This thread's state, set up for this process. Fork-safe: it reads and writes
    /// only this thread's own state and atomics, never waits, and takes no lock.
    ///
    /// A forked child (by `fork`, or by a raw `clone` that runs no `pthread_atfork`
    /// handler) starts with a copy of the forking thread's state: its id, its held
    /// locks (which the parent, not the child, holds) and its place on a list that the
    /// child's kernel task does not have. The process generation, kept in a page that
    /// the kernel zeroes in every child, tells the copy apart from the real thing.
    #[inline]
    fn ready(&self) -> &Thread {
        if !self.set_up_here() {
            self.set_up();
        }
        self
    }

    /// Whether this state was set up in this process (see [`ready`](Self::ready)).
    #[inline]
    fn set_up_here(&self) -> bool {
        // A thread's generation is never 0, and a fresh child's page (or `NEVER`) is.
        // SAFETY: `process` is `NEVER` or the generation page, mapped for good.
        let process = unsafe { &*self.process.get() };
        self.generation.get() == process.load(Ordering::Relaxed)
    }

    #[cold]
    fn set_up(&self) {
        let generation = process_generation();
        process_incarnation();
        self.tid.set(nix::unistd::gettid().as_raw() as u32);
        self.shape.set(0);
        let pending = self.join_robust_list();
        self.pending.set(if pending.is_null() {
            &self.no_list
        } else {
            pending
        });
        self.process.set(generation);
        self.generation.set(generation.load(Ordering::Relaxed));
        // Registers the exit check (a thread-local destructor) for this thread. In a
        // forked child this runs too: it allocates through glibc's malloc, which is
        // fork-safe (glibc's fork holds every arena's lock across the fork), and takes
        // no lock of ours.
        EXIT.with(|_| {});
    }
    /// Puts the two sentinels on this thread's robust list, and returns the list's
    /// pending slot (null if there is no list we can use).
    fn join_robust_list(&self) -> *const AtomicUsize {
        self.open.next.store(self.close.entry(), Ordering::Relaxed);
        self.close.prev.store(self.open.entry(), Ordering::Relaxed);
        let Some((head, futex_offset)) = registered_head() else {
            // No list at all: a raw clone's child. Register one of our own.
            let head = &self.own_head;
            head.list.store(self.open.entry(), Ordering::Relaxed);
            self.close
                .next
                .store(head as *const ListHead as usize, Ordering::Relaxed);
            head.pending.store(0, Ordering::Relaxed);
            head.futex_offset
                .store(-(ENTRY_AFTER_WORD as isize), Ordering::Relaxed);
            // SAFETY: `own_head` lives in this thread's static thread-local storage, so
            // it stays valid until the kernel walks it at the thread's exit.
            let registered = unsafe {
                libc::syscall(
                    libc::SYS_set_robust_list,
                    head as *const ListHead,
                    size_of::<ListHead>(),
                )
            };
            return if registered == 0 {
                &head.pending
            } else {
                std::ptr::null()
            };
        };
        if !cfg!(all(target_env = "gnu", target_pointer_width = "64"))
            || futex_offset != -(ENTRY_AFTER_WORD as isize)
        {
            // Somebody else's list, with a layout we cannot share.
            return std::ptr::null();
        }
        // Splice OPEN, CLOSE in at the front, as glibc links a mutex: each entry's
        // back link (8 bytes before it) points at the entry before it.
        // SAFETY: `head` is this thread's registered glibc head, in glibc's thread
        // descriptor, which outlives the thread's use of it; its first entry is either
        // the head itself (glibc keeps a back-link word just before its head) or a glibc
        // robust mutex this thread holds, whose back link is 8 bytes before its entry.
        // Only this thread changes this list, and glibc does not run in between.
        unsafe {
            let head = &*head;
            let first = head.list.load(Ordering::Relaxed);
            self.close.next.store(first, Ordering::Relaxed);
            let first_back_link = ((first & !1) - 8) as *const AtomicUsize;
            (*first_back_link).store(self.close.entry(), Ordering::Relaxed);
            self.open
                .prev
                .store(head as *const ListHead as usize, Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
            head.list.store(self.open.entry(), Ordering::Relaxed);
            &head.pending
        }
    }

    /// Sets the list's pending entry (0: none), in program order with the lock's word.
    #[inline]
    fn set_pending(&self, entry: usize) {
        compiler_fence(Ordering::SeqCst);
        // SAFETY: the registered head's pending slot, or `no_list`: valid for the
        // thread's life.
        unsafe { (*self.pending.get()).store(entry, Ordering::Relaxed) };
        compiler_fence(Ordering::SeqCst);
    }

    /// One past the highest filled slot.
    fn depth(&self) -> usize {
        self.shape.get() as u32 as usize
    }

    /// The empty slots below the depth, one bit each.
    fn empty(&self) -> u32 {
        (self.shape.get() >> 32) as u32
    }

    fn set_shape(&self, depth: usize, empty: u32) {
        self.shape.set(depth as u64 | u64::from(empty) << 32);
    }

    /// Before the compare-and-swap that may take a lock: there must be a slot for it
    /// (checked now, so that a full table refuses before anything is taken), and its
    /// entry is pending.
    #[inline]
    fn attempt(&self, record: &RobustRecord) {
        if self.shape.get() == SLOTS as u64 {
            too_many_held();
        }
        self.set_pending(entry_of(record));
    }

    /// Puts a lock this thread just took on the list; returns its hold.
    #[inline]
    fn link(&self, record: &RobustRecord) -> u64 {
        let shape = self.shape.get();
        if shape >= SLOTS as u64 {
            return self.link_into_empty(record);
        }
        // On top of a stack without holes.
        let entry = entry_of(record);
        let slot = &self.slots[shape as usize];
        // Build the link fully, then publish it with one store: the kernel may walk
        // the list at any instruction (a SIGKILL).
        record.next.store(slot.follower.entry(), Ordering::Relaxed);
        slot.follower
            .next
            .store(self.open.next.load(Ordering::Relaxed), Ordering::Relaxed);
        slot.held.set(entry);
        let hold = slot.new_hold();
        self.shape.set(shape + 1);
        compiler_fence(Ordering::SeqCst);
        self.open.next.store(entry, Ordering::Relaxed);
        hold
    }

    /// Puts a lock in the lowest empty slot, in its place in the list: after the
    /// nearest held lock above it.
    #[cold]
    fn link_into_empty(&self, record: &RobustRecord) -> u64 {
        let empty = self.empty();
        let slot = empty.trailing_zeros() as usize;
        let above = self.above(slot).expect("the top slot is never empty");
        let node = &self.slots[slot].follower;
        record.next.store(node.entry(), Ordering::Relaxed);
        node.next.store(
            self.slots[above].follower.next.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.slots[slot].held.set(entry_of(record));
        let hold = self.slots[slot].new_hold();
        self.set_shape(self.depth(), empty & !(1 << slot));
        compiler_fence(Ordering::SeqCst);
        self.slots[above]
            .follower
            .next
            .store(entry_of(record), Ordering::Relaxed);
        hold
    }

    /// The nearest held slot above `slot`.
    fn above(&self, slot: usize) -> Option<usize> {
        (slot + 1..self.depth()).find(|&i| self.slots[i].held.get() != 0)
    }

    /// This thread's hold of a lock at this address, if it has one.
    #[inline]
    fn find(&self, record: &RobustRecord) -> Option<u64> {
        let entry = entry_of(record);
        let slot = match self.depth().checked_sub(1) {
            // Locks are mostly released in the order opposite to taking them.
            Some(top) if self.slots[top].held.get() == entry => top,
            _ => self.find_below_top(entry)?,
        };
        Some(self.slots[slot].hold.get())
    }

    /// The slot holding `entry`, searched from the top down (out of line: the top is
    /// the common case, and a small release path is one the compiler inlines).
    #[cold]
    fn find_below_top(&self, entry: usize) -> Option<usize> {
        (0..self.depth())
            .rev()
            .find(|&i| self.slots[i].held.get() == entry)
    }

    /// [`Owner::releasing_held`] where it is quick: this thread is set up for this
    /// process, the word names it, and `hold` is the top of a stack without holes (the
    /// common case: locks released in the order opposite to taking them). False
    /// otherwise, and nothing changed.
    #[inline]
    fn releasing_top(&self, record: &RobustRecord, holder: u32, hold: u64) -> bool {
        let slot = slot_of(hold);
        let held = &self.slots[slot];
        let entry = entry_of(record);
        // The top of a stack without holes is filled: its entry and hold are current.
        if !(self.set_up_here()
            && holder == self.tid.get()
            && self.shape.get() == slot as u64 + 1
            && held.held.get() == entry
            && held.hold.get() == hold)
        {
            return false;
        }
        // Pending until the word is released: a death before then still marks it.
        self.set_pending(entry);
        self.unlink(slot, slot as u64 + 1);
        true
    }

    /// The hold of a lock whose word names this thread but whose record is not at the
    /// address on file: a moved lock ([`find_moved`](Self::find_moved)).
    #[cold]
    fn find_moved_hold(
        &self,
        word: &shmsync_core::AtomicU32,
        record: &RobustRecord,
    ) -> Option<u64> {
        let names_me = word.load(shmsync_core::Ordering::Relaxed) & ID == self.tid.get();
        let slot = names_me.then(|| self.find_moved(record)).flatten()?;
        Some(self.slots[slot].hold.get())
    }

    /// A held lock whose value was moved (possible after `acquire` or a forgotten
    /// guard): its entry still points at its slot's node. It is put back on the list
    /// at its new place. Only for a lock whose word names this thread: another
    /// process's nodes can have the same addresses as ours.
    #[cold]
    fn find_moved(&self, record: &RobustRecord) -> Option<usize> {
        let points_at = record.next.load(Ordering::Relaxed);
        let slot = (0..self.depth()).find(|&i| {
            self.slots[i].held.get() != 0 && self.slots[i].follower.entry() == points_at
        })?;
        let entry = entry_of(record);
        let before = self
            .above(slot)
            .map_or(&self.open, |i| &self.slots[i].follower);
        self.slots[slot].held.set(entry);
        compiler_fence(Ordering::SeqCst);
        before.next.store(entry, Ordering::Relaxed);
        Some(slot)
    }

    /// Takes the lock at `slot` off the list; `shape` is the thread's
    /// [`shape`](Self::shape).
    #[inline]
    fn unlink(&self, slot: usize, shape: u64) {
        if shape != slot as u64 + 1 {
            self.unlink_within(slot);
            return;
        }
        // The top, with held locks (or nothing) below: one store takes it off.
        self.open.next.store(
            self.slots[slot].follower.next.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        compiler_fence(Ordering::SeqCst);
        // Slots at and above the depth are never read: no need to clear this one.
        self.shape.set(slot as u64);
    }

    #[cold]
    fn unlink_within(&self, slot: usize) {
        let above = self.above(slot);
        let before = above.map_or(&self.open, |i| &self.slots[i].follower);
        // One store takes the lock and its node off the kernel's list.
        before.next.store(
            self.slots[slot].follower.next.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        compiler_fence(Ordering::SeqCst);
        self.slots[slot].held.set(0);
        if above.is_some() {
            self.set_shape(self.depth(), self.empty() | 1 << slot);
            return;
        }
        // It was the top: the stack shrinks to the next held lock.
        let mut depth = slot;
        while depth > 0 && self.slots[depth - 1].held.get() == 0 {
            depth -= 1;
        }
        let below_depth = (1u32.checked_shl(depth as u32).unwrap_or(0)).wrapping_sub(1);
        self.set_shape(depth, self.empty() & below_depth);
    }

    /// Every held lock's slot and entry.
    fn held(&self) -> Vec<(usize, usize)> {
        (0..self.depth())
            .filter_map(|slot| match self.slots[slot].held.get() {
                0 => None,
                entry => Some((slot, entry)),
            })
            .collect()
    }

    /// At the thread's exit, before the kernel walks the list: every entry must still
    /// be a lock this thread holds, its word naming this thread and its entry pointing
    /// at its node. Any other (its memory freed and reused, the value moved away, its
    /// word or entry overwritten by a peer) is taken off the list, so that the kernel
    /// writes nothing into memory that may no longer be a lock. The price of doubt is
    /// a death not reported for that lock, never a write into the wrong memory.
    fn exiting(&self) {
        if self.generation.get() != process_generation().load(Ordering::Relaxed) {
            return; // a copy of a parent's state: nothing of it is on this task's list
        }
        let tid = self.tid.get();
        for (slot, entry) in self.held() {
            let intact = read_lock(entry).is_some_and(|(word, points_at)| {
                word & ID == tid && points_at == self.slots[slot].follower.entry()
            });
            if !intact {
                self.unlink(slot, self.shape.get());
            }
        }
    }
}

/// Reads a lock's word and entry through the kernel, so that memory that is no longer
/// mapped is an answer (`None`), not a crash.
fn read_lock(entry: usize) -> Option<(u32, usize)> {
    let mut word = 0u32;
    let mut next = 0usize;
    let local = [
        libc::iovec {
            iov_base: (&mut word as *mut u32).cast(),
            iov_len: 4,
        },
        libc::iovec {
            iov_base: (&mut next as *mut usize).cast(),
            iov_len: size_of::<usize>(),
        },
    ];
    let remote = [
        libc::iovec {
            iov_base: (entry - ENTRY_AFTER_WORD) as *mut libc::c_void,
            iov_len: 4,
        },
        libc::iovec {
            iov_base: entry as *mut libc::c_void,
            iov_len: size_of::<usize>(),
        },
    ];
    // SAFETY: the local buffers are live locals of the given sizes; the kernel checks
    // the remote ranges and fails instead of faulting.
    let read =
        unsafe { libc::process_vm_readv(libc::getpid(), local.as_ptr(), 2, remote.as_ptr(), 2, 0) };
    (read == (4 + size_of::<usize>()) as isize).then_some((word, next))
}

#[cold]
#[inline(never)]
fn too_many_held() -> ! {
    panic!("a thread may hold at most {SLOTS} shmsync locks at once; release one first")
}

/// The slot of a hold (see [`Slot`]).
fn slot_of(hold: u64) -> usize {
    (hold % SLOTS as u64) as usize
}

fn entry_of(record: &RobustRecord) -> usize {
    &record.next as *const AtomicUsize as usize
}

/// The calling thread's registered robust-list head and its futex offset, if any.
fn registered_head() -> Option<(*const ListHead, isize)> {
    let mut head: *const ListHead = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: get_robust_list(0, ..) writes the calling thread's head pointer and its
    // length through the two pointers, which point at locals.
    let result = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0,
            &mut head as *mut *const ListHead,
            &mut len as *mut usize,
        )
    };
    if result != 0 || head.is_null() || len != size_of::<ListHead>() {
        return None;
    }
    // SAFETY: the kernel returned this thread's registered head, which its registrant
    // keeps valid while the thread runs.
    let futex_offset = unsafe { (*head).futex_offset.load(Ordering::Relaxed) };
    Some((head, futex_offset))
}

/// A number that this process keeps for its whole life and that no other process has,
/// a forked child included (whose pid a PID namespace may make equal to its parent's).
pub(crate) fn process_incarnation() -> u64 {
    let generation = process_generation();
    if generation.load(Ordering::Relaxed) == 0 {
        // First thread of this process to get here: a value that no copy of a parent's
        // state can hold (a parent's generation was made in another process).
        let _ = generation.compare_exchange(
            0,
            fresh_generation(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    generation.load(Ordering::Relaxed)
}

/// A word that identifies this process's incarnation of the thread states: it lives in
/// a page the kernel zeroes in every child (`MADV_WIPEONFORK`), so a child sees 0 and
/// knows that the states it inherited are its parent's.
fn process_generation() -> &'static AtomicU64 {
    static PAGE: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
    let page = PAGE.load(Ordering::Acquire);
    if !page.is_null() {
        // SAFETY: a page mapped below and never unmapped.
        return unsafe { &*page };
    }
    // Not a `Once`: a child forked while another thread ran it would wait for ever.
    // Racing threads each map a page; one wins, the others unmap theirs.
    let mine = map_generation_page();
    match PAGE.compare_exchange(
        std::ptr::null_mut(),
        mine,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: as above.
        Ok(_) => unsafe { &*mine },
        Err(theirs) => {
            // SAFETY: `mine` was mapped by `map_generation_page` and nobody else saw it.
            unsafe { libc::munmap(mine.cast(), page_size()) };
            // SAFETY: as above.
            unsafe { &*theirs }
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

#[cold]
fn map_generation_page() -> *mut AtomicU64 {
    // SAFETY: a fresh private anonymous mapping; the result is checked.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(
        page != libc::MAP_FAILED,
        "shmsync: mapping one page failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `page` is the mapping just made.
    if unsafe { libc::madvise(page, page_size(), libc::MADV_WIPEONFORK) } != 0 {
        // Before Linux 4.14: a `fork` (not a raw `clone`) still clears it.
        extern "C" fn wipe_in_child() {
            process_generation().store(0, Ordering::Relaxed);
        }
        // SAFETY: the handler only stores to an atomic, which is safe in a forked child.
        unsafe { libc::pthread_atfork(None, None, Some(wipe_in_child)) };
    }
    page.cast()
}

/// A nonzero value that no other process's generation has: it includes the process id
/// (two processes that live at once differ) and fresh random bits (a pid reused later,
/// or pid 1 of two namespaces, still differs).
fn fresh_generation() -> u64 {
    let mut random = [0u8; 8];
    // SAFETY: getrandom writes at most `random.len()` bytes into `random`.
    unsafe {
        libc::getrandom(
            random.as_mut_ptr().cast(),
            random.len(),
            libc::GRND_NONBLOCK,
        )
    };
    let pid = u64::from(std::process::id());
    (u64::from_ne_bytes(random) << 32 ^ pid ^ crate::Futex::now()) | 1
}

impl Robust {
    /// Whether a holder's death is detected on this thread (its robust list is usable;
    /// see the type's docs). Fixed for the life of the thread.
    pub fn detects_deaths() -> bool {
        with_thread(|thread| {
            let thread = thread.ready();
            !std::ptr::eq(thread.pending.get(), &thread.no_list)
        })
    }

    /// Gives up, as if this thread had died, every lock it holds inside
    /// `[start, start + len)`: memory about to be unmapped, which the kernel must not
    /// look into later. The next locker of each is told its owner died.
    pub(crate) fn abandon_range(start: usize, len: usize) {
        with_thread(|thread| {
            let thread = thread.ready();
            for slot in (0..thread.depth()).rev() {
                let entry = thread.slots[slot].held.get();
                if entry == 0 || !(start..start.saturating_add(len)).contains(&entry) {
                    continue;
                }
                // SAFETY: `entry` is the entry of a lock this thread holds, inside memory
                // the caller still has mapped; the word is `ENTRY_AFTER_WORD` before it.
                let word =
                    unsafe { &*((entry - ENTRY_AFTER_WORD) as *const shmsync_core::AtomicU32) };
                thread.set_pending(entry);
                thread.unlink(slot, thread.shape.get());
                let mine = thread.tid.get();
                let marked = word.fetch_update(
                    shmsync_core::Ordering::Release,
                    shmsync_core::Ordering::Relaxed,
                    |w| (w & ID == mine).then_some(w & WAITERS | OWNER_DIED),
                );
                thread.set_pending(0);
                if marked.is_ok_and(|previous| previous & WAITERS != 0) {
                    crate::futex::wake(word, 1);
                }
            }
        });
    }
}

impl Owner for Robust {
    const NAME: &'static str = "Robust";
    type Record = RobustRecord;
    #[allow(clippy::declare_interior_mutable_const)] // a fresh value per lock, by design
    const UNHELD: RobustRecord = RobustRecord {
        _unused: [const { AtomicU32::new(0) }; 6],
        next: AtomicUsize::new(0),
    };
    /// The slot (the low 5 bits) and which of the slot's holds it is (the bits above):
    /// no two holds of a slot in a thread's life are equal.
    type Hold = u64;
    type GuardMarker = *const ();
    /// A woken locker killed before it takes the lock, or a holder killed between its
    /// release and its wake-up, leaves sleepers unwoken: this bounds how long.
    const RECHECK_NS: Option<u64> = Some(50_000_000);

    #[inline]
    fn id() -> u32 {
        with_thread(|thread| thread.ready().tid.get())
    }

    #[inline]
    fn attempt(_: &shmsync_core::AtomicU32, record: &RobustRecord) {
        with_thread(|thread| thread.attempt(record));
    }

    #[inline]
    fn taken(_: &shmsync_core::AtomicU32, record: &RobustRecord) -> u64 {
        with_thread(|thread| {
            let hold = thread.link(record);
            thread.set_pending(0);
            hold
        })
    }

    #[inline]
    fn missed(_: &shmsync_core::AtomicU32, _: &RobustRecord) {
        with_thread(|thread| thread.set_pending(0));
    }

    #[inline]
    fn holding(word: &shmsync_core::AtomicU32, record: &RobustRecord) -> Option<u64> {
        // The lock asked for `id()` first, which set this thread up for this process.
        with_thread(|thread| {
            thread
                .find(record)
                .or_else(|| thread.find_moved_hold(word, record))
        })
    }

    #[inline]
    fn releasing(_: &shmsync_core::AtomicU32, hold: u64) {
        with_thread(|thread| {
            let slot = slot_of(hold);
            // Read before the fences, which make the compiler read it again: only this
            // thread changes it (and the guard's check has just read it).
            let shape = thread.shape.get();
            // Pending until the word is released: a death before then still marks it.
            thread.set_pending(thread.slots[slot].held.get());
            thread.unlink(slot, shape);
        });
    }

    #[inline]
    fn releasing_held(
        _: &shmsync_core::AtomicU32,
        record: &RobustRecord,
        holder: u32,
        hold: u64,
    ) -> bool {
        with_thread(|thread| thread.releasing_top(record, holder, hold))
    }

    #[inline]
    fn released(_: u64) {
        // Not pending during the wake-up call that follows: a thread of another PID
        // namespace with the same id may take the lock meanwhile, and a death then must
        // not mark its hold. (A waiter left unwoken looks again within RECHECK_NS.)
        with_thread(|thread| thread.set_pending(0));
    }

    fn forget(word: &shmsync_core::AtomicU32, record: &RobustRecord, held_by_someone: bool) {
        with_thread(|thread| {
            let thread = thread.ready();
            if let Some(hold) = thread.find(record) {
                thread.unlink(slot_of(hold), thread.shape.get());
            } else if held_by_someone && !std::ptr::eq(thread.pending.get(), &thread.no_list) {
                wait_for_holder_to_leave(word);
            }
        });
    }
}

/// Linux thread ids, in the holder's PID namespace: distinct between the threads that
/// can share a lock (see `docs/ownership.md` for two namespaces' equal ids).
impl DistinctIds for Robust {}

/// A lock is being dropped while another thread of this process may have it on its
/// robust list: its memory must not go before that thread lets go of it. A thread that
/// finished its work and is exiting (a scoped thread is joined before the kernel has
/// walked its list) lets go within microseconds; one that keeps holding the lock is a
/// bug whose only sound outcome is to stop, before the kernel writes into whatever
/// comes to live in the freed memory when that thread exits.
#[cold]
fn wait_for_holder_to_leave(word: &shmsync_core::AtomicU32) {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);
    let began = std::time::Instant::now();
    while began.elapsed() < PATIENCE {
        let current = word.fetch_or(WAITERS, shmsync_core::Ordering::Acquire) | WAITERS;
        use shmsync_core::LockState;
        if !matches!(
            LockState::of_word(current),
            LockState::Held { .. } | LockState::Recovering { .. }
        ) {
            return;
        }
        let deadline = crate::Futex::now().saturating_add(10_000_000);
        <crate::Futex as shmsync_core::Wait>::wait(word, current, Some(deadline));
    }
    const MESSAGE: &[u8] = b"shmsync: a Lock was dropped while another thread holds it; \
        aborting, since that thread's robust list still names its memory\n";
    // SAFETY: write(2) from a static buffer; no lock is taken, so this cannot wait on
    // state held by another thread.
    unsafe { libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len()) };
    std::process::abort();
}
