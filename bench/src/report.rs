//! The samples of a run, the comparisons drawn from them and their renderings: the
//! Markdown table printed and written to `target/bench/results.md`, the CSV beside it,
//! and `BENCHMARKS.md`.

use crate::contenders::{
    BarrierPingPong, ConditionPingPong, ContendedLock, EventPingPong, FutexPingPong, IdleEvent,
    IdleLock, IdleSemT, IdleSemaphore, IdleWaiter, ParkingLotMutex, ParkingLotRead, PingPong,
    PthreadBarrierPingPong, PthreadCondPingPong, PthreadCounter, PthreadRead, PthreadRobust,
    PthreadShared, PthreadWrite, SemTPingPong, SemaphorePingPong, SharedCounter, ShmsyncLock,
    ShmsyncLockCounter, ShmsyncLockNoOwner, ShmsyncRead, ShmsyncWrite, StdMutex, StdRead,
    UncontendedLock, ValueFetchAdd, ValueUnderGetLock, ValueUpdate,
};
use crate::contenders::{ItemChannel, Pipe, ShmsyncQueue};
use crate::python;
use crate::quiet::Quiet;
use crate::scale::Workers;
use crate::{idle, oversubscribed, scale};
use shmsync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RwLock, Semaphore, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Every round's figure of every sample name, and why a sample has none.
#[derive(Default)]
pub struct Samples {
    /// The figures, in the order of the rounds.
    figures: BTreeMap<String, Vec<f64>>,
    /// Why a sample is missing, for those whose measurement could not run.
    missing: BTreeMap<String, String>,
}

impl Samples {
    /// Records one round's figure of `name`.
    pub fn add(&mut self, name: impl Into<String>, figure: f64) {
        self.figures.entry(name.into()).or_default().push(figure);
    }

    /// Records why a round has no figure of `name`. The first reason is kept.
    pub fn add_missing(&mut self, name: impl Into<String>, reason: String) {
        self.missing.entry(name.into()).or_insert(reason);
    }

    /// The median of `name`'s figures, if it has any.
    pub fn median(&self, name: &str) -> Option<f64> {
        let mut figures = self.figures.get(name)?.clone();
        if figures.is_empty() {
            return None;
        }
        figures.sort_by(f64::total_cmp);
        Some(figures[figures.len() / 2])
    }

    /// The lowest and the highest of `name`'s figures, if it has any.
    pub fn range(&self, name: &str) -> Option<(f64, f64)> {
        let figures = self.figures.get(name).filter(|f| !f.is_empty())?;
        Some(
            figures
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v))),
        )
    }

    /// `lowest–highest` of `name`'s figures, empty if it has none.
    pub fn spread(&self, name: &str) -> String {
        match self.range(name) {
            Some((lowest, highest)) => format!("{}–{}", short(lowest), short(highest)),
            None => String::new(),
        }
    }

    /// Why `name` has no figure: the reason recorded, or else its name.
    pub fn why_missing(&self, name: &str) -> String {
        match self.missing.get(name) {
            Some(reason) => reason.clone(),
            None => format!("no sample of “{name}”"),
        }
    }
}

/// A figure in few characters: 3 significant digits in scientific notation from 10⁵
/// up, whole numbers from 100, two decimals below.
pub fn short(figure: f64) -> String {
    if figure >= 1e5 {
        format!("{figure:.3e}")
    } else if figure >= 100.0 {
        format!("{figure:.0}")
    } else {
        format!("{figure:.2}")
    }
}

/// What the ratio shmsync / peer of a comparison should be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most this: for times, where lower is better.
    AtMost(f64),
    /// At least this: for rates, where higher is better.
    AtLeast(f64),
}

impl Target {
    /// Whether `ratio` meets the target.
    pub fn is_met_by(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(bound) => ratio <= bound,
            Target::AtLeast(bound) => ratio >= bound,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::AtMost(bound) => write!(f, "≤ {bound}×"),
            Target::AtLeast(bound) => write!(f, "≥ {bound}×"),
        }
    }
}

