//! The types a description names that this build can read from bytes: the scalars,
//! and the library's types with the backends the hosted crate has (`Futex` and `Spin`
//! to wait, `Robust` and `Unowned` to own). Each is read by the type itself: its bytes
//! are copied into memory of this process, aligned for it, and its own diagnostic
//! accessors ([`Lock::state`], [`TrackedSemaphore::state`], …) read them there. Their
//! layouts are fixed by the segment format version, which the reader checked.

use std::alloc::{alloc_zeroed, dealloc, Layout as Allocation};
use std::ptr::NonNull;

use shmsync_core::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, Owner, RLock, RwLock, Scalar, Semaphore,
    ShmSafe, Spin, TrackedBoundedSemaphore, TrackedSemaphore, Unowned, Value,
};

use super::description::TypeArg;
use super::reading::{as_text, HolderIds, LockView, PartState, ReadBytes, ScalarValue, Unreadable};
use super::ReadOptions;
use crate::{Futex, Robust};

/// A type of the library this build reads.
pub(crate) struct Known {
    /// Its size in bytes.
    pub size: usize,
    /// Its alignment.
    pub align: usize,
    /// Its name as a program using the hosted crate writes it (`Value<u32>`,
    /// `Semaphore`), or else its description's (`Lock<Spin, Unowned>`).
    pub short_name: String,
    read: Box<Reader>,
}

/// Reads a known type's state from the bytes at an offset.
type Reader = dyn Fn(&dyn ReadBytes, u64, &ReadOptions) -> Result<PartState, Unreadable>;

impl Known {
    /// Reads its state from the `size` bytes at `offset`.
    pub(crate) fn read(
        &self,
        bytes: &dyn ReadBytes,
        offset: u64,
        options: &ReadOptions,
    ) -> Result<PartState, Unreadable> {
        (self.read)(bytes, offset, options)
    }
}

/// A scalar a description names: its size, alignment and how its bytes read.
#[derive(Clone, Copy)]
pub(crate) struct Plain {
    pub size: usize,
    pub align: usize,
    decode: fn(&[u8]) -> ScalarValue,
}

impl Plain {
    pub(crate) fn decode(&self, bytes: &[u8]) -> ScalarValue {
        (self.decode)(bytes)
    }
}

macro_rules! plain_table {
    ($name:expr; $($t:ty => $variant:ident),* $(,)?) => {
        match $name {
            $(stringify!($t) => Some(Plain {
                size: size_of::<$t>(),
                align: align_of::<$t>(),
                decode: |bytes| ScalarValue::$variant(
                    <$t>::from_ne_bytes(bytes.try_into().expect("the scalar's size")).into(),
                ),
            }),)*
            "()" => Some(Plain { size: 0, align: 1, decode: |_| ScalarValue::Unit }),
            _ => None,
        }
    };
}

/// The scalar `name`, as plain data (`u32`) or as a `Value`'s or `Array`'s parameter
/// (`bool` too, whose non-zero bytes read as `true`, as `Value<bool>` reads them).
pub(crate) fn plain(name: &str) -> Option<Plain> {
    if name == "bool" {
        return Some(Plain {
            size: 1,
            align: 1,
            decode: |bytes| ScalarValue::Bool(bytes[0] != 0),
        });
    }
    plain_table!(name;
        u8 => Unsigned, u16 => Unsigned, u32 => Unsigned, u64 => Unsigned, u128 => Unsigned,
        i8 => Signed, i16 => Signed, i32 => Signed, i64 => Signed, i128 => Signed,
        f32 => F32, f64 => F64,
    )
}

/// The least alignment of a struct of the library whose description does not show it
/// (a `#[repr(align)]`): the queue's slots are word-aligned, whatever their item.
pub(crate) fn struct_min_align(name: &str) -> usize {
    if name == QUEUE_SLOT {
        4
    } else {
        1
    }
}

/// The names the queue's layout gives itself and its slots.
pub(crate) const QUEUE: &str = "shmsync_core::Queue";
pub(crate) const QUEUE_SLOT: &str = "shmsync_core::queue::Slot";

/// Runs `$body` with `$W` the wait backend named `$w` (`Futex` or `Spin`).
macro_rules! with_wait {
    ($w:expr, |$W:ident| $body:expr) => {
        match $w {
            "Futex" => {
                type $W = Futex;
                $body
            }
            "Spin" => {
                type $W = Spin;
                $body
            }
            _ => None,
        }
    };
}

