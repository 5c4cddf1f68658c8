//! Who owns a Lock, and when that owner is dead, as the kernel sees it rather than as a
//! look at `/proc` from the waiter's side suggests.
//!
//! The contract:
//! - a live owner is never taken over: no `OwnerDied` while it lives, never two holders
//!   at once, whatever the waiter can or cannot see of it (another PID namespace, no
//!   file descriptors left, a hidden or missing `/proc`);
//! - a dead owner is always detected, however its thread id now reads from the waiter's
//!   side (reused by a stranger, a copy of its parent's, kept across `exec`, or
//!   meaningless outside its namespace): the next `lock_timeout` says `OwnerDied`;
//! - a lock belongs to the thread that took it: another thread cannot release it, and
//!   a guard cannot release a lock it no longer holds;
//! - nothing repairs data behind the caller's back: `Value::update` and
//!   `Array::snapshot` refuse data a dead holder left half-written.
//!
//! Each test is written so that the owner-from-`/proc` scheme fails it. Measured
//! detection latencies are printed, never asserted. Every wait has a timeout; every
//! child is killed and reaped; every named segment is removed.

use shmsync::{Array, DataError, Lock, Process, Shared, TryLockError, Value};
use shmsync_tests::ownership::{outcome, Contended, WAIT};
use shmsync_tests::{join, wait};
use std::ffi::CString;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A holder's long hold: many times the interval at which a waiter that polls for its
/// owner's death would look, so that such a waiter looks while the holder lives.
const LONG_HOLD: Duration = Duration::from_millis(200);

/// Runs `f` on a thread and fails the test if it has not returned within `limit`: for
/// the calls that have no timeout of their own (`Value::update`, `Array::snapshot`).
#[track_caller]
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still blocked after {limit:?}"))
}

/// A name unique to this run, for a named segment that `Shared::create` removes again.
fn segment_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmsync-test-owner-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A forked child that is killed (and reaped) if the test fails before joining it.
fn child(f: impl FnOnce()) -> Process {
    let mut process = Process::spawn(f).expect("fork");
    process.set_daemon(true);
    process
}

/// Waits until `at_least` contenders have said they are ready (or fails the test).
#[track_caller]
fn await_ready(shared: &Contended, at_least: u32) {
    let deadline = Instant::now() + WAIT;
    while shared.ready.get() < at_least {
        assert!(
            Instant::now() < deadline,
            "only {} of {at_least} contenders got ready",
            shared.ready.get()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `unshare --pid --fork --mount-proc` works here; why not, if not.
fn pid_namespaces() -> Result<(), String> {
    match Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--mount-proc", "true"])
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "unshare refused ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(error) => Err(format!("unshare not available: {error}")),
    }
}

/// The helper program run as PID 1 of a new PID namespace (with its own /proc).
/// `--kill-child`: killing `unshare` when the test fails also ends the helper.
fn namespaced_helper(args: &[&str]) -> Reaped {
    Reaped(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg(env!("CARGO_BIN_EXE_shmsync-owner"))
            .args(args)
            .spawn()
            .expect("running the helper under unshare"),
    )
}

/// An exec'd child that is killed and reaped if the test fails before waiting for it.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// In a forked child: records that set-up step `step` failed (with errno) and exits.
fn refuse(shared: &Contended, step: u32) -> ! {
    shared.setup_errno.set(errno());
    shared.setup.set(step);
    // SAFETY: ends the forked child without running the parent's destructors.
    unsafe { libc::_exit(0) }
}

/// Waits for a child's set-up; `Err` with the failed step if it was refused.
#[track_caller]
fn await_setup(shared: &Contended) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        match shared.setup.get() {
            0 => {
                assert!(Instant::now() < deadline, "the child never finished set-up");
                std::thread::sleep(Duration::from_millis(1));
            }
            1 => return Ok(()),
            step => {
                return Err(format!(
                    "set-up step {step} refused: {}",
                    std::io::Error::from_raw_os_error(shared.setup_errno.get())
                ))
            }
        }
    }
}

