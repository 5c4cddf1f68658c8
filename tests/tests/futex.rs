//! The futex backend under the conditions it must survive: signals (EINTR), spurious
//! wake-ups, waiters asleep through set-then-clear, zero and huge timeouts, and
//! timeouts across processes.

use shmsync::{Event, Futex, Lock, Process, Semaphore, Shared, TryLockError, Value};
use shmsync_core::{AtomicU32, Wait};
use shmsync_tests::{join, join_thread, until, Stop};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Waits until every task whose `/proc/.../stat` file `stat_files` names is asleep
/// (state S) in the kernel.
fn until_asleep(stat_files: impl Fn() -> Vec<String>) {
    let asleep = |file: &String| {
        // The state follows the parenthesised command name.
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'))
    };
    let began = Instant::now();
    while !stat_files().iter().all(asleep) {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "waiters never slept"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn gettid() -> i32 {
    nix::unistd::gettid().as_raw()
}

fn this_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Installs a SIGUSR1 handler without SA_RESTART, so a blocked futex call returns EINTR.
fn interruptible() {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(ignore),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::SIGUSR1, &action) }.unwrap();
}

/// Sends SIGUSR1 to `thread` every millisecond until `stop` is set.
fn pester(thread: libc::pthread_t, stop: &AtomicBool) -> usize {
    let mut sent = 0;
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: `thread` is alive until `stop` is set (the caller joins it after).
        unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        sent += 1;
        thread::sleep(Duration::from_millis(1));
    }
    sent
}

#[test]
fn signals_do_not_end_a_blocking_wait() {
    interruptible();
    // Leaked, not scoped: a waiter that never wakes is left behind, and the test fails.
    let lock: &'static Lock = Box::leak(Box::new(Lock::new()));
    let sem: &'static Semaphore = Box::leak(Box::new(Semaphore::new(0)));
    let event: &'static Event = Box::leak(Box::new(Event::new()));
    let released: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let stop = AtomicBool::new(false);
    let held = lock.lock().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = thread::spawn(move || {
        tx.send(this_thread()).unwrap();
        let _lock = lock.lock().unwrap();
        assert!(released.load(Ordering::SeqCst), "lock taken while held");
        sem.acquire();
        event.wait();
        assert!(event.is_set());
    });
    let id = rx.recv().unwrap();
    thread::scope(|s| {
        // A waiter that fails or hangs must not leave the pest signalling for ever.
        let _stop = Stop(&stop);
        let stop = &stop;
        let pest = s.spawn(move || pester(id, stop));
        thread::sleep(Duration::from_millis(30));
        released.store(true, Ordering::SeqCst);
        drop(held);
        thread::sleep(Duration::from_millis(30));
        sem.release();
        thread::sleep(Duration::from_millis(30));
        event.set();
        // Pestered until it is through its waits, and joined only once the pest
        // stopped: the pest's signals need the thread not yet joined.
        shmsync_tests::until(
            || waiter.is_finished(),
            "the waiter to get through its waits",
        );
        stop.store(true, Ordering::SeqCst);
        assert!(
            pest.join().unwrap() > 10,
            "too few signals to mean anything"
        );
    });
    shmsync_tests::join_thread(waiter);
}

#[test]
fn signals_do_not_restart_a_timeout() {
    interruptible();
    let lock = Lock::new();
    let _held = lock.lock().unwrap();
    let stop = AtomicBool::new(false);
    let timeout = Duration::from_millis(100);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            tx.send(this_thread()).unwrap();
            let began = Instant::now();
            assert_eq!(
                lock.lock_timeout(timeout).err(),
                Some(TryLockError::WouldBlock)
            );
            began.elapsed()
        });
        let id = rx.recv().unwrap();
        let stop = &stop;
        let pest = s.spawn(move || pester(id, stop));
        let waited = waiter.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        pest.join().unwrap();
        // A timeout that restarted at each of ~100 signals would never end; this one
        // ends at its deadline (the bound is loose: the machine may be slow).
        assert!(
            waited >= timeout && waited < Duration::from_secs(30),
            "{waited:?}"
        );
    });
}

