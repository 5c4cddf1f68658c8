//! The thread's robust list as the kernel walks it, against what the thread holds: after
//! every step of a random mix of guards, hand releases, re-takes, stale guards dropped,
//! out-of-order drops and a full table, the list names exactly the locks the thread
//! holds (no more, no fewer, no loop) and nothing is pending; and when the thread exits,
//! the kernel marks exactly those.

use shmsync::{Lock, LockGuard, TryLockError};
use shmsync_tests::XorShift;
use std::collections::BTreeSet;

/// More locks than a thread may hold at once (32), so that the table fills.
const LOCKS: usize = 40;
const STEPS: usize = 4_000;

/// The kernel's `struct robust_list_head`.
#[repr(C)]
struct ListHead {
    list: usize,
    futex_offset: isize,
    pending: usize,
}

/// The calling thread's registered robust-list head.
fn head() -> *const ListHead {
    let mut head: *const ListHead = std::ptr::null();
    let mut len = 0usize;
    // SAFETY: get_robust_list(0, ..) writes the calling thread's head and its length
    // through two pointers to locals.
    let result = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0,
            &mut head as *mut *const ListHead,
            &mut len as *mut usize,
        )
    };
    assert_eq!(result, 0);
    assert!(!head.is_null());
    head
}

/// The indices of `locks` whose words the kernel would visit on this thread's list, and
/// the list's pending entry (as an index, if it is one of `locks`, or its raw value).
fn on_the_list(locks: &[Lock]) -> (Vec<usize>, Result<Option<usize>, usize>) {
    let head = head();
    // SAFETY: the calling thread's registered head, valid while it runs.
    let futex_offset = unsafe { (*head).futex_offset };
    let index_of = |entry: usize| {
        let word = (entry as isize + futex_offset) as usize;
        locks
            .iter()
            .position(|lock| lock as *const Lock as usize == word)
    };
    let mut found = Vec::new();
    // SAFETY: the list is this thread's own, only this thread changes it, and every
    // entry on it is a live lock or node (what this test checks is which ones).
    let mut entry = unsafe { (*head).list };
    let mut steps = 0;
    while entry != head as usize {
        steps += 1;
        assert!(steps < 2048, "the list loops (the kernel gives up at 2048)");
        if let Some(index) = index_of(entry) {
            found.push(index);
        }
        // SAFETY: as above.
        entry = unsafe { *(entry as *const usize) } & !1;
    }
    // SAFETY: the head is this thread's.
    let pending = unsafe { (*head).pending };
    let pending = match pending {
        0 => Ok(None),
        entry => index_of(entry).map(Some).ok_or(entry),
    };
    (found, pending)
}

struct Held<'a> {
    index: usize,
    guard: LockGuard<'a>,
    /// Released by hand since: dropping it must release nothing.
    stale: bool,
}