/// A mount(2) call in a forked child: `false` (errno set) if it was refused.
fn mount(source: &str, target: &str, fstype: Option<&str>, flags: u64, data: Option<&str>) -> bool {
    let source = CString::new(source).unwrap();
    let target = CString::new(target).unwrap();
    let fstype = fstype.map(|t| CString::new(t).unwrap());
    let data = data.map(|d| CString::new(d).unwrap());
    // SAFETY: every pointer is null or a NUL-terminated string alive for the call.
    let result = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
            flags as libc::c_ulong,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    result == 0
}

/// In a forked child: a mount namespace of its own whose mounts do not propagate back.
fn private_mounts(shared: &Contended) {
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        refuse(shared, 2);
    }
    if !mount("none", "/", None, libc::MS_REC | libc::MS_PRIVATE, None) {
        refuse(shared, 3);
    }
}

/// A holder in its own process: `rounds` holds of [`LONG_HOLD`], with a short gap
/// between them for the waiter to get in.
fn long_holder(shared: &Contended, rounds: u32) {
    for _ in 0..rounds {
        if !shared.cycle(LONG_HOLD) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    shared.finished.fetch_add(1);
}

/// A waiter that contends with short sections until the holder has finished.
fn short_waiter(shared: &Contended) {
    for _ in 0..100_000 {
        if shared.finished.get() != 0 || !shared.cycle(Duration::ZERO) {
            break;
        }
    }
}

/// Row 1. The helper's thread ids are those of its own PID namespace: outside, its
/// tid may be 1 (some other, live process), and from inside, the test's tid does not
/// exist. Neither side may take the lock from the other.
#[test]
fn a_live_owner_in_another_pid_namespace_is_never_taken_over() {
    if let Err(reason) = pid_namespaces() {
        eprintln!("skipped: {reason}");
        return;
    }
    const CYCLES: u64 = 6_000;
    let name = segment_name("pidns");
    {
        let shared = Shared::create(&name, Contended::new()).unwrap();
        let mut helper = namespaced_helper(&["contend", &name, &CYCLES.to_string(), "100", "30"]);
        await_ready(&shared, 1);
        shared.go.set();
        shared.contend(CYCLES, 100, Duration::from_millis(30));
        let status = wait(&mut helper.0);
        eprintln!("PID namespace contention: {}", shared.summary());
        assert!(status.success(), "helper: {status}");
        shared.assert_exclusive(2 * CYCLES);
    }
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

/// Row 2. An owner that dies in another PID namespace: the thread id it left in the
/// word names, from here, some unrelated live process (1 is init).
#[test]
fn an_owner_that_dies_in_another_pid_namespace_is_detected() {
    if let Err(reason) = pid_namespaces() {
        eprintln!("skipped: {reason}");
        return;
    }
    let name = segment_name("pidns-dead");
    {
        let shared = Shared::create(&name, Contended::new()).unwrap();
        let mut helper = namespaced_helper(&["die-holding", &name]);
        let status = wait(&mut helper.0);
        assert!(status.success(), "helper: {status}");
        // The kernel marked the lock at the death: no longer held, its holder died.
        assert!(shared.held.is_set() && shared.lock.holder_died());
        let began = Instant::now();
        shared.record(began, shared.lock.lock_timeout(WAIT));
        let result = outcome::name(shared.outcome.get());
        eprintln!(
            "owner dead in another PID namespace: {result} after {:?}",
            began.elapsed()
        );
        assert_eq!(result, "OwnerDied");
    }
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

/// Row 3. A waiter that cannot open a file (its descriptors are used up) must not
/// conclude that the owner it cannot look at is dead.
#[test]
fn a_waiter_out_of_file_descriptors_never_takes_over_a_live_owner() {
    let shared = Shared::anonymous(Contended::new()).unwrap();
    let waiter = child(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the one struct passed.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        limit.rlim_cur = 64;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            refuse(&shared, 2);
        }
        let mut open = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(file) => open.push(file),
                Err(error) if error.raw_os_error() == Some(libc::EMFILE) => break,
                Err(_) => refuse(&shared, 3),
            }
        }
        if std::fs::read_to_string("/proc/self/stat").is_ok() {
            refuse(&shared, 4);
        }
        shared.setup.set(1);
        shared.ready.fetch_add(1);
        assert!(shared.go.wait_timeout(WAIT));
        short_waiter(&shared);
        drop(open);
    });
    if let Err(reason) = await_setup(&shared) {
        drop(waiter);
        eprintln!("skipped: {reason}");
        return;
    }
    let holder = child(|| {
        assert!(shared.go.wait_timeout(WAIT));
        long_holder(&shared, 10);
    });
    holder_against_waiter(&shared, holder, waiter, "waiter with no free descriptor");
}

