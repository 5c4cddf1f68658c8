//! The contenders, one type each, in the manner of parking_lot's
//! `benchmark/src/bin/mutex.rs`: every kind of measurement is a small trait, and every
//! primitive it compares is a type implementing it. A contender's `NAME` is the name
//! its samples are filed under and the comparisons refer to.
//!
//! - [`UncontendedLock`]: one thread takes and releases a lock nobody else wants (and
//!   a read or write lock of a readers-writer lock).
//! - [`SharedCounter`]: two forked processes increment one counter in shared memory.
//! - [`PingPong`]: two processes hand a turn back and forth (or cross a barrier).
//! - [`ItemChannel`]: producer processes hand numbered items to consumer processes.

use crate::peers::{
    self, FutexTurn, PosixSemaphore, PthreadBarrier, PthreadCond, PthreadMutex, PthreadRwLock,
    SharedCell,
};
use shmsync::{
    shm_struct, Barrier, Condition, Event, Futex, Lock, Queue, RwLock, Semaphore, Shared, Value,
};
use shmsync_core::Unowned;
use std::sync::atomic::AtomicU32 as StdAtomicU32;

/// A lock taken and released by one thread, with nobody else around.
pub trait UncontendedLock {
    /// The name of its samples.
    const NAME: &'static str;
    /// A fresh unlocked one, where it would live in use (in shared memory for the
    /// process-shared ones).
    fn new() -> Self;
    /// Takes the lock and releases it.
    fn lock_unlock(&self);
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

// ---------------------------------------------------------------------------------
// Uncontended locks.

/// shmsync's [`Lock`], in a shared segment.
pub struct ShmsyncLock(Shared<Lock>);

impl UncontendedLock for ShmsyncLock {
    const NAME: &'static str = "lock shmsync";
    fn new() -> Self {
        Self(Shared::anonymous(Lock::new()).expect("an anonymous shared segment"))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.lock());
    }
}

/// shmsync's lock on the futex backend with no owner recorded ([`Unowned`]): what the
/// lock's fast path would cost if it did not record its owner.
pub struct ShmsyncLockNoOwner(shmsync_core::Lock<Futex, Unowned>);

impl UncontendedLock for ShmsyncLockNoOwner {
    const NAME: &'static str = "lock shmsync, no owner recording";
    fn new() -> Self {
        Self(shmsync_core::Lock::new())
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.lock());
    }
}

/// [`std::sync::Mutex`], for threads of one process.
pub struct StdMutex(std::sync::Mutex<()>);

impl UncontendedLock for StdMutex {
    const NAME: &'static str = "lock std::sync::Mutex";
    fn new() -> Self {
        Self(std::sync::Mutex::new(()))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.lock());
    }
}

/// [`parking_lot::Mutex`], for threads of one process.
pub struct ParkingLotMutex(parking_lot::Mutex<()>);

impl UncontendedLock for ParkingLotMutex {
    const NAME: &'static str = "lock parking_lot::Mutex";
    fn new() -> Self {
        Self(parking_lot::Mutex::new(()))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.lock());
    }
}

/// A `PTHREAD_PROCESS_SHARED` pthread mutex in shared memory.
pub struct PthreadShared(&'static PthreadMutex);

impl UncontendedLock for PthreadShared {
    const NAME: &'static str = "lock pthread pshared";
    fn new() -> Self {
        Self(PthreadMutex::new_shared(false))
    }
    #[inline]
    fn lock_unlock(&self) {
        self.0.lock();
        self.0.unlock();
    }
}

/// A `PTHREAD_PROCESS_SHARED`, `PTHREAD_MUTEX_ROBUST` pthread mutex in shared memory:
/// the one that, like shmsync's, reports its holder's death.
pub struct PthreadRobust(&'static PthreadMutex);

impl UncontendedLock for PthreadRobust {
    const NAME: &'static str = "lock pthread pshared robust";
    fn new() -> Self {
        Self(PthreadMutex::new_shared(true))
    }
    #[inline]
    fn lock_unlock(&self) {
        self.0.lock();
        self.0.unlock();
    }
}

/// A read lock of shmsync's [`RwLock`], in a shared segment.
pub struct ShmsyncRead(Shared<RwLock>);

impl UncontendedLock for ShmsyncRead {
    const NAME: &'static str = "read shmsync RwLock";
    fn new() -> Self {
        Self(Shared::anonymous(RwLock::new()).expect("an anonymous shared segment"))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.read());
    }
}

/// The write lock of shmsync's [`RwLock`], in a shared segment.
pub struct ShmsyncWrite(Shared<RwLock>);

impl UncontendedLock for ShmsyncWrite {
    const NAME: &'static str = "write shmsync RwLock";
    fn new() -> Self {
        Self(Shared::anonymous(RwLock::new()).expect("an anonymous shared segment"))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.write());
    }
}

/// A read lock of a `PTHREAD_PROCESS_SHARED` pthread rwlock in shared memory.
pub struct PthreadRead(&'static PthreadRwLock);

impl UncontendedLock for PthreadRead {
    const NAME: &'static str = "read pthread rwlock pshared";
    fn new() -> Self {
        Self(PthreadRwLock::new_shared())
    }
    #[inline]
    fn lock_unlock(&self) {
        self.0.read();
        self.0.unlock();
    }
}

/// The write lock of a `PTHREAD_PROCESS_SHARED` pthread rwlock in shared memory.
pub struct PthreadWrite(&'static PthreadRwLock);

impl UncontendedLock for PthreadWrite {
    const NAME: &'static str = "write pthread rwlock pshared";
    fn new() -> Self {
        Self(PthreadRwLock::new_shared())
    }
    #[inline]
    fn lock_unlock(&self) {
        self.0.write();
        self.0.unlock();
    }
}

/// A read lock of [`parking_lot::RwLock`], for threads of one process.
pub struct ParkingLotRead(parking_lot::RwLock<()>);

impl UncontendedLock for ParkingLotRead {
    const NAME: &'static str = "read parking_lot::RwLock";
    fn new() -> Self {
        Self(parking_lot::RwLock::new(()))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.read());
    }
}

/// A read lock of [`std::sync::RwLock`], for threads of one process.
pub struct StdRead(std::sync::RwLock<()>);

impl UncontendedLock for StdRead {
    const NAME: &'static str = "read std::sync::RwLock";
    fn new() -> Self {
        Self(std::sync::RwLock::new(()))
    }
    #[inline]
    fn lock_unlock(&self) {
        drop(self.0.read());
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