fn run(seed: u64, locks: &[Lock]) -> BTreeSet<usize> {
    let mut random = XorShift(seed);
    let mut held = BTreeSet::new();
    let mut guards: Vec<Held> = Vec::new();
    for step in 0..STEPS {
        let mut index = random.below(LOCKS as u64) as usize;
        // Often the newest guard's lock: released by hand at the top of the table and
        // taken again there, its stale guard is the one the release's quick check must
        // tell from the new hold.
        if let Some(newest) = guards.last().filter(|_| random.below(2) == 0) {
            index = newest.index;
        }
        let lock = &locks[index];
        // Phases that fill the table (to the 33rd lock) and phases that empty it.
        let filling = (step / 300) % 2 == 0;
        let choice = random.below(6);
        let choice = if filling && choice >= 3 && random.below(3) != 0 {
            choice - 3
        } else {
            choice
        };
        match choice {
            0 | 1 if !held.contains(&index) => {
                if held.len() == 32 {
                    if random.below(8) != 0 {
                        continue; // each refusal prints its panic: now and then
                    }
                    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        drop(lock.try_lock())
                    }));
                    assert!(refused.is_err(), "step {step}: a 33rd lock was taken");
                } else {
                    guards.push(Held {
                        index,
                        guard: lock.try_lock().unwrap(),
                        stale: false,
                    });
                    held.insert(index);
                }
            }
            2 if !held.contains(&index) && held.len() < 32 => {
                lock.try_acquire().unwrap();
                held.insert(index);
            }
            3 if held.contains(&index) => {
                lock.release().unwrap();
                held.remove(&index);
                for guard in guards.iter_mut().filter(|g| g.index == index) {
                    guard.stale = true;
                }
                if random.below(2) == 0 {
                    guards.push(Held {
                        index,
                        guard: lock.try_lock().unwrap(),
                        stale: false,
                    });
                    held.insert(index);
                }
            }
            4 | 5 if !guards.is_empty() => {
                // Mostly the newest (the common, in-order case), else any.
                let at = if random.below(2) == 0 {
                    guards.len() - 1
                } else {
                    random.below(guards.len() as u64) as usize
                };
                let dropped = guards.remove(at);
                if !dropped.stale {
                    held.remove(&dropped.index);
                }
                drop(dropped.guard);
            }
            _ => continue,
        }
        for (index, lock) in locks.iter().enumerate() {
            assert_eq!(
                lock.is_locked(),
                held.contains(&index),
                "seed {seed} step {step}: lock {index}"
            );
        }
        let (mut found, pending) = on_the_list(locks);
        let listed = found.len();
        found.sort_unstable();
        found.dedup();
        assert_eq!(listed, found.len(), "seed {seed} step {step}: listed twice");
        assert_eq!(
            found,
            held.iter().copied().collect::<Vec<_>>(),
            "seed {seed} step {step}: the kernel's list differs from the holds"
        );
        assert_eq!(pending, Ok(None), "seed {seed} step {step}: left pending");
    }
    for held in guards {
        std::mem::forget(held.guard);
    }
    held
}

#[test]
fn the_kernel_list_names_exactly_the_held_locks_at_every_step() {
    for seed in [1, 0x9e37_79b9, 12345, 777_777, 0xdead_beef] {
        let locks: Vec<Lock> = (0..LOCKS).map(|_| Lock::new()).collect();
        let held = std::thread::scope(|s| s.spawn(|| run(seed, &locks)).join().unwrap());
        // The thread exited holding `held`: the kernel marked exactly those.
        for (index, lock) in locks.iter().enumerate() {
            match lock.try_lock() {
                Err(TryLockError::OwnerDied(guard)) => {
                    assert!(held.contains(&index), "seed {seed}: lock {index} marked");
                    guard.mark_consistent();
                }
                Ok(_) => assert!(!held.contains(&index), "seed {seed}: {index} not marked"),
                Err(other) => panic!("seed {seed}: lock {index}: {other:?}"),
            }
        }
    }
}

shmsync::shm_struct! {
    struct Pair { first: Lock, second: Lock, rounds: shmsync::Value<u64> }
}

/// A process killed at any instruction of a tight loop of uncontended locks and
/// unlocks (two locks, released in order and out of order, so that both the quick
/// release and the long way run) leaves neither lock held by the dead: the kernel finds
/// each on the list or pending, whatever store of the release it was killed at.
#[test]
fn a_process_killed_anywhere_in_its_releases_strands_no_lock() {
    const TRIALS: u32 = 300;
    let mut random = XorShift(0x5eed_0019_0000_0001);
    let mut died_holding = 0;
    for trial in 0..TRIALS {
        let pair = shmsync::Shared::<Pair>::anonymous_with(|_| {}).unwrap();
        let mut child = shmsync::Process::spawn(|| {
            let mut round = 0u64;
            loop {
                let first = pair.first.lock().unwrap();
                let second = pair.second.lock().unwrap();
                if round.is_multiple_of(2) {
                    drop(second);
                    drop(first);
                } else {
                    drop(first);
                    drop(second);
                }
                round += 1;
                if round.is_multiple_of(64) {
                    pair.rounds.set(round);
                }
            }
        })
        .unwrap();
        // It loops for ever: killed, not waited for, if the test fails first.
        child.set_daemon(true);
        shmsync_tests::until(|| pair.rounds.get() > 0, "the child's first rounds");
        std::thread::sleep(std::time::Duration::from_micros(random.below(300)));
        child.kill().unwrap();
        assert!(shmsync_tests::join(child).signal().is_some());
        for lock in [&pair.first, &pair.second] {
            assert!(!lock.is_locked(), "trial {trial}: a lock held by the dead");
            match lock.lock_timeout(std::time::Duration::from_secs(10)) {
                Ok(_) => {}
                Err(TryLockError::OwnerDied(guard)) => {
                    died_holding += 1;
                    guard.mark_consistent();
                }
                Err(error) => panic!("trial {trial}: {error}"),
            }
        }
    }
    eprintln!("{TRIALS} kills, {died_holding} locks taken from the dead");
    assert!(died_holding > 0, "no kill landed while a lock was held");
}