#[test]
fn spurious_wakeups_are_absorbed() {
    // Leaked, not scoped: a locker that never wakes is left behind, and the test fails.
    let lock: &'static Lock = Box::leak(Box::new(Lock::new()));
    let held = lock.lock().unwrap();
    let released: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let stop = AtomicBool::new(false);
    // SAFETY: Lock is #[repr(C)] and begins with two AtomicU32s, as its docs state: the
    // lock's word and the word its sleepers wait on (the robust-list record follows, at
    // offset 8); `lock` is leaked, so they live for ever.
    let words = unsafe { &*(lock as *const Lock).cast::<[AtomicU32; 2]>() };
    let locker = thread::spawn(move || {
        let _lock = lock.lock().unwrap();
        assert!(
            released.load(Ordering::SeqCst),
            "woken spuriously and took a held lock"
        );
    });
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                for word in words {
                    Futex::wake_all(word);
                }
                thread::yield_now();
            }
        });
        thread::sleep(Duration::from_millis(50));
        released.store(true, Ordering::SeqCst);
        drop(held);
        thread::sleep(Duration::from_millis(10));
        stop.store(true, Ordering::SeqCst);
    });
    shmsync_tests::join_thread(locker);
}

#[test]
fn sleeping_waiters_wake_through_set_then_clear() {
    // Leaked, not scoped: waiters that never wake are left behind, and the test fails.
    let event: &'static Event = Box::leak(Box::new(Event::new()));
    let tids: &'static [Value<i32>; 3] =
        Box::leak(Box::new([Value::new(0), Value::new(0), Value::new(0)]));
    let waiters: Vec<_> = tids
        .iter()
        .map(|tid| {
            thread::spawn(move || {
                tid.set(gettid());
                event.wait();
            })
        })
        .collect();
    // Once every waiter is asleep in the kernel, set and clear at once.
    until_asleep(|| {
        tids.iter()
            .map(|t| format!("/proc/self/task/{}/stat", t.get()))
            .collect()
    });
    event.set();
    event.clear();
    for waiter in waiters {
        shmsync_tests::join_thread(waiter);
    }
    assert!(!event.is_set());
}

#[test]
fn sleeping_processes_wake_through_set_then_clear() {
    let event = Shared::anonymous(Event::new()).unwrap();
    // Daemons: a lost wake-up leaves them asleep, to be killed, not waited for.
    let children: Vec<Process> = (0..3)
        .map(|_| shmsync_tests::daemon(Process::spawn(|| event.wait()).unwrap()))
        .collect();
    until_asleep(|| {
        children
            .iter()
            .map(|c| format!("/proc/{}/stat", c.pid()))
            .collect()
    });
    event.set();
    event.clear();
    for child in children {
        assert!(join(child).success());
    }
}

#[test]
fn zero_and_huge_timeouts() {
    let lock: &'static Lock = Box::leak(Box::new(Lock::new()));
    let sem: &'static Semaphore = Box::leak(Box::new(Semaphore::new(0)));
    let held = lock.lock().unwrap();
    assert_eq!(
        lock.lock_timeout(Duration::ZERO).err(),
        Some(TryLockError::WouldBlock)
    );
    assert!(!sem.acquire_timeout(Duration::ZERO));
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::new(u64::MAX, 999_999_999),
    ];
    // Not scoped: a waiter whose huge timeout never ends is left behind, and the test
    // fails.
    let waiters = [
        thread::spawn(move || {
            for timeout in huge {
                assert!(lock.lock_timeout(timeout).is_ok());
            }
        }),
        thread::spawn(move || {
            for timeout in huge {
                assert!(sem.acquire_timeout(timeout));
            }
        }),
    ];
    thread::sleep(Duration::from_millis(20));
    drop(held);
    sem.release_n(3);
    for waiter in waiters {
        shmsync_tests::join_thread(waiter);
    }
    // A deadline already past on the futex's clock returns at once, without error.
    let past_returns = shmsync_tests::returns_within(shmsync_tests::HANG, || {
        let word = AtomicU32::new(0);
        Futex::wait(&word, 0, Some(0));
    });
    assert!(past_returns, "a wait for a deadline already past slept on");
}