/// Row 4. A waiter of another user, with /proc mounted `hidepid=2`, cannot see the
/// root holder's process at all; it must still wait for it.
#[test]
fn a_waiter_that_cannot_see_the_owner_in_proc_never_takes_it_over() {
    let shared = Shared::anonymous(Contended::new()).unwrap();
    let holder = child(|| {
        assert!(shared.go.wait_timeout(WAIT));
        long_holder(&shared, 10);
    });
    let holder_pid = holder.pid();
    let waiter = child(|| {
        private_mounts(&shared);
        if !mount("proc", "/proc", Some("proc"), 0, Some("hidepid=2")) {
            refuse(&shared, 4);
        }
        // SAFETY: setgroups/setgid/setuid take plain values.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                refuse(&shared, 5);
            }
            if libc::setgid(65534) != 0 {
                refuse(&shared, 6);
            }
            if libc::setuid(65534) != 0 {
                refuse(&shared, 7);
            }
        }
        if std::fs::read_to_string(format!("/proc/{holder_pid}/stat")).is_ok() {
            refuse(&shared, 8); // hidepid did not hide it: nothing to test
        }
        shared.setup.set(1);
        shared.ready.fetch_add(1);
        assert!(shared.go.wait_timeout(WAIT));
        short_waiter(&shared);
    });
    if let Err(reason) = await_setup(&shared) {
        drop((waiter, holder));
        eprintln!("skipped: {reason}");
        return;
    }
    holder_against_waiter(&shared, holder, waiter, "waiter as nobody with hidepid=2");
}

/// Starts a long holder and a waiter that are ready, waits for both, and checks that
/// the lock stayed exclusive over the holder's 10 long sections.
fn holder_against_waiter(shared: &Contended, holder: Process, waiter: Process, label: &str) {
    await_ready(shared, 1);
    shared.go.set();
    assert!(join(holder).success());
    assert!(join(waiter).success());
    eprintln!("{label}: {}", shared.summary());
    shared.assert_exclusive(10);
}