/// Runs `$body` with `$W` and `$O` the backends named `$w` and `$o`.
macro_rules! with_backends {
    ($w:expr, $o:expr, |$W:ident, $O:ident| $body:expr) => {
        match $o {
            "Robust" => {
                type $O = Robust;
                with_wait!($w, |$W| $body)
            }
            "Unowned" => {
                type $O = Unowned;
                with_wait!($w, |$W| $body)
            }
            _ => None,
        }
    };
}

/// Runs `$body` with `$N` the slot count `$n` of a `Condition` or `RwLock`, if it is
/// `$hosted` (the hosted crate's alias) or 8 (the core's aliases): the only counts this
/// build has the types of.
macro_rules! with_slots {
    ($n:expr, $hosted:path, |$N:ident| $body:expr) => {
        match $n {
            $hosted => {
                const $N: usize = $hosted;
                $body
            }
            8 => {
                const $N: usize = 8;
                $body
            }
            _ => None,
        }
    };
}

/// Runs `$body` with `$T` the scalar named `$t`.
macro_rules! with_scalar {
    ($t:expr, |$T:ident| $body:expr) => {
        with_scalar!(@ $t, $T, $body; u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, bool)
    };
    (@ $t:expr, $T:ident, $body:expr; $($scalar:ident),*) => {
        match $t {
            $(stringify!($scalar) => {
                type $T = $scalar;
                $body
            })*
            _ => None,
        }
    };
}

/// The library's type `name<args>`, if this build reads it.
pub(crate) fn builtin(name: &str, args: &[TypeArg]) -> Option<Known> {
    let names: Vec<Option<&str>> = args
        .iter()
        .map(|arg| match arg {
            TypeArg::Name(name) => Some(name.as_str()),
            TypeArg::Len(_) => None,
        })
        .collect();
    match (name, names.as_slice()) {
        ("Lock", [Some(w), Some(o)]) => with_backends!(*w, *o, |W, O| Some(lock::<W, O>())),
        ("Event", [Some(w)]) => with_wait!(*w, |W| Some(event::<W>())),
        ("Semaphore", [Some(w)]) => with_wait!(*w, |W| Some(semaphore::<W>())),
        ("BoundedSemaphore", [Some(w)]) => with_wait!(*w, |W| Some(bounded_semaphore::<W>())),
        ("TrackedSemaphore", [Some(w), Some(o)]) => {
            with_backends!(*w, *o, |W, O| Some(tracked::<W, O, _>(
                "Semaphore",
                name,
                TrackedSemaphore::<W, O>::state
            )))
        }
        ("TrackedBoundedSemaphore", [Some(w), Some(o)]) => {
            with_backends!(*w, *o, |W, O| Some(tracked::<W, O, _>(
                "BoundedSemaphore",
                name,
                TrackedBoundedSemaphore::<W, O>::state
            )))
        }
        ("Value", [Some(t), Some(w), Some(o)]) => {
            with_scalar!(*t, |T| with_backends!(*w, *o, |W, O| Some(
                value::<T, W, O>()
            )))
        }
        ("RLock", [Some(w), Some("Robust")]) => with_wait!(*w, |W| Some(rlock::<W>())),
        ("Barrier", [Some(w), Some(o)]) => with_backends!(*w, *o, |W, O| Some(barrier::<W, O>())),
        ("Condition", [Some(w), Some(o), None]) => {
            let TypeArg::Len(slots) = args[2] else {
                return None;
            };
            with_slots!(slots, crate::CONDITION_WAITERS, |N| with_backends!(
                *w,
                *o,
                |W, O| Some(condition::<W, O, N>())
            ))
        }
        ("RwLock", [Some(w), Some(o), None]) => {
            let TypeArg::Len(slots) = args[2] else {
                return None;
            };
            with_slots!(slots, crate::RWLOCK_READERS, |N| with_backends!(
                *w,
                *o,
                |W, O| Some(rwlock::<W, O, N>())
            ))
        }
        ("Array", [Some(t), None, Some(w), Some(o)]) => {
            let TypeArg::Len(len) = args[1] else {
                return None;
            };
            let item = plain(t)?;
            with_backends!(*w, *o, |W, O| array::<W, O>(t, item, len))
        }
        _ => None,
    }
}

/// How a program using the hosted crate names the library's type `alias` with
/// backends `W` and `O` (its aliases choose `Futex` and `Robust`; give `Robust` for a
/// type without an owner), or else its full name, `full`.
fn short_name<W: 'static, O: 'static>(alias: String, full: String) -> String {
    use std::any::TypeId;
    if TypeId::of::<W>() == TypeId::of::<Futex>() && TypeId::of::<O>() == TypeId::of::<Robust>() {
        alias
    } else {
        full
    }
}