#[test]
fn timeouts_hold_across_processes() {
    shmsync::shm_struct! {
        struct Pair { lock: Lock, release: Event, holding: Event }
    }
    let pair = Shared::anonymous(Pair {
        lock: Lock::new(),
        release: Event::new(),
        holding: Event::new(),
    })
    .unwrap();
    // A daemon: if the test fails before it releases the holder, the holder is killed.
    let holder = shmsync_tests::daemon(
        Process::spawn(|| {
            let _held = pair.lock.lock().unwrap();
            pair.holding.set();
            pair.release.wait();
        })
        .unwrap(),
    );
    assert!(
        pair.holding.wait_timeout(shmsync_tests::HANG),
        "the holder never took the lock"
    );
    let timeout = Duration::from_millis(50);
    let began = Instant::now();
    assert_eq!(
        pair.lock.lock_timeout(timeout).err(),
        Some(TryLockError::WouldBlock)
    );
    assert!(began.elapsed() >= timeout);
    pair.release.set();
    assert!(pair.lock.lock_timeout(Duration::from_secs(30)).is_ok());
    assert!(join(holder).success());
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes a bit inside it (cpu is
    // below CPU_SETSIZE, from the kernel's own mask); sched_setaffinity only reads it.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(pinned, 0, "{}", std::io::Error::last_os_error());
}

/// The first CPU the calling thread may run on.
fn first_allowed_cpu() -> usize {
    // SAFETY: sched_getaffinity fills the zeroed set, which CPU_ISSET then reads.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .expect("some CPU is allowed")
    }
}

#[test]
fn a_yield_that_gave_the_cpu_to_another_thread_marks_the_thread_crowded() {
    let cpu = first_allowed_cpu();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let _stop = Stop(&stop);
        s.spawn(|| {
            pin_to(cpu);
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        pin_to(cpu);
        // The scheduler does not give the CPU away at every yield; within a few it does.
        let began = Instant::now();
        loop {
            assert!(
                began.elapsed() < shmsync_tests::HANG,
                "no yield ever gave the CPU to the competitor"
            );
            let yielding = Instant::now();
            if !Futex::yield_now() {
                continue;
            }
            if Futex::crowded() {
                break;
            }
            // Crowded for 10 ms from the yield's end: only a thread kept off its CPU
            // that long since (the competitor's time slice on a loaded machine) may
            // find it over, and then tries again.
            assert!(
                yielding.elapsed() >= Duration::from_millis(10),
                "a thread that gave its CPU away must not spin next time"
            );
        }
    });
}

/// A waiter on two words is queued on both: a wake-up on the second (the kernel's, at a
/// lock holder's death, comes there) reaches it, as one on the first does.
#[test]
fn a_wait_on_two_words_hears_a_wake_up_on_either() {
    static FIRST: AtomicU32 = AtomicU32::new(0);
    static SECOND: AtomicU32 = AtomicU32::new(7);
    for wake_on in [&SECOND, &FIRST] {
        let waiter = thread::spawn(|| Futex::wait_either(&FIRST, 0, &SECOND, 7, None));
        // Reports a waiter only once one is queued on that word: a wait that returned
        // at once, or one queued on the other word alone, never is.
        until(
            || Futex::wake_one_reporting(wake_on),
            "the waiter to be woken on the word it watches",
        );
        join_thread(waiter);
    }
}
