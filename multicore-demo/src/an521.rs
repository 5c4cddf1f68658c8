//! QEMU's MPS2-AN521 (Arm's SSE-200 subsystem, two Cortex-M33): the doorbell (`sev` and
//! `wfe`), the clock (the CMSDK timer 0), the timer interrupt (CPU0's SysTick), starting
//! CPU1.
//!
//! CPU0 runs cortex-m-rt's reset and `main`. CPU1 stays powered off until CPU0 gives it a
//! vector table of its own and releases it (`start_core1`): it must not run cortex-m-rt's
//! reset, which would initialise RAM again under CPU0.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::asm;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use shmsync_core::{Clock, Doorbell};

// The semihosting output's critical section masks interrupts on the calling CPU only.
// That is enough because only CPU0 prints; the demo's types need no critical section.
use cortex_m as _;

pub const NAME: &str = "Arm MPS2-AN521 (2 Cortex-M33)";
const CPUS: usize = 2;

/// Reads 0 on CPU0 and 1 on CPU1 (SSE-200 CPU_IDENTITY, Secure alias).
const CPU_IDENTITY: *const u32 = 0x5001_F000 as *const u32;
/// SSE-200 system control: CPU1's initial Secure vector table, and the bits that hold
/// each CPU in reset (bit 1: CPU1).
const INITSVTOR1: *mut u32 = 0x5002_1114 as *mut u32;
const CPUWAIT: *mut u32 = 0x5002_1118 as *mut u32;
/// CMSDK timer 0 (Secure alias): a 32-bit down-counter at the 20 MHz system clock.
const TIMER0_CTRL: *mut u32 = 0x5000_0000 as *mut u32;
const TIMER0_VALUE: *mut u32 = 0x5000_0004 as *mut u32;
const TIMER0_RELOAD: *mut u32 = 0x5000_0008 as *mut u32;
const NS_PER_TIMER_TICK: u64 = 50;
/// SysTick counts CPU0's 20 MHz clock: a tick every 100 µs.
const SYSTICK_RELOAD: u32 = 2_000 - 1;

/// The CPU running this code.
pub fn core() -> usize {
    // SAFETY: a read-only identity register, banked per CPU.
    unsafe { CPU_IDENTITY.read_volatile() as usize }
}

static SLEPT: [AtomicU32; CPUS] = [const { AtomicU32::new(0) }; CPUS];
static RINGS: [AtomicU32; CPUS] = [const { AtomicU32::new(0) }; CPUS];

/// How often the doorbell put `cpu` to sleep.
pub fn sleeps(cpu: usize) -> u32 {
    SLEPT[cpu].load(Ordering::Relaxed)
}

pub fn report_sleeps() {
    for (cpu, rings) in RINGS.iter().enumerate() {
        hprintln!(
            "  CPU{}: {} sleeps in wfe, {} rings (sev)",
            cpu,
            sleeps(cpu),
            rings.load(Ordering::Relaxed),
        );
    }
    // QEMU 7.2 runs `wfe` as a no-op when the CPUs run on several host threads, and
    // `sev` as nothing: there the sleeps above return at once, and a waiter polls.
    hprintln!("  (QEMU 7.2 runs wfe as a no-op on several host threads: a waiter polls here)");
}

/// The doorbell: the event register of Arm cores. `sev` sets it on every CPU, this one
/// included; `wfe` sleeps until it is set, and clears it. An interrupt taken in `wfe`
/// ends it too.
pub struct Bell;

impl Doorbell for Bell {
    const NAME: &'static str = "sev";

    fn ring() {
        RINGS[core()].fetch_add(1, Ordering::Relaxed);
        // The word's new value is visible to every CPU before the event is.
        asm::dsb();
        asm::sev();
    }

    fn sleep() {
        SLEPT[core()].fetch_add(1, Ordering::Relaxed);
        asm::wfe();
    }
}

/// The clock: timer 0, free-running, shared by both CPUs. It wraps after 214 s (2^32
/// ticks at 20 MHz), which this demo never reaches; firmware that runs longer would
/// count the wraps in the timer's interrupt.
pub struct Uptime;

impl Clock for Uptime {
    fn now_ns() -> u64 {
        // SAFETY: timer 0's current value; it counts down.
        let left = unsafe { TIMER0_VALUE.read_volatile() };
        u64::from(u32::MAX - left) * NS_PER_TIMER_TICK
    }
}

fn start_clock() {
    // SAFETY: timer 0's registers; it runs from the maximum down, without interrupt.
    unsafe {
        TIMER0_RELOAD.write_volatile(u32::MAX);
        TIMER0_VALUE.write_volatile(u32::MAX);
        TIMER0_CTRL.write_volatile(1);
    }
}

/// Starts SysTick's interrupt on this CPU (CPU0).
pub fn start_ticks() {
    // SAFETY: CPU0's SysTick, which nothing else uses.
    let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSTICK_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    if !crate::on_tick() {
        // SAFETY: only stops this interrupt.
        let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
        syst.disable_interrupt();
        syst.disable_counter();
    }
}

/// CPU1's vector table: its initial stack pointer, its reset handler, then its faults.
/// In `.bss`, filled at run time: QEMU reads a CPU's first two vectors from the loaded
/// image when one covers them, so a table there might not be the one CPU1 gets.
/// VTOR ignores the low 7 bits: hence the alignment.
#[repr(C, align(128))]
struct VectorTable([u32; 16]);

static mut CPU1_VECTORS: VectorTable = VectorTable([0; 16]);

const CPU1_STACK_SIZE: usize = 8 * 1024;

#[repr(C, align(8))]
struct Stack([u8; CPU1_STACK_SIZE]);

static mut CPU1_STACK: Stack = Stack([0; CPU1_STACK_SIZE]);

extern "C" fn cpu1_reset() -> ! {
    crate::core1()
}

extern "C" fn cpu1_fault() -> ! {
    hprintln!("CPU1 took a fault");
    crate::exit(false)
}

/// Gives CPU1 its vector table and releases it from reset: it runs `core1`.
pub fn start_core1() {
    let vectors = &raw mut CPU1_VECTORS;
    let stack_top = (&raw mut CPU1_STACK) as usize + CPU1_STACK_SIZE;
    // SAFETY: CPU1 is held in reset until the CPUWAIT write below, and nothing else
    // touches its table or its stack: CPU0 is the only writer, once. The `dsb` makes
    // the table visible before CPU1 is released.
    unsafe {
        let table = &mut (*vectors).0;
        table[0] = stack_top as u32;
        table[1] = cpu1_reset as *const () as u32; // the Thumb bit is already set
        for vector in &mut table[2..] {
            *vector = cpu1_fault as *const () as u32;
        }
        asm::dsb();
        INITSVTOR1.write_volatile(vectors as u32);
        CPUWAIT.write_volatile(CPUWAIT.read_volatile() & !0b10);
    }
}

#[entry]
fn main() -> ! {
    start_clock();
    crate::core0()
}

/// Sleeps this CPU for good.
pub fn park() -> ! {
    loop {
        asm::wfi();
    }
}