/// The full name of the library's type `name` with backends `W` and `O`.
fn full_name<W: shmsync_core::Wait, O: Owner>(name: &str) -> String {
    format!("{name}<{}, {}>", W::NAME, O::NAME)
}

fn known<T: ShmSafe + 'static>(
    short_name: String,
    read: impl Fn(&T) -> PartState + 'static,
) -> Known {
    Known {
        size: size_of::<T>(),
        align: align_of::<T>(),
        short_name,
        read: Box::new(move |bytes, offset, _| view::<T, _>(bytes, offset, &read)),
    }
}

/// What the holders' ids of a lock owned through `O` are.
fn holder_ids<O: Owner>() -> HolderIds {
    if O::NAME == Robust::NAME {
        HolderIds::Threads
    } else {
        HolderIds::Anonymous
    }
}

pub(crate) fn lock_view<W, O: Owner>(lock: &Lock<W, O>) -> LockView {
    LockView {
        state: lock.state(),
        sleepers_announced: lock.sleepers_announced(),
        ids: holder_ids::<O>(),
    }
}

fn lock<W: shmsync_core::Wait + 'static, O: Owner + 'static>() -> Known {
    let name = short_name::<W, O>("Lock".into(), full_name::<W, O>("Lock"));
    known::<Lock<W, O>>(name, |lock| PartState::Lock(lock_view(lock)))
}

fn event<W: shmsync_core::Wait + 'static>() -> Known {
    // An event has no owner: the hosted alias is the one that waits on the futex.
    let name = short_name::<W, Robust>("Event".into(), format!("Event<{}>", W::NAME));
    known::<Event<W>>(name, |event| PartState::Event {
        set: event.is_set(),
        sleepers_announced: event.sleepers_announced(),
    })
}

fn semaphore<W: shmsync_core::Wait + 'static>() -> Known {
    known::<Semaphore<W>>(format!("Semaphore<{}>", W::NAME), |semaphore| {
        PartState::UntrackedSemaphore {
            free: semaphore.value(),
            waiters_announced: semaphore.waiters_announced(),
            bound: None,
        }
    })
}

fn bounded_semaphore<W: shmsync_core::Wait + 'static>() -> Known {
    known::<BoundedSemaphore<W>>(format!("BoundedSemaphore<{}>", W::NAME), |semaphore| {
        PartState::UntrackedSemaphore {
            free: semaphore.value(),
            waiters_announced: semaphore.waiters_announced(),
            bound: Some(semaphore.bound()),
        }
    })
}

/// A tracked semaphore `T`, named `full` in the library and `alias` in the hosted crate.
fn tracked<W, O, T>(alias: &str, full: &str, state: fn(&T) -> shmsync_core::SemaphoreState) -> Known
where
    W: shmsync_core::Wait + 'static,
    O: Owner + 'static,
    T: ShmSafe + 'static,
{
    let name = short_name::<W, O>(alias.into(), full_name::<W, O>(full));
    known::<T>(name, move |semaphore| PartState::Semaphore {
        state: state(semaphore),
        ids: holder_ids::<O>(),
    })
}

/// The name of the library's type `name` with `slots` slots: its hosted alias's for the
/// hosted backends and the alias's count (`hosted`), else its full name.
fn slotted_name<W, O>(name: &str, slots: usize, hosted: usize) -> String
where
    W: shmsync_core::Wait + 'static,
    O: Owner + 'static,
{
    let full = format!("{name}<{}, {}, {slots}>", W::NAME, O::NAME);
    let alias = if slots == hosted {
        name.to_owned()
    } else {
        full.clone()
    };
    short_name::<W, O>(alias, full)
}

fn rlock<W: shmsync_core::Wait + 'static>() -> Known {
    let name = short_name::<W, Robust>("RLock".into(), full_name::<W, Robust>("RLock"));
    known::<RLock<W, Robust>>(name, |rlock| {
        let (state, depth) = rlock.state();
        PartState::RLock {
            lock: LockView {
                state,
                sleepers_announced: rlock.sleepers_announced(),
                ids: HolderIds::Threads,
            },
            depth,
        }
    })
}

fn barrier<W: shmsync_core::Wait + 'static, O: Owner + 'static>() -> Known {
    let name = short_name::<W, O>("Barrier".into(), full_name::<W, O>("Barrier"));
    known::<Barrier<W, O>>(name, |barrier| PartState::Barrier {
        parties: barrier.parties(),
        waiting: barrier.n_waiting(),
        broken: barrier.is_broken(),
    })
}