/// One row of the report: shmsync's sample against a peer's.
pub struct Comparison {
    /// What the row compares, as the table says it.
    pub what: &'static str,
    /// The name of shmsync's sample.
    pub ours: &'static str,
    /// The name of the peer's sample.
    pub peer: &'static str,
    /// The unit of both samples.
    pub unit: &'static str,
    /// What the ratio ours / peer should be, if anything.
    pub target: Option<Target>,
}

/// The rows of the report, in order.
pub const COMPARISONS: &[Comparison] = &[
    Comparison {
        what: "uncontended Lock vs std::sync::Mutex",
        ours: ShmsyncLock::NAME,
        peer: StdMutex::NAME,
        unit: "ns/op",
        target: Some(Target::AtMost(1.1)),
    },
    Comparison {
        what: "uncontended Lock vs parking_lot::Mutex",
        ours: ShmsyncLock::NAME,
        peer: ParkingLotMutex::NAME,
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended Lock vs pthread pshared",
        ours: ShmsyncLock::NAME,
        peer: PthreadShared::NAME,
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended Lock vs robust pthread",
        ours: ShmsyncLock::NAME,
        peer: PthreadRobust::NAME,
        unit: "ns/op",
        target: Some(Target::AtMost(0.6)),
    },
    Comparison {
        what: "owner recording vs none (fast path)",
        ours: ShmsyncLock::NAME,
        peer: ShmsyncLockNoOwner::NAME,
        unit: "ns/op",
        target: Some(Target::AtMost(1.1)),
    },
    Comparison {
        what: "2-process contended counter vs pthread pshared",
        ours: ShmsyncLockCounter::NAME,
        peer: PthreadCounter::NAME,
        unit: "M incr/s",
        target: Some(Target::AtLeast(1.0)),
    },
    Comparison {
        what: "Event ping-pong vs sem_t (time per round trip)",
        ours: EventPingPong::NAME,
        peer: SemTPingPong::NAME,
        unit: "µs",
        target: Some(Target::AtMost(0.1)),
    },
    Comparison {
        what: "Semaphore ping-pong vs sem_t (time per round trip)",
        ours: SemaphorePingPong::NAME,
        peer: SemTPingPong::NAME,
        unit: "µs",
        target: Some(Target::AtMost(0.1)),
    },
    Comparison {
        what: "Event ping-pong vs raw futex",
        ours: EventPingPong::NAME,
        peer: FutexPingPong::NAME,
        unit: "µs",
        target: None,
    },
    Comparison {
        what: "uncontended RwLock read vs pthread rwlock pshared",
        ours: ShmsyncRead::NAME,
        peer: PthreadRead::NAME,
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended RwLock write vs pthread rwlock pshared",
        ours: ShmsyncWrite::NAME,
        peer: PthreadWrite::NAME,
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended RwLock read vs parking_lot::RwLock",
        ours: ShmsyncRead::NAME,
        peer: ParkingLotRead::NAME,
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "uncontended RwLock read vs std::sync::RwLock",
        ours: ShmsyncRead::NAME,
        peer: StdRead::NAME,
        unit: "ns/op",
        target: None,
    },
    Comparison {
        what: "Condition ping-pong vs pthread_cond pshared",
        ours: ConditionPingPong::NAME,
        peer: PthreadCondPingPong::NAME,
        unit: "µs",
        target: None,
    },
    Comparison {
        what: "Barrier(2) round vs pthread_barrier pshared",
        ours: BarrierPingPong::NAME,
        peer: PthreadBarrierPingPong::NAME,
        unit: "µs",
        target: None,
    },
    Comparison {
        what: "Value under get_lock(), 2 processes, vs Python's",
        ours: ValueUnderGetLock::NAME,
        peer: python::VALUE_UNDER_GET_LOCK.name,
        unit: "incr/s",
        target: Some(Target::AtLeast(100.0)),
    },
    Comparison {
        what: "Value::update, 2 processes, vs Python Value+get_lock",
        ours: ValueUpdate::NAME,
        peer: python::VALUE_UNDER_GET_LOCK.name,
        unit: "incr/s",
        target: None,
    },
    Comparison {
        what: "Value fetch_add, 2 processes, vs Python Value+get_lock",
        ours: ValueFetchAdd::NAME,
        peer: python::VALUE_UNDER_GET_LOCK.name,
        unit: "incr/s",
        target: None,
    },
    Comparison {
        what: "Queue, 1 producer and 1 consumer process, vs a pipe of 8-byte items",
        ours: ShmsyncQueue::NAME_1P1C,
        peer: Pipe::NAME_1P1C,
        unit: "items/s",
        target: Some(Target::AtLeast(3.0)),
    },
    Comparison {
        what: "Queue, 2 producer and 2 consumer processes, vs a pipe",
        ours: ShmsyncQueue::NAME_2P2C,
        peer: Pipe::NAME_2P2C,
        unit: "items/s",
        target: None,
    },
    Comparison {
        what: "Queue, 1 producer and 1 consumer process, vs Python mp.Queue",
        ours: ShmsyncQueue::NAME_1P1C,
        peer: python::MP_QUEUE.name,
        unit: "items/s",
        target: Some(Target::AtLeast(100.0)),
    },
    Comparison {
        what: "Queue, 1 producer and 1 consumer process, vs Python mp.SimpleQueue",
        ours: ShmsyncQueue::NAME_1P1C,
        peer: python::SIMPLE_QUEUE.name,
        unit: "items/s",
        target: Some(Target::AtLeast(100.0)),
    },
    Comparison {
        what: "uncontended Lock vs Python multiprocessing.Lock",
        ours: ShmsyncLock::NAME,
        peer: python::LOCK.name,
        unit: "ns/op",
        target: None,
    },
];