/// Row 5. With nothing at /proc (an empty tmpfs over it), a waiter must neither take
/// over a live holder nor miss one that was SIGKILLed holding the lock.
#[test]
fn a_waiter_without_proc_excludes_a_live_owner_and_detects_a_killed_one() {
    let shared = Shared::anonymous(Contended::new()).unwrap();
    let waiter = child(|| {
        private_mounts(&shared);
        if !mount("tmpfs", "/proc", Some("tmpfs"), 0, Some("size=64k")) {
            refuse(&shared, 4);
        }
        if std::path::Path::new("/proc/self/stat").exists() {
            refuse(&shared, 5);
        }
        shared.setup.set(1);
        shared.ready.fetch_add(1);
        assert!(shared.go.wait_timeout(WAIT));
        short_waiter(&shared);
        // Phase 2: the holder takes the lock once more and is killed holding it.
        shared.ready.fetch_add(1);
        assert!(shared.killed.wait_timeout(WAIT));
        let began = Instant::now();
        shared.record(began, shared.lock.lock_timeout(WAIT));
    });
    if let Err(reason) = await_setup(&shared) {
        drop(waiter);
        eprintln!("skipped: {reason}");
        return;
    }
    let holder = child(|| {
        assert!(shared.go.wait_timeout(WAIT));
        long_holder(&shared, 10);
        // The waiter is out of its loop before the lock is taken for good.
        let deadline = Instant::now() + WAIT;
        while shared.ready.get() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Ok(guard) = shared.lock.lock_timeout(WAIT) {
            std::mem::forget(guard);
            shared.held.set();
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    await_ready(&shared, 1);
    shared.go.set();
    assert!(
        shared.held.wait_timeout(WAIT),
        "the holder never re-took it"
    );
    holder.kill().unwrap();
    assert!(join(holder).signal().is_some());
    shared.killed.set();
    assert!(join(waiter).success());
    let detection = Duration::from_micros(shared.waited_us.get());
    let result = outcome::name(shared.outcome.get());
    eprintln!(
        "waiter without /proc: {}; after the holder was killed: {result} after {detection:?}",
        shared.summary()
    );
    assert_eq!(result, "OwnerDied", "the killed holder was not detected");
    // The OwnerDied of phase 2 is recorded by `record`, not counted in `owner_died`.
    shared.assert_exclusive(10);
}

/// Row 6. The dead owner's pid is taken by a live stranger before anyone looks: a
/// waiter that judges the owner by whether its id runs sees a live process.
#[test]
fn an_owner_whose_pid_was_reused_before_anyone_looked_is_detected() {
    const ATTEMPTS: u32 = 300;
    let shared = Shared::anonymous(Contended::new()).unwrap();
    let mut owner = child(|| {
        let guard = shared.lock.lock_timeout(WAIT).unwrap();
        std::mem::forget(guard);
    });
    let pid = owner.pid();
    assert!(owner
        .join_timeout(WAIT)
        .unwrap()
        .is_some_and(|s| s.success()));
    assert!(shared.lock.holder_died(), "the death was not marked");
    let mut stranger = None;
    let mut refused = None;
    for _ in 0..ATTEMPTS {
        if let Err(error) = std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)) {
            refused = Some(format!("cannot set the next pid: {error}"));
            break;
        }
        let candidate = child(|| std::thread::sleep(Duration::from_secs(60)));
        if candidate.pid() == pid {
            stranger = Some(candidate);
            break;
        }
        // Dropped: killed and reaped.
    }
    let Some(mut stranger) = stranger else {
        let reason = refused.unwrap_or_else(|| format!("pid {pid} not reused in {ATTEMPTS} forks"));
        eprintln!("skipped: {reason}");
        return;
    };
    let began = Instant::now();
    shared.record(began, shared.lock.lock_timeout(WAIT));
    let result = outcome::name(shared.outcome.get());
    let stranger_lives = stranger.is_alive().unwrap();
    eprintln!(
        "owner's pid {pid} reused by a live stranger: {result} after {:?}",
        began.elapsed()
    );
    stranger.kill().unwrap();
    assert!(join(stranger).signal().is_some());
    assert!(stranger_lives);
    assert_eq!(result, "OwnerDied");
}

/// A child made by the raw clone system call: no fork handlers run in it, so any
/// per-thread id the library cached is its parent's. It runs `f` and `_exit`s with
/// its result.
fn raw_clone(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: with only SIGCHLD, clone is fork without the C library's fork handlers;
    // the child runs `f` (async-signal-safe calls and the lock only) and `_exit`s.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        let code = f();
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { libc::_exit(code) }
    }
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    pid as libc::pid_t
}