shmsync::shm_struct! {
    struct Three { locks: [Lock; 3] }
}

/// What the kernel would act on if the child died at this instruction: every lock
/// whose word names the child is on its robust list or its pending entry. Reads the
/// stopped child's memory; `Err` says what is wrong.
fn kernel_would_mark_every_held_lock(child: libc::pid_t, words: &[usize]) -> Result<(), String> {
    let read = |address: usize, size: usize| -> Result<u64, String> {
        let mut value = 0u64;
        let local = libc::iovec {
            iov_base: (&mut value as *mut u64).cast(),
            iov_len: size,
        };
        let remote = libc::iovec {
            iov_base: address as *mut libc::c_void,
            iov_len: size,
        };
        // SAFETY: `local` is a live local of at least `size` bytes; the kernel checks
        // the child's range.
        let got = unsafe { libc::process_vm_readv(child, &local, 1, &remote, 1, 0) };
        if got == size as isize {
            Ok(value)
        } else {
            Err(format!(
                "reading {address:#x}: {}",
                std::io::Error::last_os_error()
            ))
        }
    };
    let mut head = 0usize;
    let mut len = 0usize;
    // SAFETY: get_robust_list writes the child's head and its length into two locals.
    let result = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            child,
            &mut head as *mut usize,
            &mut len as *mut usize,
        )
    };
    if result != 0 || head == 0 {
        return Err("no robust list".into());
    }
    let futex_offset = read(head + 8, 8)? as i64;
    let pending = read(head + 16, 8)? as usize;
    let mut listed = Vec::new();
    let mut entry = read(head, 8)? as usize;
    while entry != head {
        if listed.len() > 2048 {
            return Err("the list loops".into());
        }
        listed.push((entry as i64 + futex_offset) as usize);
        entry = read(entry, 8)? as usize & !1;
    }
    let pending = (pending != 0).then(|| (pending as i64 + futex_offset) as usize);
    for (index, &word) in words.iter().enumerate() {
        let value = read(word, 4)? as u32;
        if value & ID == child as u32 && !listed.contains(&word) && pending != Some(word) {
            return Err(format!(
                "lock {index} (word {value:#x}) names the child, but is neither on its \
                 list nor pending: a death now would leave it held for ever"
            ));
        }
    }
    Ok(())
}

const ID: u32 = (1 << 30) - 1;

/// What the traced child does, instruction by instruction: every kind of take and
/// release a thread makes, uncontended, in order and out of order.
fn lock_and_release_every_way(three: &Three) {
    let [a, b, c] = &three.locks;
    // In order: the quick release at the top.
    let ga = a.lock().unwrap();
    let gb = b.lock().unwrap();
    drop(gb);
    drop(ga);
    // Out of order, a hole filled, and the stack shrinking past it.
    let ga = a.lock().unwrap();
    let gb = b.lock().unwrap();
    let gc = c.lock().unwrap();
    drop(gb);
    let gb = b.lock().unwrap();
    drop(ga);
    drop(gc);
    drop(gb);
    // Released by hand, taken again, then the stale guard dropped.
    let stale = a.lock().unwrap();
    a.release().unwrap();
    a.acquire().unwrap();
    drop(stale);
    a.release().unwrap();
    // Died holding one: the kernel's own walk at the exit.
    std::mem::forget(b.lock().unwrap());
}