/// The contended-counter contenders of each kind of worker, by name: the locks that
/// work between processes, and for threads also those that work only within one.
pub const SCALE_CONTENDERS: [(Workers, &[&str]); 2] = [
    (
        Workers::Processes,
        &[
            <ShmsyncLock as ContendedLock>::CONTENDED_NAME,
            <PthreadShared as ContendedLock>::CONTENDED_NAME,
            <PthreadRobust as ContendedLock>::CONTENDED_NAME,
        ],
    ),
    (
        Workers::Threads,
        &[
            <ShmsyncLock as ContendedLock>::CONTENDED_NAME,
            <PthreadShared as ContendedLock>::CONTENDED_NAME,
            <PthreadRobust as ContendedLock>::CONTENDED_NAME,
            <StdMutex as ContendedLock>::CONTENDED_NAME,
            <ParkingLotMutex as ContendedLock>::CONTENDED_NAME,
        ],
    ),
];

/// The idle waiters, shmsync's then the peer.
pub const IDLE_CONTENDERS: [&str; 4] = [
    IdleEvent::NAME,
    IdleSemaphore::NAME,
    IdleLock::NAME,
    IdleSemT::NAME,
];

/// What a run was, beside its samples.
pub struct Run {
    /// How many interleaved rounds it made.
    pub rounds: usize,
    /// Whether it was a `--quick` one, with smaller counts.
    pub quick: bool,
    /// Why the Python rows were skipped, if they were.
    pub python_missing: Option<String>,
    /// How busy the machine was around the rounds.
    pub quiet: Quiet,
}

/// The report's Markdown: the table of [`COMPARISONS`] with medians, spreads, ratios and
/// verdicts, then the idle CPU line and the footprint line.
pub fn results_markdown(samples: &Samples, run: &Run) -> String {
    let quick = if run.quick {
        " of a quick run (--quick: a tenth of the counts)"
    } else {
        ""
    };
    let mut md = format!(
        "Medians of {} interleaved rounds{quick}; ratio = shmsync / peer.\n\n",
        run.rounds
    );
    md += "| comparison | shmsync | peer | unit | ratio | target | met |\n";
    md += "|---|---:|---:|---|---:|---|---|\n";
    for c in COMPARISONS {
        let target = c.target.map(|t| t.to_string()).unwrap_or_default();
        let (Some(ours), Some(peer)) = (samples.median(c.ours), samples.median(c.peer)) else {
            md += &format!(
                "| {} | | | {} | | {target} | skipped: {} |\n",
                c.what,
                c.unit,
                why_skipped(samples, c)
            );
            continue;
        };
        let ratio = ours / peer;
        let met = c
            .target
            .map_or(String::new(), |t| run.quiet.verdict(t.is_met_by(ratio)));
        md += &format!(
            "| {} | {} ({}) | {} ({}) | {} | {:.3} | {} | {} |\n",
            c.what,
            short(ours),
            samples.spread(c.ours),
            short(peer),
            samples.spread(c.peer),
            c.unit,
            ratio,
            target,
            met
        );
    }
    if let Some(reason) = &run.python_missing {
        md += &format!("\n{reason}: the Python rows were skipped.\n");
    }
    md += &format!("\n{}\n", run.quiet.describe());
    md += &format!("\n{}\n", footprint_line());
    let verdict = |met| run.quiet.verdict(met);
    md += &scale::markdown(samples, &SCALE_CONTENDERS, &verdict);
    md += &oversubscribed::markdown(samples, &verdict);
    md += &idle::markdown(samples, &IDLE_CONTENDERS);
    md
}