fn condition<W, O, const N: usize>() -> Known
where
    W: shmsync_core::Wait + 'static,
    O: Owner + 'static,
{
    let name = slotted_name::<W, O>("Condition", N, crate::CONDITION_WAITERS);
    known::<Condition<W, O, N>>(name, |condition| PartState::Condition {
        waiting: condition.waiting(),
    })
}

fn rwlock<W, O, const N: usize>() -> Known
where
    W: shmsync_core::Wait + 'static,
    O: Owner + 'static,
{
    let name = slotted_name::<W, O>("RwLock", N, crate::RWLOCK_READERS);
    known::<RwLock<W, O, N>>(name, |rwlock| {
        let (writer, readers_turned_away) = rwlock.writer();
        let (readers, readers_died) = rwlock.readers();
        PartState::RwLock {
            writer: LockView {
                state: writer,
                sleepers_announced: false,
                ids: holder_ids::<O>(),
            },
            readers_turned_away,
            readers,
            readers_died,
            writer_died: rwlock.writer_died(),
        }
    })
}

fn value<T, W, O>() -> Known
where
    T: Scalar + Into<ScalarValue>,
    W: shmsync_core::Wait + 'static,
    O: Owner + 'static,
{
    let alias = format!("Value<{}>", T::NAME);
    let full = format!("Value<{}, {}, {}>", T::NAME, W::NAME, O::NAME);
    known::<Value<T, W, O>>(short_name::<W, O>(alias, full), |value| PartState::Value {
        value: value.get().into(),
        lock: lock_view(value.get_lock()),
    })
}

/// `Array<T, len, W, O>`, `#[repr(C)]`: its lock, then `len` items of `T`'s width, each
/// aligned to its width (they are atomics); `None` if it would not fit in memory.
fn array<W, O>(scalar: &str, item: Plain, len: usize) -> Option<Known>
where
    W: shmsync_core::Wait + 'static,
    O: Owner + 'static,
{
    let lock = Allocation::new::<Lock<W, O>>();
    let items_at = lock.size().next_multiple_of(item.size.max(1));
    let align = lock.align().max(item.size);
    let size = item
        .size
        .checked_mul(len)?
        .checked_add(items_at)?
        .checked_next_multiple_of(align)?;
    let bytes_of_text = scalar == "u8";
    let alias = format!("Array<{scalar}, {len}>");
    let full = format!("Array<{scalar}, {len}, {}, {}>", W::NAME, O::NAME);
    Some(Known {
        size,
        align,
        short_name: short_name::<W, O>(alias, full),
        read: Box::new(move |bytes, offset, options| {
            let lock = view::<Lock<W, O>, _>(bytes, offset, lock_view)?;
            let shown = len.min(options.max_items);
            let mut raw = vec![0u8; shown * item.size];
            bytes.read_at(&mut raw, offset + items_at as u64)?;
            let items: Vec<_> = raw
                .chunks_exact(item.size.max(1))
                .map(|bytes| item.decode(bytes))
                .collect();
            let text = bytes_of_text.then(|| as_text(&items)).flatten();
            Ok(PartState::Array {
                items,
                len,
                text,
                lock,
            })
        }),
    })
}

/// Copies the `size_of::<T>()` bytes at `offset` into memory of this process aligned
/// for `T`, and lends them to `read` as a `T`.
pub(crate) fn view<T: ShmSafe, R>(
    bytes: &dyn ReadBytes,
    offset: u64,
    read: impl FnOnce(&T) -> R,
) -> Result<R, Unreadable> {
    let copy = AlignedCopy::new(Allocation::new::<T>());
    // SAFETY: `copy` owns `size` zeroed bytes (none for a zero-sized `T`), which only
    // this slice uses while it lives.
    let place = unsafe { std::slice::from_raw_parts_mut(copy.ptr.as_ptr(), copy.size) };
    bytes.read_at(place, offset)?;
    // SAFETY: `copy` holds `size_of::<T>()` initialised bytes aligned for `T`, which
    // `ShmSafe` makes a valid `T` whatever they are. It is lent as `&T` only (its
    // atomics may be loaded), for no longer than `copy` lives, and never dropped as a
    // `T`: a lock's drop would tell this thread's owner backend of a lock it never
    // held.
    Ok(read(unsafe { copy.ptr.cast::<T>().as_ref() }))
}

/// Zeroed memory of a given size and alignment, freed on drop.
struct AlignedCopy {
    ptr: NonNull<u8>,
    size: usize,
    allocation: Allocation,
}