/// Reaps a raw child, killing it if it runs past `limit`; its wait status.
#[track_caller]
fn reap(pid: libc::pid_t, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status of our own child.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped == pid {
            return status;
        }
        assert!(reaped == 0, "waitpid: {}", std::io::Error::last_os_error());
        if Instant::now() >= deadline {
            // SAFETY: kill and waitpid on our own unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("raw child {pid} hung: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Row 7a. A raw-clone child that holds the lock while a third process waits: it
/// must exclude that waiter and not be declared dead while it lives; nor is its
/// parent, whose id it may have inherited, taken for the holder.
#[test]
fn a_raw_clone_child_holding_the_lock_excludes_others() {
    let shared = Shared::anonymous(Contended::new()).unwrap();
    drop(shared.lock.lock_timeout(WAIT).unwrap()); // this thread's id is now known
    let cloned = raw_clone(|| match shared.lock.lock_timeout(WAIT) {
        Ok(guard) => {
            shared.held.set();
            shared.section(Duration::from_millis(300));
            drop(guard);
            0
        }
        Err(_) => 1,
    });
    assert!(
        shared.held.wait_timeout(WAIT),
        "the clone child never held it"
    );
    // The parent is not the holder, whatever id the child inherited from it.
    let parent_release = shared.lock.release();
    let parent_try = shared.lock.try_lock().map(drop).map_err(|e| e.map(drop));
    let waiter = child(|| {
        let began = Instant::now();
        shared.record(began, shared.lock.lock_timeout(WAIT));
    });
    assert!(join(waiter).success());
    let status = reap(cloned, WAIT * 2);
    let result = outcome::name(shared.outcome.get());
    eprintln!(
        "raw clone holding for 300 ms: the parent's release {parent_release:?}, its \
         try_lock {parent_try:?}; the waiter got {result} after {:?}; {}",
        Duration::from_micros(shared.waited_us.get()),
        shared.summary()
    );
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert!(
        parent_release.is_err(),
        "the parent released its clone child's lock"
    );
    assert_eq!(parent_try, Err(TryLockError::WouldBlock));
    assert_eq!(result, "Ok");
    shared.assert_exclusive(2);
}

/// Row 7b. A raw-clone child that dies holding the lock: a cached id would name its
/// parent, which lives on.
#[test]
fn a_raw_clone_child_that_dies_holding_the_lock_is_detected() {
    let shared = Shared::anonymous(Contended::new()).unwrap();
    drop(shared.lock.lock_timeout(WAIT).unwrap()); // this thread's id is now known
    let cloned = raw_clone(|| match shared.lock.lock_timeout(WAIT) {
        Ok(guard) => {
            std::mem::forget(guard);
            shared.held.set();
            0
        }
        Err(_) => 1,
    });
    let status = reap(cloned, WAIT * 2);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert!(shared.held.is_set() && shared.lock.holder_died());
    let waiter = child(|| {
        let began = Instant::now();
        shared.record(began, shared.lock.lock_timeout(WAIT));
    });
    assert!(join(waiter).success());
    let result = outcome::name(shared.outcome.get());
    eprintln!(
        "raw clone died holding: the waiter got {result} after {:?}",
        Duration::from_micros(shared.waited_us.get())
    );
    assert_eq!(result, "OwnerDied");
}

/// Row 8. `exec` ends the thread that held the lock even though the process, and its
/// pid, live on as another program.
#[test]
fn an_owner_that_execs_holding_the_lock_is_detected_while_the_new_program_runs() {
    use std::os::unix::process::CommandExt;
    let shared = Shared::anonymous(Contended::new()).unwrap();
    let mut owner = child(|| {
        if let Ok(guard) = shared.lock.lock_timeout(WAIT) {
            std::mem::forget(guard);
            shared.held.set();
            let error = Command::new("/bin/sleep").arg("5").exec();
            eprintln!("exec: {error}");
        }
        // SAFETY: ends the forked child without the parent's destructors.
        unsafe { libc::_exit(3) }
    });
    assert!(shared.held.wait_timeout(WAIT), "the owner never held it");
    let began = Instant::now();
    let result = shared.lock.lock_timeout(WAIT);
    let waited = began.elapsed();
    let alive = owner.is_alive().unwrap();
    shared.record(began, result);
    let result = outcome::name(shared.outcome.get());
    eprintln!(
        "owner exec'd holding: {result} after {waited:?}, exec'd program still running: {alive}"
    );
    owner.kill().unwrap();
    let _ = join(owner);
    assert_eq!(result, "OwnerDied");
    assert!(alive, "detected only once the exec'd program had ended");
}

/// Row 9. A thread that ends holding the lock has died holding it, whichever API it
/// took it with.
#[test]
fn a_thread_that_exits_holding_the_lock_is_detected() {
    let shared = Shared::anonymous(Contended::new()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(shared.lock.lock_timeout(WAIT).unwrap()));
    });
    std::thread::scope(|s| {
        s.spawn(|| {
            let began = Instant::now();
            let result = shared.lock.lock_timeout(WAIT);
            eprintln!(
                "thread exited holding (guard): detected after {:?}",
                began.elapsed()
            );
            shared.record(began, result);
        });
    });
    assert_eq!(outcome::name(shared.outcome.get()), "OwnerDied");

    // Python-style: acquire() and return without release().
    std::thread::scope(|s| {
        s.spawn(|| shared.lock.acquire_timeout(WAIT).unwrap());
    });
    let acquired = std::thread::scope(|s| {
        s.spawn(|| {
            let began = Instant::now();
            let acquired = shared.lock.acquire_timeout(WAIT);
            eprintln!(
                "thread exited holding (acquire): {acquired:?} after {:?}",
                began.elapsed()
            );
            if acquired == Err(TryLockError::OwnerDied(())) {
                shared.lock.mark_consistent().unwrap();
            }
            if acquired.is_ok() || acquired == Err(TryLockError::OwnerDied(())) {
                shared.lock.release().unwrap();
            }
            acquired
        })
        .join()
        .unwrap()
    });
    assert_eq!(acquired, Err(TryLockError::OwnerDied(())));
    assert!(!shared.lock.is_locked());
}

