//! The contenders, one type each, in the manner of parking_lot's
//! `benchmark/src/bin/mutex.rs`: every kind of measurement is a small trait, and every
//! primitive it compares is a type implementing it. A contender's `NAME` is the name
//! its samples are filed under and the comparisons refer to.
//!
//! - [`UncontendedLock`]: one thread takes and releases a lock nobody else wants (and
//!   a read or write lock of a readers-writer lock).
//! - [`SharedCounter`]: two forked processes increment one counter in shared memory.
//! - [`ContendedLock`]: N workers, threads or processes, take one lock in turn
//!   ([`crate::scale`]).
//! - [`PingPong`]: two processes hand a turn back and forth (or cross a barrier; also
//!   many pairs at once, [`crate::oversubscribed`]).
//! - [`ItemChannel`]: producer processes hand numbered items to consumer processes.
//! - [`SemaphorePool`]: many processes work a few at a time ([`crate::oversubscribed`]).
//! - [`IdleWaiter`]: threads wait for what never comes ([`crate::idle`]).

use crate::peers::{
    self, FutexTurn, PosixSemaphore, PthreadBarrier, PthreadCond, PthreadMutex, PthreadRwLock,
    SharedCell,
};
use shmsync::{
    shm_struct, Barrier, Condition, Event, Futex, Lock, Queue, RwLock, Semaphore, Shared, Value,
};
use shmsync_core::Unowned;
use std::sync::atomic::AtomicU32 as StdAtomicU32;
use std::time::Duration;

/// A lock taken and released by one thread, with nobody else around.
///
/// The measuring loop reaches every contender's lock the same way, through one
/// reference taken before the loop ([`lock`](Self::lock)), so that no contender pays
/// for an indirection the others do not (a `Shared` handle's deref, say). Each lock
/// sits in memory of its own, not in the loop's stack frame, whose cache line the loop
/// writes.
pub trait UncontendedLock {
    /// The name of its samples.
    const NAME: &'static str;
    /// The lock itself.
    type Lock;
    /// A fresh unlocked one, where it would live in use (in shared memory for the
    /// process-shared ones, on the heap for the others).
    fn new() -> Self;
    /// The lock.
    fn lock(&self) -> &Self::Lock;
    /// Takes the lock and releases it.
    fn lock_unlock(lock: &Self::Lock);
}

/// A counter at zero in memory that forked children share, which two processes
/// increment at once.
pub trait SharedCounter: Sync {
    /// The name of its samples.
    const NAME: &'static str;
    /// A fresh counter at zero, in memory shared with the children forked later.
    fn new() -> Self;
    /// Adds one, safely against the other process.
    fn increment(&self);
    /// The count.
    fn count(&self) -> u64;
}

/// A lock that many workers take in turn, threads or (if [`PROCESS_SHARED`]) forked
/// processes.
///
/// [`PROCESS_SHARED`]: Self::PROCESS_SHARED
///
/// It is made as an [`UncontendedLock`] is, where it would live in use.
pub trait ContendedLock: UncontendedLock + Sync {
    /// The name of its samples as a contended lock (it has another as an
    /// [`UncontendedLock`]).
    const CONTENDED_NAME: &'static str;
    /// Whether it works between processes: it then lives in shared memory.
    const PROCESS_SHARED: bool;
    /// Runs `f` holding the lock.
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R;
}

/// A turn handed back and forth between this process and a forked child.
pub trait PingPong: Sync {
    /// The name of its samples.
    const NAME: &'static str;
    /// A fresh one, in memory shared with the child forked later, nobody's turn.
    fn new() -> Self;
    /// The parent's half of a round trip: hands the turn over and waits for it back.
    fn ask(&self);
    /// The child's half: waits for the turn and hands it back.
    fn answer(&self);
}

/// A counting semaphore that limits how many processes work at once.
pub trait SemaphorePool: Sync {
    /// The name of its samples.
    const NAME: &'static str;
    /// A fresh one with `slots` permits, in memory shared with children forked later.
    fn new(slots: u32) -> Self;
    /// Takes a permit, waiting for one.
    fn acquire(&self);
    /// Gives a permit back.
    fn release(&self);
}

