//! `--pin`: the workers of the scale and oversubscription measurements pinned one to a
//! CPU (round robin over the CPUs the benchmark may use), measured beside the same
//! workers left to the scheduler. Pinning takes migrations and the scheduler's
//! placement out of the figures; what is left is the primitive and the CPUs.

/// Where a measurement's workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the scheduler puts them.
    Free,
    /// Worker `i` on the `i`th allowed CPU, round robin.
    Pinned,
}

impl Placement {
    /// The name a contender's samples go under with this placement.
    pub fn label(self, contender: &str) -> String {
        match self {
            Placement::Free => contender.to_owned(),
            Placement::Pinned => format!("{contender}, pinned"),
        }
    }

    /// Pins the calling thread to the CPU of worker `worker`, if this placement pins.
    /// Panics if the kernel refuses, rather than measure something else.
    pub fn place(self, worker: usize) {
        if self == Placement::Free {
            return;
        }
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty(), "no CPU to pin to");
        let cpu = allowed[worker % allowed.len()];
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes a bit inside it
        // (cpu < CPU_SETSIZE, from the kernel's own mask); sched_setaffinity reads it.
        let pinned = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(
            pinned,
            0,
            "pinning to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The CPUs the calling thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed set, which CPU_ISSET then reads.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(Placement::Free.label("shmsync Lock"), "shmsync Lock");
        assert_eq!(
            Placement::Pinned.label("shmsync Lock"),
            "shmsync Lock, pinned"
        );
    }

    #[test]
    fn a_pinned_thread_runs_where_it_was_put() {
        std::thread::spawn(|| {
            let first = allowed_cpus()[0];
            Placement::Pinned.place(0);
            assert_eq!(allowed_cpus(), vec![first]);
        })
        .join()
        .unwrap();
    }
}