/// Row 9, with the dead thread's id taken by a new, live thread of the same process
/// before anyone looks: whether that id runs says nothing about the owner.
#[test]
fn a_thread_that_exits_holding_the_lock_is_detected_after_its_tid_was_reused() {
    const ATTEMPTS: u32 = 300;
    let shared = Shared::anonymous(Contended::new()).unwrap();
    let tid = std::thread::scope(|s| {
        s.spawn(|| {
            std::mem::forget(shared.lock.lock_timeout(WAIT).unwrap());
            // SAFETY: gettid has no arguments and cannot fail.
            unsafe { libc::gettid() }
        })
        .join()
        .unwrap()
    });
    assert!(shared.lock.holder_died(), "the death was not marked");
    let mut skip = format!("thread id {tid} not reused in {ATTEMPTS} attempts");
    let (result, stranger_alive) = std::thread::scope(|s| {
        let mut stranger = None;
        for _ in 0..ATTEMPTS {
            if let Err(error) =
                std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", tid - 1))
            {
                skip = format!("cannot set the next thread id: {error}");
                break;
            }
            let (told, tell) = mpsc::channel::<()>();
            let (report, reported) = mpsc::channel();
            let thread = s.spawn(move || {
                // SAFETY: as above.
                report.send(unsafe { libc::gettid() }).unwrap();
                let _ = tell.recv_timeout(WAIT * 3);
            });
            if reported.recv_timeout(WAIT) == Ok(tid) {
                stranger = Some((told, thread));
                break;
            }
            drop(told);
            thread.join().unwrap();
        }
        let Some((told, thread)) = stranger else {
            return (None, false);
        };
        let began = Instant::now();
        let result = shared.lock.lock_timeout(WAIT);
        let waited = began.elapsed();
        let alive = !thread.is_finished();
        shared.record(began, result);
        drop(told);
        thread.join().unwrap();
        eprintln!(
            "thread {tid} exited holding, its id reused by a live thread: {} after {waited:?}",
            outcome::name(shared.outcome.get())
        );
        (Some(shared.outcome.get()), alive)
    });
    let Some(result) = result else {
        eprintln!("skipped: {skip}");
        return;
    };
    assert!(stranger_alive, "the thread that reused the id ended early");
    assert_eq!(outcome::name(result), "OwnerDied");
}

/// Row 9, the hand-off decision: a lock is owned by the thread that took it. Another
/// thread's release is refused and changes nothing (signal with a Semaphore instead).
#[test]
fn release_by_a_thread_that_does_not_hold_the_lock_is_refused() {
    let segment = Shared::anonymous(Contended::new()).unwrap();
    let shared: &Contended = &segment;
    let (taken, was_taken) = mpsc::channel();
    let (go_on, may_go_on) = mpsc::channel::<()>();
    let (own_release, foreign_release, still_locked, third) = std::thread::scope(|s| {
        let holder = s.spawn(move || {
            shared.lock.acquire_timeout(WAIT).unwrap();
            taken.send(()).unwrap();
            may_go_on.recv_timeout(WAIT).unwrap();
            shared.lock.release()
        });
        was_taken.recv_timeout(WAIT).unwrap();
        let foreign_release = shared.lock.release();
        let still_locked = shared.lock.is_locked();
        let third = s.spawn(|| shared.lock.try_acquire()).join().unwrap();
        go_on.send(()).unwrap();
        (holder.join().unwrap(), foreign_release, still_locked, third)
    });
    eprintln!(
        "release by a non-holder: {foreign_release:?}; locked after it: {still_locked}; a \
         third try_acquire: {third:?}; the holder's own release: {own_release:?}"
    );
    if third.is_ok() {
        let _ = shared.lock.release();
    }
    assert!(foreign_release.is_err(), "a non-holder released the lock");
    assert!(still_locked, "the lock was freed under its holder");
    assert_eq!(third, Err(TryLockError::WouldBlock));
    assert_eq!(
        own_release,
        Ok(()),
        "the holder could not release its own lock"
    );
    assert!(!shared.lock.is_locked());
}