/// Something threads can wait on that nobody signals.
pub trait IdleWaiter: Sync {
    /// The name of its samples.
    const NAME: &'static str;
    /// A fresh one, never to be signalled.
    fn new() -> Self;
    /// Waits for the whole `window`, since nothing comes.
    fn wait_unsignalled(&self, window: Duration);
}

// ---------------------------------------------------------------------------------
// Uncontended locks.

/// shmsync's [`Lock`], in a shared segment.
pub struct ShmsyncLock(Shared<Lock>);

impl UncontendedLock for ShmsyncLock {
    const NAME: &'static str = "lock shmsync";
    type Lock = Lock;
    fn new() -> Self {
        Self(Shared::anonymous(Lock::new()).expect("an anonymous shared segment"))
    }
    fn lock(&self) -> &Lock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &Lock) {
        drop(lock.lock());
    }
}

/// shmsync's lock on the futex backend with no owner recorded ([`Unowned`]): what the
/// lock's fast path would cost if it did not record its owner. In a shared segment
/// like [`ShmsyncLock`], so at the same offset in a page of the same kind: the two
/// differ only in the owner backend.
pub struct ShmsyncLockNoOwner(Shared<shmsync_core::Lock<Futex, Unowned>>);

impl UncontendedLock for ShmsyncLockNoOwner {
    const NAME: &'static str = "lock shmsync, no owner recording";
    type Lock = shmsync_core::Lock<Futex, Unowned>;
    fn new() -> Self {
        Self(Shared::anonymous(shmsync_core::Lock::new()).expect("an anonymous shared segment"))
    }
    fn lock(&self) -> &Self::Lock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &Self::Lock) {
        drop(lock.lock());
    }
}

/// [`std::sync::Mutex`], for threads of one process, on the heap.
pub struct StdMutex(Box<std::sync::Mutex<()>>);

impl UncontendedLock for StdMutex {
    const NAME: &'static str = "lock std::sync::Mutex";
    type Lock = std::sync::Mutex<()>;
    fn new() -> Self {
        Self(Box::new(std::sync::Mutex::new(())))
    }
    fn lock(&self) -> &Self::Lock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &Self::Lock) {
        drop(lock.lock());
    }
}

/// [`parking_lot::Mutex`], for threads of one process, on the heap.
pub struct ParkingLotMutex(Box<parking_lot::Mutex<()>>);

impl UncontendedLock for ParkingLotMutex {
    const NAME: &'static str = "lock parking_lot::Mutex";
    type Lock = parking_lot::Mutex<()>;
    fn new() -> Self {
        Self(Box::new(parking_lot::Mutex::new(())))
    }
    fn lock(&self) -> &Self::Lock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &Self::Lock) {
        drop(lock.lock());
    }
}

/// A `PTHREAD_PROCESS_SHARED` pthread mutex in shared memory.
pub struct PthreadShared(&'static PthreadMutex);

impl UncontendedLock for PthreadShared {
    const NAME: &'static str = "lock pthread pshared";
    type Lock = PthreadMutex;
    fn new() -> Self {
        Self(PthreadMutex::new_shared(false))
    }
    fn lock(&self) -> &PthreadMutex {
        self.0
    }
    #[inline]
    fn lock_unlock(lock: &PthreadMutex) {
        lock.lock();
        lock.unlock();
    }
}

/// A `PTHREAD_PROCESS_SHARED`, `PTHREAD_MUTEX_ROBUST` pthread mutex in shared memory:
/// the one that, like shmsync's, reports its holder's death.
pub struct PthreadRobust(&'static PthreadMutex);

impl UncontendedLock for PthreadRobust {
    const NAME: &'static str = "lock pthread pshared robust";
    type Lock = PthreadMutex;
    fn new() -> Self {
        Self(PthreadMutex::new_shared(true))
    }
    fn lock(&self) -> &PthreadMutex {
        self.0
    }
    #[inline]
    fn lock_unlock(lock: &PthreadMutex) {
        lock.lock();
        lock.unlock();
    }
}

// ---------------------------------------------------------------------------------
// The same locks, contended.

impl ContendedLock for ShmsyncLock {
    const CONTENDED_NAME: &'static str = "shmsync Lock";
    const PROCESS_SHARED: bool = true;
    #[inline]
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.0.lock().expect("nobody dies in the benchmark");
        f()
    }
}

impl ContendedLock for StdMutex {
    const CONTENDED_NAME: &'static str = "std::sync::Mutex";
    const PROCESS_SHARED: bool = false;
    #[inline]
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.0.lock().expect("nobody panics in the benchmark");
        f()
    }
}