impl AlignedCopy {
    fn new(allocation: Allocation) -> AlignedCopy {
        let ptr = if allocation.size() == 0 {
            // A well-aligned address with no bytes behind it, as `NonNull::dangling`
            // gives one for a type.
            NonNull::new(allocation.align() as *mut u8).expect("an alignment is not zero")
        } else {
            // SAFETY: the size is not zero.
            let ptr = unsafe { alloc_zeroed(allocation) };
            NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(allocation))
        };
        AlignedCopy {
            ptr,
            size: allocation.size(),
            allocation,
        }
    }
}

impl Drop for AlignedCopy {
    fn drop(&mut self) {
        if self.size > 0 {
            // SAFETY: allocated in `new` with this very allocation, freed once.
            unsafe { dealloc(self.ptr.as_ptr(), self.allocation) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described<T: ShmSafe>() -> (String, Vec<TypeArg>) {
        let text = T::LAYOUT.description();
        let parsed = crate::inspect::TypeDescription::parse(text.as_str()).expect("parsed");
        match parsed.root {
            crate::inspect::TypeNode::Builtin { name, args } => (name, args),
            other => panic!("{other:?}"),
        }
    }

    fn sized_as<T: ShmSafe>() -> Known {
        let (name, args) = described::<T>();
        let known = builtin(&name, &args).unwrap_or_else(|| panic!("{name} {args:?}"));
        assert_eq!(
            (known.size, known.align),
            (size_of::<T>(), align_of::<T>()),
            "{name}"
        );
        known
    }

    #[test]
    fn every_builtin_with_every_hosted_backend_is_known_at_its_size() {
        sized_as::<crate::Lock>();
        sized_as::<Lock<Spin, Unowned>>();
        sized_as::<Lock<Futex, Unowned>>();
        sized_as::<Lock<Spin, Robust>>();
        sized_as::<crate::Event>();
        sized_as::<Event<Spin>>();
        sized_as::<crate::Semaphore>();
        sized_as::<crate::BoundedSemaphore>();
        sized_as::<TrackedSemaphore<Spin, Unowned>>();
        sized_as::<Semaphore<Futex>>();
        sized_as::<BoundedSemaphore<Spin>>();
        sized_as::<crate::Value<u8>>();
        sized_as::<crate::Value<f64>>();
        sized_as::<crate::Value<bool>>();
        sized_as::<Value<i16, Spin, Unowned>>();
        sized_as::<crate::Array<u8, 3>>();
        sized_as::<crate::Array<u8, 0>>();
        sized_as::<crate::Array<u16, 5>>();
        sized_as::<crate::Array<f64, 7>>();
        sized_as::<shmsync_core::Array<u32, 3, Spin, Unowned>>();
        sized_as::<shmsync_core::Array<u64, 1, Spin, Unowned>>();
        sized_as::<shmsync_core::Array<bool, 9, Futex, Unowned>>();
        sized_as::<crate::RLock>();
        sized_as::<crate::Barrier>();
        sized_as::<crate::Condition>();
        sized_as::<crate::RwLock>();
        sized_as::<shmsync_core::spin::Condition>();
        sized_as::<shmsync_core::spin::RwLock>();
        sized_as::<Barrier<Spin, Unowned>>();
        assert_eq!(sized_as::<crate::Value<u32>>().short_name, "Value<u32>");
        assert_eq!(sized_as::<crate::Semaphore>().short_name, "Semaphore");
        assert_eq!(
            sized_as::<Lock<Spin, Unowned>>().short_name,
            "Lock<Spin, Unowned>"
        );
    }

    #[test]
    fn unknown_backends_and_types_are_not_guessed() {
        let name = |s: &str| TypeArg::Name(s.into());
        assert!(builtin("Lock", &[name("Embassy"), name("Unowned")]).is_none());
        assert!(builtin("Lock", &[name("Futex")]).is_none());
        assert!(builtin("RLock", &[name("Futex"), name("Unowned")]).is_none());
        assert!(builtin(
            "Condition",
            &[name("Futex"), name("Robust"), TypeArg::Len(3)]
        )
        .is_none());
        assert!(builtin("Value", &[name("char"), name("Futex"), name("Robust")]).is_none());
        let huge = [
            name("u64"),
            TypeArg::Len(usize::MAX),
            name("Futex"),
            name("Robust"),
        ];
        assert!(builtin("Array", &huge).is_none());
    }

    #[test]
    fn a_zero_sized_type_is_viewed_without_memory() {
        let bytes: &[u8] = &[];
        assert_eq!(view::<(), _>(&bytes, 0, |_| 7), Ok(7));
    }
}