/// Row 9, the guard contract: a guard whose lock was released by hand, and since
/// taken by another thread, must not release that other thread's lock when dropped.
#[test]
fn a_guard_never_releases_a_lock_it_no_longer_holds() {
    let segment = Shared::anonymous(Contended::new()).unwrap();
    let shared: &Contended = &segment;
    let guard = shared.lock.lock_timeout(WAIT).unwrap();
    shared.lock.release().unwrap(); // by its holder, by hand
    let (taken, was_taken) = mpsc::channel();
    let (go_on, may_go_on) = mpsc::channel::<()>();
    let (locked_after_drop, third, own_release) = std::thread::scope(|s| {
        let other = s.spawn(move || {
            shared.lock.acquire_timeout(WAIT).unwrap();
            taken.send(()).unwrap();
            may_go_on.recv_timeout(WAIT).unwrap();
            shared.lock.release()
        });
        was_taken.recv_timeout(WAIT).unwrap();
        drop(guard);
        let locked_after_drop = shared.lock.is_locked();
        let third = s
            .spawn(|| shared.lock.try_lock().map(drop).map_err(|e| e.map(drop)))
            .join()
            .unwrap();
        go_on.send(()).unwrap();
        (locked_after_drop, third, other.join().unwrap())
    });
    eprintln!(
        "stale guard dropped: locked after: {locked_after_drop}; a third try_lock: \
         {third:?}; the new holder's release: {own_release:?}"
    );
    assert!(
        locked_after_drop,
        "the stale guard released another thread's lock"
    );
    assert_eq!(third, Err(TryLockError::WouldBlock));
    assert_eq!(own_release, Ok(()));
    assert!(!shared.lock.is_locked());
}

/// Row 10, Value: a holder of `get_lock()` that dies half-way leaves data that only the
/// next explicit locker may call consistent; `update` must pass the news on.
#[test]
fn value_update_does_not_repair_what_a_dead_holder_left() {
    let value = Arc::new(Shared::anonymous(Value::<u64>::new(0)).unwrap());
    let dying = child(|| {
        let guard = value.get_lock().lock_timeout(WAIT).unwrap();
        value.set(1); // the first of two steps
        std::mem::forget(guard);
    });
    assert!(join(dying).success());
    let applied = Arc::new(AtomicU32::new(0));
    let updated = within(WAIT * 2, {
        let (value, applied) = (value.clone(), applied.clone());
        move || {
            value.update(|v| {
                applied.fetch_add(1, Ordering::Relaxed);
                v + 10
            })
        }
    });
    eprintln!("update after a dead holder: {updated:?}");
    assert_eq!(updated, Err(DataError::OwnerDied));
    assert_eq!(
        applied.load(Ordering::Relaxed),
        0,
        "f was applied to torn data"
    );
    assert_eq!(value.get(), 1);
    match value.get_lock().lock_timeout(WAIT) {
        Err(TryLockError::OwnerDied(guard)) => guard.mark_consistent(),
        other => panic!("the next lock(): {other:?}, not OwnerDied"),
    }
    assert_eq!(value.update(|v| v + 10), Ok(11));
}

/// Row 10, Array: a writer that dies holding `array.lock()` mid-write leaves a state
/// the array was never meant to be in: `snapshot` must not present it as one.
#[test]
fn array_snapshot_does_not_repair_what_a_dead_writer_left() {
    let array = Arc::new(Shared::anonymous(Array::<u32, 4>::zeroed()).unwrap());
    let writer = child(|| {
        let mut items = array.lock_timeout(WAIT).unwrap();
        items.write(0, &[1]).unwrap(); // the first of four items
        std::mem::forget(items);
    });
    assert!(join(writer).success());
    let snapshot = within(WAIT * 2, {
        let array = array.clone();
        move || array.snapshot()
    });
    eprintln!("snapshot after a dead writer: {snapshot:?}");
    assert_eq!(snapshot, Err(DataError::OwnerDied));
    match array.lock_timeout(WAIT) {
        Err(TryLockError::OwnerDied(items)) => {
            assert_eq!(items.snapshot(), [1, 0, 0, 0]);
            items.mark_consistent();
        }
        other => panic!("the next lock(): {other:?}, not OwnerDied"),
    }
    assert_eq!(array.snapshot(), Ok([1, 0, 0, 0]));
}