impl ContendedLock for ParkingLotMutex {
    const CONTENDED_NAME: &'static str = "parking_lot::Mutex";
    const PROCESS_SHARED: bool = false;
    #[inline]
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.0.lock();
        f()
    }
}

impl ContendedLock for PthreadShared {
    const CONTENDED_NAME: &'static str = "pthread pshared";
    const PROCESS_SHARED: bool = true;
    #[inline]
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.locked(f)
    }
}

impl ContendedLock for PthreadRobust {
    const CONTENDED_NAME: &'static str = "pthread robust";
    const PROCESS_SHARED: bool = true;
    #[inline]
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.locked(f)
    }
}

/// A read lock of shmsync's [`RwLock`], in a shared segment.
pub struct ShmsyncRead(Shared<RwLock>);

impl UncontendedLock for ShmsyncRead {
    const NAME: &'static str = "read shmsync RwLock";
    type Lock = RwLock;
    fn new() -> Self {
        Self(Shared::anonymous(RwLock::new()).expect("an anonymous shared segment"))
    }
    fn lock(&self) -> &RwLock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &RwLock) {
        drop(lock.read());
    }
}

/// The write lock of shmsync's [`RwLock`], in a shared segment.
pub struct ShmsyncWrite(Shared<RwLock>);

impl UncontendedLock for ShmsyncWrite {
    const NAME: &'static str = "write shmsync RwLock";
    type Lock = RwLock;
    fn new() -> Self {
        Self(Shared::anonymous(RwLock::new()).expect("an anonymous shared segment"))
    }
    fn lock(&self) -> &RwLock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &RwLock) {
        drop(lock.write());
    }
}