/// A table under its heading, or nothing if it has no rows.
pub fn section(heading_and_header: &str, rows: &str) -> String {
    if rows.is_empty() {
        String::new()
    } else {
        format!("{heading_and_header}{rows}")
    }
}

/// Why a row has no ratio: what is missing of its two samples.
fn why_skipped(samples: &Samples, c: &Comparison) -> String {
    let mut reasons: Vec<String> = [c.ours, c.peer]
        .into_iter()
        .filter(|name| samples.median(name).is_none())
        .map(|name| samples.why_missing(name))
        .collect();
    reasons.dedup();
    reasons.join("; ")
}

/// The bytes each primitive takes in shared memory, shmsync's and the peers'.
pub fn footprint_line() -> String {
    use std::mem::size_of;
    format!(
        "Shared footprint (bytes): Lock {}, Event {}, Semaphore {}, BoundedSemaphore {}, \
         Value<u64> {}, RLock {}, Condition {}, Barrier {}, RwLock {}; pthread_mutex_t {}, \
         sem_t {}, pthread_cond_t {}, pthread_barrier_t {}, pthread_rwlock_t {}.",
        size_of::<Lock>(),
        size_of::<Event>(),
        size_of::<Semaphore>(),
        size_of::<BoundedSemaphore>(),
        size_of::<Value<u64>>(),
        size_of::<RLock>(),
        size_of::<Condition>(),
        size_of::<Barrier>(),
        size_of::<RwLock>(),
        size_of::<libc::pthread_mutex_t>(),
        size_of::<libc::sem_t>(),
        size_of::<libc::pthread_cond_t>(),
        size_of::<libc::pthread_barrier_t>(),
        size_of::<libc::pthread_rwlock_t>(),
    )
}

/// The report's CSV: one line per comparison with both samples, medians unrounded.
pub fn results_csv(samples: &Samples) -> String {
    let mut csv = String::from("comparison,shmsync,peer,unit,ratio,target,met\n");
    for c in COMPARISONS {
        let (Some(ours), Some(peer)) = (samples.median(c.ours), samples.median(c.peer)) else {
            continue;
        };
        let ratio = ours / peer;
        let (target, met) = match c.target {
            Some(t) => (t.to_string(), if t.is_met_by(ratio) { "yes" } else { "no" }),
            None => (String::new(), ""),
        };
        csv += &format!(
            "{},{ours},{peer},{},{ratio},{target},{met}\n",
            csv_field(c.what),
            c.unit
        );
    }
    csv
}

/// `field` as a CSV field: quoted when it holds a comma or a quote.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// The machine a run was made on, as `BENCHMARKS.md` names it.
pub struct Machine {
    /// The CPU model, from /proc/cpuinfo's "model name".
    pub cpu_model: String,
    /// How many CPUs the run could use.
    pub cpus: Option<usize>,
    /// The kernel's release, from /proc/sys/kernel/osrelease.
    pub kernel: String,
    /// The C library, as `glibc 2.36`, when it is glibc.
    pub libc: Option<String>,
    /// The compiler, as `rustc --version` prints it, when that runs.
    pub rustc: Option<String>,
    /// The day of the run, `YYYY-MM-DD` in UTC.
    pub date: String,
}