// Regressions found by hostile probes of the robust lock.

/// A guard that outlived a manual release must not release the same thread's later
/// hold: a second holder would get in.
#[test]
fn a_stale_guard_never_releases_its_own_threads_later_hold() {
    let lock = Lock::new();
    let stale = lock.lock().unwrap();
    lock.release().unwrap();
    // Timed: a release that left it held would leave this thread waiting for itself.
    let held = lock.lock_timeout(WAIT).unwrap();
    drop(stale);
    assert!(lock.is_locked());
    std::thread::scope(|s| {
        let other = s.spawn(|| lock.try_lock().is_err());
        assert!(other.join().unwrap(), "a second holder got in");
    });
    drop(held);
    assert!(!lock.is_locked());
}

/// Hand-over-hand locking holds two locks at a time and releases them out of order:
/// it must never run out of the thread's slots.
#[test]
fn hand_over_hand_locking_never_runs_out_of_slots() {
    let locks: Vec<Lock> = (0..500).map(|_| Lock::new()).collect();
    let _anchor = locks[0].lock().unwrap();
    let mut previous = locks[1].lock().unwrap();
    for lock in &locks[2..] {
        let next = lock.lock().unwrap();
        drop(std::mem::replace(&mut previous, next));
    }
    drop(previous);
    assert_eq!(locks.iter().filter(|l| l.is_locked()).count(), 1);
}

/// Past the limit of held locks the lock call refuses before it takes anything.
#[test]
fn a_lock_call_past_the_limit_takes_nothing() {
    let locks: Vec<Lock> = (0..33).map(|_| Lock::new()).collect();
    let guards: Vec<_> = locks[..32].iter().map(|l| l.lock().unwrap()).collect();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(locks[32].lock())));
    assert!(refused.is_err(), "the 33rd lock call did not refuse");
    assert!(!locks[32].is_locked(), "it took the lock anyway");
    drop(guards);
    assert!(locks[32].try_lock().is_ok());
}

/// A lock value moved while held (Python style, `acquire` leaves no borrow) is still
/// this thread's to release where it is now.
#[test]
fn a_lock_moved_while_held_is_released_where_it_is_now() {
    let lock = Box::new(Lock::new());
    lock.acquire().unwrap();
    let moved: Lock = *lock; // moved out of the box, which is freed
    assert!(moved.is_locked());
    moved.release().unwrap();
    assert!(!moved.is_locked());
}

/// A peer that redirects a held lock's list entry must never make the kernel write
/// into this process's private memory when the holder thread exits.
#[test]
fn a_redirected_entry_never_makes_the_kernel_write_private_memory() {
    let shared = Shared::anonymous(Lock::new()).unwrap();
    let private = Box::new([0u32; 16]);
    std::thread::scope(|s| {
        s.spawn(|| {
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
            let target = private.as_ptr() as usize;
            // SAFETY: test set-up only: `private` is written before the lock is taken,
            // through a raw pointer, as a peer with this process's layout could aim at
            // it; nothing else reads it meanwhile.
            unsafe { (target as *mut u32).write(tid) };
            std::mem::forget(shared.lock().unwrap());
            // SAFETY: as a peer process would: the lock's list entry (32 bytes after its
            // word) is made to point 32 bytes past `private`, where the kernel would
            // then look for a futex word holding this thread's id.
            unsafe {
                let entry = (&*shared as *const Lock as *mut u8).add(32) as *mut usize;
                entry.write_volatile(target + 32);
            }
        });
    });
    let tid_left = private[0];
    assert_ne!(
        tid_left & 0x4000_0000,
        0x4000_0000,
        "the kernel wrote into private memory"
    );
}