/// A read lock of a `PTHREAD_PROCESS_SHARED` pthread rwlock in shared memory.
pub struct PthreadRead(&'static PthreadRwLock);

impl UncontendedLock for PthreadRead {
    const NAME: &'static str = "read pthread rwlock pshared";
    type Lock = PthreadRwLock;
    fn new() -> Self {
        Self(PthreadRwLock::new_shared())
    }
    fn lock(&self) -> &PthreadRwLock {
        self.0
    }
    #[inline]
    fn lock_unlock(lock: &PthreadRwLock) {
        lock.read();
        lock.unlock();
    }
}

/// The write lock of a `PTHREAD_PROCESS_SHARED` pthread rwlock in shared memory.
pub struct PthreadWrite(&'static PthreadRwLock);

impl UncontendedLock for PthreadWrite {
    const NAME: &'static str = "write pthread rwlock pshared";
    type Lock = PthreadRwLock;
    fn new() -> Self {
        Self(PthreadRwLock::new_shared())
    }
    fn lock(&self) -> &PthreadRwLock {
        self.0
    }
    #[inline]
    fn lock_unlock(lock: &PthreadRwLock) {
        lock.write();
        lock.unlock();
    }
}

/// A read lock of [`parking_lot::RwLock`], for threads of one process, on the heap.
pub struct ParkingLotRead(Box<parking_lot::RwLock<()>>);

impl UncontendedLock for ParkingLotRead {
    const NAME: &'static str = "read parking_lot::RwLock";
    type Lock = parking_lot::RwLock<()>;
    fn new() -> Self {
        Self(Box::new(parking_lot::RwLock::new(())))
    }
    fn lock(&self) -> &Self::Lock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &Self::Lock) {
        drop(lock.read());
    }
}

/// A read lock of [`std::sync::RwLock`], for threads of one process, on the heap.
pub struct StdRead(Box<std::sync::RwLock<()>>);

impl UncontendedLock for StdRead {
    const NAME: &'static str = "read std::sync::RwLock";
    type Lock = std::sync::RwLock<()>;
    fn new() -> Self {
        Self(Box::new(std::sync::RwLock::new(())))
    }
    fn lock(&self) -> &Self::Lock {
        &self.0
    }
    #[inline]
    fn lock_unlock(lock: &Self::Lock) {
        drop(lock.read());
    }
}

// ---------------------------------------------------------------------------------
// Counters two processes increment.

shm_struct! {
    /// A plain count beside the lock that guards it.
    pub struct LockedCount { lock: Lock, count: Value<u64> }
}

/// A [`Value`] incremented under a separate shmsync [`Lock`].
pub struct ShmsyncLockCounter(Shared<LockedCount>);

impl SharedCounter for ShmsyncLockCounter {
    const NAME: &'static str = "counter shmsync Lock";
    fn new() -> Self {
        Self(
            Shared::anonymous(LockedCount {
                lock: Lock::new(),
                count: Value::new(0),
            })
            .expect("an anonymous shared segment"),
        )
    }
    #[inline]
    fn increment(&self) {
        let _held = self.0.lock.lock().expect("nobody dies in the benchmark");
        self.0.count.set(self.0.count.get() + 1);
    }
    fn count(&self) -> u64 {
        self.0.count.get()
    }
}

/// A plain `u64` in shared memory, incremented under a process-shared pthread mutex.
pub struct PthreadCounter {
    /// The mutex every increment holds.
    mutex: &'static PthreadMutex,
    /// The count it guards.
    count: SharedCell<u64>,
}

impl SharedCounter for PthreadCounter {
    const NAME: &'static str = "counter pthread pshared";
    fn new() -> Self {
        Self {
            mutex: PthreadMutex::new_shared(false),
            count: SharedCell::new(0),
        }
    }
    #[inline]
    fn increment(&self) {
        self.mutex.lock();
        self.count.set(self.count.get() + 1);
        self.mutex.unlock();
    }
    fn count(&self) -> u64 {
        self.count.get()
    }
}

/// A `Value<u64>` in a shared segment, the inside of the three `Value` counters.
fn shared_value() -> Shared<Value<u64>> {
    Shared::anonymous(Value::new(0)).expect("an anonymous shared segment")
}

/// Python's `with v.get_lock(): v.value += 1`, on a shmsync [`Value`].
pub struct ValueUnderGetLock(Shared<Value<u64>>);

impl SharedCounter for ValueUnderGetLock {
    const NAME: &'static str = "value shmsync get_lock";
    fn new() -> Self {
        Self(shared_value())
    }
    #[inline]
    fn increment(&self) {
        let _held = self
            .0
            .get_lock()
            .lock()
            .expect("nobody dies in the benchmark");
        self.0.set(self.0.get() + 1);
    }
    fn count(&self) -> u64 {
        self.0.get()
    }
}

/// The one-call read-modify-write, [`Value::update`].
pub struct ValueUpdate(Shared<Value<u64>>);

impl SharedCounter for ValueUpdate {
    const NAME: &'static str = "value shmsync update";
    fn new() -> Self {
        Self(shared_value())
    }
    #[inline]
    fn increment(&self) {
        self.0
            .update(|x| x + 1)
            .expect("nobody dies in the benchmark");
    }
    fn count(&self) -> u64 {
        self.0.get()
    }
}

/// The atomic form, [`Value::fetch_add`].
pub struct ValueFetchAdd(Shared<Value<u64>>);

impl SharedCounter for ValueFetchAdd {
    const NAME: &'static str = "value shmsync fetch_add";
    fn new() -> Self {
        Self(shared_value())
    }
    #[inline]
    fn increment(&self) {
        self.0.fetch_add(1);
    }
    fn count(&self) -> u64 {
        self.0.get()
    }
}

// ---------------------------------------------------------------------------------
// Ping-pongs.

shm_struct! {
    /// One event each way.
    pub struct EventPair { ping: Event, pong: Event }
}

/// Two shmsync [`Event`]s, set and cleared in turn.
pub struct EventPingPong(Shared<EventPair>);

impl PingPong for EventPingPong {
    const NAME: &'static str = "ping-pong shmsync Event";
    fn new() -> Self {
        Self(
            Shared::anonymous(EventPair {
                ping: Event::new(),
                pong: Event::new(),
            })
            .expect("an anonymous shared segment"),
        )
    }
    #[inline]
    fn ask(&self) {
        self.0.ping.set();
        self.0.pong.wait();
        self.0.pong.clear();
    }
    #[inline]
    fn answer(&self) {
        self.0.ping.wait();
        self.0.ping.clear();
        self.0.pong.set();
    }
}

shm_struct! {
    /// One semaphore each way.
    pub struct SemaphorePair { ping: Semaphore, pong: Semaphore }
}

/// Two shmsync [`Semaphore`]s at zero, released and acquired in turn.
pub struct SemaphorePingPong(Shared<SemaphorePair>);

impl PingPong for SemaphorePingPong {
    const NAME: &'static str = "ping-pong shmsync Semaphore";
    fn new() -> Self {
        Self(
            Shared::anonymous(SemaphorePair {
                ping: Semaphore::new(0),
                pong: Semaphore::new(0),
            })
            .expect("an anonymous shared segment"),
        )
    }
    #[inline]
    fn ask(&self) {
        self.0.ping.release();
        self.0.pong.acquire();
    }
    #[inline]
    fn answer(&self) {
        self.0.ping.acquire();
        self.0.pong.release();
    }
}

/// Two process-shared POSIX `sem_t` at zero, posted and waited in turn.
pub struct SemTPingPong {
    /// Posted by the parent, waited on by the child.
    ping: &'static PosixSemaphore,
    /// Posted by the child, waited on by the parent.
    pong: &'static PosixSemaphore,
}

impl PingPong for SemTPingPong {
    const NAME: &'static str = "ping-pong sem_t";
    fn new() -> Self {
        Self {
            ping: PosixSemaphore::new_shared(0),
            pong: PosixSemaphore::new_shared(0),
        }
    }
    #[inline]
    fn ask(&self) {
        self.ping.post();
        self.pong.wait();
    }
    #[inline]
    fn answer(&self) {
        self.ping.wait();
        self.pong.post();
    }
}

/// A bare shared futex word saying whose turn it is: the floor a futex-based
/// ping-pong can reach without spinning.
pub struct FutexPingPong(&'static FutexTurn);

impl FutexPingPong {
    /// The word's value while the child has the turn.
    const CHILDS_TURN: u32 = 1;
    /// The word's value while the parent has the turn (and at the start).
    const PARENTS_TURN: u32 = 0;
}

impl PingPong for FutexPingPong {
    const NAME: &'static str = "ping-pong raw futex";
    fn new() -> Self {
        Self(peers::shared(FutexTurn(StdAtomicU32::new(
            Self::PARENTS_TURN,
        ))))
    }
    #[inline]
    fn ask(&self) {
        self.0.pass(Self::CHILDS_TURN);
        self.0.wait_while(Self::CHILDS_TURN);
    }
    #[inline]
    fn answer(&self) {
        self.0.wait_while(Self::PARENTS_TURN);
        self.0.pass(Self::PARENTS_TURN);
    }
}

// ---------------------------------------------------------------------------------
// Item channels.

/// Items handed from producer processes to consumer processes, each item to one
/// consumer.
pub trait ItemChannel: Sync {
    /// The name of its samples with 1 producer and 1 consumer.
    const NAME_1P1C: &'static str;
    /// The name of its samples with 2 producers and 2 consumers.
    const NAME_2P2C: &'static str;
    /// A fresh empty one, shared with the children forked later.
    fn new() -> Self;
    /// Hands `item` to some consumer, waiting while the channel is full.
    fn send(&self, item: u64);
    /// Takes one item, waiting while there is none.
    fn receive(&self) -> u64;
}

/// How many items the shmsync queue of the benchmark holds.
pub const QUEUE_CAPACITY: usize = 1024;

/// shmsync's [`Queue`] of `u64`, in a shared segment.
pub struct ShmsyncQueue(Shared<Queue<u64, QUEUE_CAPACITY>>);

impl ItemChannel for ShmsyncQueue {
    const NAME_1P1C: &'static str = "queue shmsync 1p1c";
    const NAME_2P2C: &'static str = "queue shmsync 2p2c";
    fn new() -> Self {
        Self(Shared::anonymous(Queue::new()).expect("an anonymous shared segment"))
    }
    #[inline]
    fn send(&self, item: u64) {
        self.0
            .put(item)
            .expect("nobody closes the benchmark's queue");
    }
    #[inline]
    fn receive(&self) -> u64 {
        self.0.get().expect("nobody closes the benchmark's queue")
    }
}

/// A pipe carrying the same 8-byte items, one `write` and one `read` each. A write of
/// at most `PIPE_BUF` bytes is atomic, so the pipe only ever holds whole items and
/// several writers and readers each move whole ones. Holds 8192 items (64 KiB).
pub struct Pipe(peers::Pipe);

impl ItemChannel for Pipe {
    const NAME_1P1C: &'static str = "queue pipe 1p1c";
    const NAME_2P2C: &'static str = "queue pipe 2p2c";
    fn new() -> Self {
        Self(peers::Pipe::new())
    }
    #[inline]
    fn send(&self, item: u64) {
        self.0.write(&item.to_ne_bytes());
    }
    #[inline]
    fn receive(&self) -> u64 {
        let mut bytes = [0; 8];
        self.0.read(&mut bytes);
        u64::from_ne_bytes(bytes)
    }
}

shm_struct! {
    /// A turn guarded by a lock, waited for on one condition by both sides.
    pub struct ConditionTurn { lock: Lock, condition: Condition, childs_turn: Value<u32> }
}

/// shmsync's [`Condition`] over its [`Lock`]: each side sets the turn, notifies one,
/// and waits on the same condition for the turn to come back.
pub struct ConditionPingPong(Shared<ConditionTurn>);

impl PingPong for ConditionPingPong {
    const NAME: &'static str = "ping-pong shmsync Condition";
    fn new() -> Self {
        Self(
            Shared::anonymous(ConditionTurn {
                lock: Lock::new(),
                condition: Condition::new(),
                childs_turn: Value::new(0),
            })
            .expect("an anonymous shared segment"),
        )
    }
    #[inline]
    fn ask(&self) {
        let turn = &self.0;
        let held = turn.lock.lock().expect("nobody dies in the benchmark");
        turn.childs_turn.set(1);
        turn.condition.notify_one();
        let held = turn
            .condition
            .wait_while(held, || turn.childs_turn.get() == 1);
        drop(held.expect("nobody dies in the benchmark"));
    }
    #[inline]
    fn answer(&self) {
        let turn = &self.0;
        let held = turn.lock.lock().expect("nobody dies in the benchmark");
        let held = turn
            .condition
            .wait_while(held, || turn.childs_turn.get() == 0)
            .expect("nobody dies in the benchmark");
        turn.childs_turn.set(0);
        turn.condition.notify_one();
        drop(held);
    }
}

/// A process-shared `pthread_cond_t` over a process-shared mutex, used as
/// [`ConditionPingPong`] uses shmsync's.
pub struct PthreadCondPingPong {
    /// Guards the turn.
    mutex: &'static PthreadMutex,
    /// Both sides wait on it.
    cond: &'static PthreadCond,
    /// 1 while the child has the turn.
    childs_turn: SharedCell<u32>,
}

impl PingPong for PthreadCondPingPong {
    const NAME: &'static str = "ping-pong pthread_cond pshared";
    fn new() -> Self {
        Self {
            mutex: PthreadMutex::new_shared(false),
            cond: PthreadCond::new_shared(),
            childs_turn: SharedCell::new(0),
        }
    }
    #[inline]
    fn ask(&self) {
        self.mutex.lock();
        self.childs_turn.set(1);
        self.cond.signal();
        while self.childs_turn.get() == 1 {
            self.cond.wait(self.mutex);
        }
        self.mutex.unlock();
    }
    #[inline]
    fn answer(&self) {
        self.mutex.lock();
        while self.childs_turn.get() == 0 {
            self.cond.wait(self.mutex);
        }
        self.childs_turn.set(0);
        self.cond.signal();
        self.mutex.unlock();
    }
}

/// shmsync's [`Barrier`] for 2: a round trip is one generation crossed by both.
pub struct BarrierPingPong(Shared<Barrier>);

impl PingPong for BarrierPingPong {
    const NAME: &'static str = "barrier(2) shmsync Barrier";
    fn new() -> Self {
        Self(Shared::anonymous(Barrier::new(2)).expect("an anonymous shared segment"))
    }
    #[inline]
    fn ask(&self) {
        self.0
            .wait()
            .expect("nobody breaks the benchmark's barrier");
    }
    #[inline]
    fn answer(&self) {
        self.0
            .wait()
            .expect("nobody breaks the benchmark's barrier");
    }
}

/// A process-shared `pthread_barrier_t` for 2.
pub struct PthreadBarrierPingPong(&'static PthreadBarrier);

impl PingPong for PthreadBarrierPingPong {
    const NAME: &'static str = "barrier(2) pthread pshared";
    fn new() -> Self {
        Self(PthreadBarrier::new_shared(2))
    }
    #[inline]
    fn ask(&self) {
        self.0.wait();
    }
    #[inline]
    fn answer(&self) {
        self.0.wait();
    }
}

// ---------------------------------------------------------------------------------
// Semaphore-limited pools.

/// shmsync's [`Semaphore`] as the pool's gate.
pub struct ShmsyncPool(Shared<Semaphore>);

impl SemaphorePool for ShmsyncPool {
    const NAME: &'static str = "pool shmsync Semaphore";
    fn new(slots: u32) -> Self {
        Self(Shared::anonymous(Semaphore::new(slots)).expect("an anonymous shared segment"))
    }
    fn acquire(&self) {
        self.0.acquire();
    }
    fn release(&self) {
        self.0.release();
    }
}

/// A process-shared `sem_t` as the pool's gate.
pub struct SemTPool(&'static PosixSemaphore);

impl SemaphorePool for SemTPool {
    const NAME: &'static str = "pool sem_t";
    fn new(slots: u32) -> Self {
        Self(PosixSemaphore::new_shared(slots))
    }
    fn acquire(&self) {
        self.0.wait();
    }
    fn release(&self) {
        self.0.post();
    }
}

// ---------------------------------------------------------------------------------
// Idle waiters.

/// Waiters on an [`Event`] nobody sets.
pub struct IdleEvent(Event);

impl IdleWaiter for IdleEvent {
    const NAME: &'static str = "idle shmsync Event";
    fn new() -> Self {
        Self(Event::new())
    }
    fn wait_unsignalled(&self, window: Duration) {
        assert!(!self.0.wait_timeout(window), "nobody sets it");
    }
}

/// Waiters on a [`Semaphore`] at zero that nobody releases.
pub struct IdleSemaphore(Semaphore);

impl IdleWaiter for IdleSemaphore {
    const NAME: &'static str = "idle shmsync Semaphore";
    fn new() -> Self {
        Self(Semaphore::new(0))
    }
    fn wait_unsignalled(&self, window: Duration) {
        assert!(!self.0.acquire_timeout(window), "nobody releases it");
    }
}

/// Waiters on a [`Lock`] that the thread that made it holds until it drops it.
pub struct IdleLock(Lock);

impl IdleWaiter for IdleLock {
    const NAME: &'static str = "idle shmsync Lock";
    fn new() -> Self {
        let lock = Lock::new();
        lock.acquire().expect("a fresh lock");
        Self(lock)
    }
    fn wait_unsignalled(&self, window: Duration) {
        assert!(self.0.lock_timeout(window).is_err(), "its maker holds it");
    }
}

impl Drop for IdleLock {
    fn drop(&mut self) {
        // On the thread that made it, which holds it.
        self.0.release().expect("held since it was made");
    }
}

/// Waiters on a process-shared `sem_t` at zero that nobody posts.
pub struct IdleSemT(&'static PosixSemaphore);

impl IdleWaiter for IdleSemT {
    const NAME: &'static str = "idle sem_t";
    fn new() -> Self {
        Self(PosixSemaphore::new_shared(0))
    }
    fn wait_unsignalled(&self, window: Duration) {
        assert!(!self.0.wait_timeout(window), "nobody posts it");
    }
}