/// A traced child, killed and reaped if the test ends before it does.
struct Tracee(libc::pid_t);

impl Drop for Tracee {
    fn drop(&mut self) {
        // SAFETY: our own child, not reaped yet (so its pid is still ours).
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// The child is stopped at every instruction of its lock calls in turn (ptrace
/// single-steps), and at each the kernel's view is checked: a lock whose word names the
/// child is on its robust list or pending, so that a SIGKILL at that instruction would
/// mark it. A random kill lands in a locked instruction's shadow and misses the few
/// instructions between a release's unlink and its swap; this does not.
#[test]
fn at_every_instruction_of_a_lock_or_release_a_death_would_be_seen() {
    let three = shmsync::Shared::<Three>::anonymous_with(|_| {}).unwrap();
    let words: Vec<usize> = three
        .locks
        .iter()
        .map(|lock| lock as *const Lock as usize)
        .collect();
    // SAFETY: the child only runs this thread's code (no lock another thread may hold
    // is taken: the thread's set-up allocates through glibc's fork-safe malloc) and
    // leaves by `_exit`, a panic included.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let traced = std::panic::catch_unwind(|| {
            // SAFETY: plain system calls.
            if unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } != 0 {
                // Untraced, the stop below would go unreported: leave instead.
                // SAFETY: as below.
                unsafe { libc::_exit(2) };
            }
            drop(three.locks[0].lock().unwrap()); // the thread's set-up, before the steps
                                                  // SAFETY: as above.
            unsafe { libc::raise(libc::SIGSTOP) };
            lock_and_release_every_way(&three);
        });
        // SAFETY: ends the child without running the parent's handlers.
        unsafe { libc::_exit(i32::from(traced.is_err())) };
    }
    let tracee = Tracee(child);
    // Every stop comes within microseconds; a child that hangs instead (a panic in it
    // that waits on a lock some other thread held at the fork) fails the test.
    let wait = || {
        let began = std::time::Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: looks at our own child, without blocking.
            match unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) } {
                0 => {
                    assert!(
                        began.elapsed() < shmsync_tests::HANG,
                        "the traced child neither stopped nor ended"
                    );
                    std::thread::yield_now();
                }
                reaped => {
                    assert_eq!(reaped, child);
                    return status;
                }
            }
        }
    };
    let status = wait();
    if !libc::WIFSTOPPED(status) {
        std::mem::forget(tracee); // reaped
        panic!("the child did not stop (exit status 2: ptrace refused): {status:#x}");
    }
    let mut steps = 0u64;
    let mut waiters_set = false;
    let began = std::time::Instant::now();
    let status = loop {
        if let Err(wrong) = kernel_would_mark_every_held_lock(child, &words) {
            panic!("after {steps} instructions: {wrong}");
        }
        // The first time the child holds `c`, a sleeper announces itself, so that its
        // release goes the long way (and wakes nobody).
        if !waiters_set {
            // SAFETY: the word of a lock in the shared segment, set as a locker does.
            let word = unsafe { &*(words[2] as *const std::sync::atomic::AtomicU32) };
            if word.load(std::sync::atomic::Ordering::Relaxed) & ID == child as u32 {
                word.fetch_or(1 << 31, std::sync::atomic::Ordering::Relaxed);
                waiters_set = true;
            }
        }
        assert!(
            began.elapsed() < shmsync_tests::HANG,
            "still stepping after {steps}"
        );
        // SAFETY: our own stopped tracee.
        assert_eq!(
            unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, child, 0, 0) },
            0
        );
        let status = wait();
        if !libc::WIFSTOPPED(status) {
            std::mem::forget(tracee); // reaped
            break status;
        }
        steps += 1;
    };
    eprintln!("{steps} instructions checked");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child ended with {status:#x}"
    );
    assert!(waiters_set, "the tracer never announced a sleeper");
    // The kernel's own walk at the child's exit marked the lock it died holding.
    assert!(!three.locks[1].is_locked());
    assert!(three.locks[1].holder_died());
}