impl Machine {
    /// This machine, today.
    pub fn this_one() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease");
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() / 86_400);
        let (year, month, day) = civil_date(days as i64);
        Machine {
            cpu_model: cpu_model(&cpuinfo)
                .unwrap_or("unknown CPU (no “model name” in /proc/cpuinfo)")
                .to_owned(),
            cpus: std::thread::available_parallelism().ok().map(usize::from),
            kernel: kernel.map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
            libc: glibc_version().map(|version| format!("glibc {version}")),
            rustc: rustc_version(),
            date: format!("{year:04}-{month:02}-{day:02}"),
        }
    }

    /// The machine's line of `BENCHMARKS.md`.
    fn describe(&self) -> String {
        let mut parts = vec![self.cpu_model.clone()];
        match self.cpus {
            Some(1) => parts.push("1 CPU".to_owned()),
            Some(n) => parts.push(format!("{n} CPUs")),
            None => {}
        }
        parts.push(format!("Linux {}", self.kernel));
        parts.extend(self.libc.clone());
        parts.extend(self.rustc.clone());
        format!("Machine: {}. Run on {} (UTC).", parts.join(", "), self.date)
    }
}

/// The version of the glibc this process runs on.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_version() -> Option<String> {
    // SAFETY: gnu_get_libc_version takes nothing and returns a static NUL-terminated
    // string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    Some(version.to_string_lossy().into_owned())
}

/// None: not glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc_version() -> Option<String> {
    None
}

/// What `rustc --version` prints (under `cargo run`, the toolchain that built this).
fn rustc_version() -> Option<String> {
    let out = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !version.is_empty()).then_some(version)
}

/// The first "model name" of a /proc/cpuinfo.
fn cpu_model(cpuinfo: &str) -> Option<&str> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim())
    })
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_date(days_since_epoch: i64) -> (i64, u32, u32) {
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The command that regenerates `BENCHMARKS.md`.
pub const REGENERATE_BENCHMARKS_MD: &str =
    "cargo run --release -p shmsync-bench -- --pin --write-benchmarks-md";

/// `BENCHMARKS.md`: a header saying how to regenerate it, the machine (CPU model, CPU
/// count, kernel, C library, compiler) and the date, then `results_md` (the output of [`results_markdown`]).
pub fn benchmarks_markdown(results_md: &str, machine: &Machine, run: &Run) -> String {
    let mut md = String::from("# Benchmarks\n\n");
    md += "The benchmark (`bench/`) writes this file: do not edit it, regenerate it \
           with\n\n";
    md += &format!("```sh\n{REGENERATE_BENCHMARKS_MD}\n```\n\n");
    md += "The README's \"Benchmarks\" section says what is measured and why the figures \
           are what they are.\n\n";
    md += &format!(
        "{} In brackets after each median, the spread of the rounds \
         (lowest–highest).\n\n",
        machine.describe()
    );
    if run.quick {
        md += "**A quick run** (`--quick`: a tenth of the counts): it shows the format; \
               its figures are not the project's measurements.\n\n";
    }
    md += results_md;
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples with every sample but Python's, each with three rounds.
    fn samples_without_python() -> Samples {
        let mut samples = Samples::default();
        for c in COMPARISONS {
            for name in [c.ours, c.peer] {
                if !name.contains("python") && samples.median(name).is_none() {
                    for figure in [2.0, 1.0, 3.0] {
                        samples.add(name, figure);
                    }
                }
            }
        }
        samples
    }

    fn run(python_missing: Option<&str>) -> Run {
        Run {
            rounds: 3,
            quick: false,
            quiet: Quiet::default(),
            python_missing: python_missing.map(str::to_owned),
        }
    }

    #[test]
    fn median_and_spread() {
        let mut samples = Samples::default();
        for figure in [5.0, 1.0, 4.0, 2.0, 3.0] {
            samples.add("x", figure);
        }
        assert_eq!(samples.median("x"), Some(3.0));
        assert_eq!(samples.spread("x"), "1.00–5.00");
        assert_eq!(samples.median("y"), None);
        assert_eq!(samples.spread("y"), "");
    }

    #[test]
    fn short_figures() {
        assert_eq!(short(14.891), "14.89");
        assert_eq!(short(178.4), "178");
        assert_eq!(short(1.929e7), "1.929e7");
    }

    #[test]
    fn targets() {
        assert!(Target::AtMost(1.1).is_met_by(1.1));
        assert!(!Target::AtMost(1.1).is_met_by(1.2));
        assert!(Target::AtLeast(100.0).is_met_by(106.0));
        assert!(!Target::AtLeast(100.0).is_met_by(15.8));
        assert_eq!(Target::AtMost(1.1).to_string(), "≤ 1.1×");
        assert_eq!(Target::AtLeast(100.0).to_string(), "≥ 100×");
    }

    #[test]
    fn every_comparison_is_a_row() {
        let md = results_markdown(&samples_without_python(), &run(None));
        assert!(md.starts_with("Medians of 3 interleaved rounds; ratio = shmsync / peer.\n"));
        for c in COMPARISONS {
            assert!(
                md.contains(&format!("| {} |", c.what)),
                "no row for {}",
                c.what
            );
        }
        assert!(md.contains(
            "| uncontended Lock vs std::sync::Mutex | 2.00 (1.00–3.00) | 2.00 (1.00–3.00) \
             | ns/op | 1.000 | ≤ 1.1× | yes |"
        ));
        assert!(md.contains("| ≥ 100× | skipped: no sample of “value python get_lock” |"));
        assert!(md.contains("Load average at the start: ?."));
        assert!(md.contains("Shared footprint (bytes): Lock "));
    }

    #[test]
    fn a_missing_sample_says_why() {
        let mut samples = samples_without_python();
        for script in python::SCRIPTS {
            samples.add_missing(script.name, "python3 not found on PATH".to_owned());
        }
        let md = results_markdown(&samples, &run(Some("python3 not found on PATH")));
        assert!(md.contains(
            "| uncontended Lock vs Python multiprocessing.Lock | | | ns/op | |  \
             | skipped: python3 not found on PATH |"
        ));
        assert!(md.contains("\npython3 not found on PATH: the Python rows were skipped.\n"));
        assert!(!md.contains("no sample of"));
    }

    #[test]
    fn csv_quotes_commas() {
        let mut samples = samples_without_python();
        samples.add(python::VALUE_UNDER_GET_LOCK.name, 0.5);
        let csv = results_csv(&samples);
        assert!(csv.starts_with("comparison,shmsync,peer,unit,ratio,target,met\n"));
        assert!(csv.contains("\n\"Value::update, 2 processes, vs Python Value+get_lock\",2,0.5,"));
        assert!(csv.contains("\nowner recording vs none (fast path),2,2,ns/op,1,≤ 1.1×,yes\n"));
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn cpu_model_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\nCPU part\t: 0xd0c\n"), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(11_017), (2000, 3, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(20_786), (2026, 11, 29));
    }

    #[test]
    fn benchmarks_md_has_the_machine_and_the_table() {
        let results = results_markdown(&samples_without_python(), &run(None));
        let machine = Machine {
            cpu_model: "AMD EPYC".to_owned(),
            cpus: Some(2),
            kernel: "6.18.44".to_owned(),
            libc: Some("glibc 2.36".to_owned()),
            rustc: None,
            date: "2026-11-29".to_owned(),
        };
        let md = benchmarks_markdown(&results, &machine, &run(None));
        assert!(md.starts_with("# Benchmarks\n"));
        assert!(md.contains(&format!("```sh\n{REGENERATE_BENCHMARKS_MD}\n```")));
        assert!(md.contains(
            "Machine: AMD EPYC, 2 CPUs, Linux 6.18.44, glibc 2.36. Run on 2026-11-29 \
             (UTC). In brackets after each median, the spread"
        ));
        assert!(!md.contains("quick run"));
        assert!(md.ends_with(&results));
        let quick = Run {
            quick: true,
            ..run(None)
        };
        assert!(benchmarks_markdown(&results, &machine, &quick).contains("**A quick run**"));
    }
}