/// A forked child has a copy of its parent's guard and of the thread's table, in which
/// the guard's hold is on top and the word names the thread (the parent's, whose id
/// the copy still has): dropping the copy, the child's first call, must release
/// nothing of the parent's.
#[test]
fn a_forked_child_dropping_its_copy_of_a_guard_releases_nothing() {
    let lock = shmsync::Shared::<Lock>::anonymous_with(|_| {}).unwrap();
    let guard = lock.lock().unwrap();
    let parents = &guard as *const shmsync::LockGuard<'_>;
    let child = shmsync::Process::spawn(|| {
        // SAFETY: the child's own copy of the parent's guard, read once and dropped
        // once here (the parent keeps and drops its own).
        drop(unsafe { std::ptr::read(parents) });
        assert!(lock.is_locked(), "the child released its parent's lock");
        assert!(lock.try_lock().is_err(), "the child took its parent's lock");
        // The child's own list names nothing of the parent's.
        assert_eq!(
            on_the_list(std::slice::from_ref(&*lock)),
            (vec![], Ok(None))
        );
    })
    .unwrap();
    assert!(shmsync_tests::join(child).success());
    assert!(lock.is_locked());
    // Still the parent's own, on its list, to release by its guard.
    assert_eq!(
        on_the_list(std::slice::from_ref(&*lock)),
        (vec![0], Ok(None))
    );
    drop(guard);
    assert!(!lock.is_locked());
}

/// A robust pthread mutex (glibc's, as LMDB and other C libraries use them) locked by a
/// thread that holds a shmsync lock shares the thread's one robust list with it, and
/// glibc clears the list's pending entry after each of its own lock and unlock calls.
/// The shmsync lock must not depend on that entry while it is held: its holder's death
/// is still reported.
#[test]
fn a_holder_that_also_uses_glibc_robust_mutexes_is_still_reported_dead() {
    for nested in [false, true] {
        let locks = shmsync::Shared::<[Lock; 2]>::anonymous_with(|_| {}).unwrap();
        let child = shmsync::Process::spawn(|| {
            let outer = locks[0].lock().unwrap();
            let inner = nested.then(|| locks[1].lock().unwrap());
            let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
            // On the stack, not the heap: a forked child allocates nothing. The child
            // never returns from here, so they live until its death.
            let mut mutexes = [libc::PTHREAD_MUTEX_INITIALIZER; 2];
            // SAFETY: glibc's documented calls on a live attribute and on two mutexes
            // that live until the child dies; the second is held at the child's death,
            // as a C library's mutex may be.
            unsafe {
                libc::pthread_mutexattr_init(attr.as_mut_ptr());
                libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST);
                for mutex in mutexes.iter_mut() {
                    assert_eq!(libc::pthread_mutex_init(mutex, attr.as_ptr()), 0);
                }
                assert_eq!(libc::pthread_mutex_lock(&mut mutexes[0]), 0);
                assert_eq!(libc::pthread_mutex_unlock(&mut mutexes[0]), 0);
                assert_eq!(libc::pthread_mutex_lock(&mut mutexes[1]), 0);
            }
            std::mem::forget((outer, inner));
            // SAFETY: kill(2) on the calling process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        })
        .unwrap();
        assert_eq!(
            shmsync_tests::join(child).signal(),
            Some(libc::SIGKILL),
            "nested {nested}: the child did not get as far as its death"
        );
        for (index, lock) in locks.iter().enumerate().take(1 + usize::from(nested)) {
            match lock.try_lock() {
                Err(TryLockError::OwnerDied(guard)) => guard.mark_consistent(),
                other => panic!("nested {nested}: lock {index}: {other:?}, not OwnerDied"),
            }
        }
    }
}
