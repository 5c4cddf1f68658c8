//! QEMU's RISC-V `virt` machine with two harts: the doorbell (CLINT software interrupts
//! and `wfi`), the clock (`mtime`), the timer interrupt, starting hart 1.
//!
//! With `-bios none`, both harts start at the same time in riscv-rt's `_start`. The boot
//! hook below keeps hart 1 there until hart 0 has initialised RAM and calls
//! [`start_core1`].

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, Ordering};

use riscv_semihosting::hprintln;
use shmsync_core::{Clock, Doorbell};

pub const NAME: &str = "RISC-V virt (2 harts)";
const HARTS: usize = 2;

/// The core-local interruptor (CLINT) of QEMU's `virt` machine.
const CLINT: usize = 0x0200_0000;
/// One word per hart: writing 1 makes a machine software interrupt pending on it.
const MSIP: usize = CLINT;
/// One 64-bit compare register per hart: a timer interrupt is pending while
/// `mtime >= mtimecmp`.
const MTIMECMP: usize = CLINT + 0x4000;
const MTIME: usize = CLINT + 0xBFF8;
/// `mtime` counts at 10 MHz on `virt`.
const NS_PER_MTIME_TICK: u64 = 100;
/// `mie.MSIE` and `mstatus.MIE`: bit 3 in both.
const BIT3: usize = 8;
/// Between two work ticks of the timer interrupt: 100 µs.
const TICK_PERIOD: u64 = 1_000;

fn msip(hart: usize) -> *mut u32 {
    (MSIP + 4 * hart) as *mut u32
}

/// The hart running this code.
pub fn core() -> usize {
    riscv::register::mhartid::read()
}

static SLEPT: [AtomicU32; HARTS] = [const { AtomicU32::new(0) }; HARTS];
static AT_ONCE: [AtomicU32; HARTS] = [const { AtomicU32::new(0) }; HARTS];
static RINGS: [AtomicU32; HARTS] = [const { AtomicU32::new(0) }; HARTS];

/// How often the doorbell put `hart` to sleep.
pub fn sleeps(hart: usize) -> u32 {
    SLEPT[hart].load(Ordering::Relaxed) + AT_ONCE[hart].load(Ordering::Relaxed)
}

pub fn report_sleeps() {
    for hart in 0..HARTS {
        hprintln!(
            "  hart {}: {} sleeps in wfi ({} of them returned at once: rung before wfi), {} rings",
            hart,
            sleeps(hart),
            AT_ONCE[hart].load(Ordering::Relaxed),
            RINGS[hart].load(Ordering::Relaxed),
        );
    }
}

/// The doorbell: a hart's pending machine software interrupt (`mip.MSIP`) is its event
/// latch. A ring makes it pending on every hart, this one included; `wfi` returns at once
/// while it is pending (and `mie.MSIE` set), and the sleeper clears it after waking.
pub struct Bell;

impl Doorbell for Bell {
    const NAME: &'static str = "CLINT msip";

    fn ring() {
        let me = core();
        RINGS[me].fetch_add(1, Ordering::Relaxed);
        // SAFETY: a fence has no operands. Memory and device writes before it (the word
        // the waiter looks at) are visible before the `msip` writes below raise the
        // interrupt, so a woken hart sees them.
        unsafe { asm!("fence iorw, iorw") };
        for hart in 0..HARTS {
            // SAFETY: `msip` of an existing hart: a CLINT register; writing 1 only makes
            // a software interrupt pending there, which stays masked (see `sleep`).
            unsafe { msip(hart).write_volatile(1) };
        }
    }

    fn sleep() {
        let me = core();
        let was_enabled: usize;
        // SAFETY: masks this hart's interrupts, and lets a pending software interrupt
        // end `wfi` (with interrupts masked it is never taken as a trap). Masked, no
        // interrupt handler of this hart can run between the caller's look at its word
        // and `wfi`: one that becomes pending instead ends the `wfi`, and a ring from a
        // handler that ran before the look left `msip` pending, which ends it too.
        unsafe { asm!("csrrci {0}, mstatus, 8", "csrsi mie, 8", out(reg) was_enabled) };
        // SAFETY: this hart's own `msip`.
        let rung = unsafe { msip(me).read_volatile() } != 0;
        let counter = if rung { &AT_ONCE } else { &SLEPT };
        counter[me].fetch_add(1, Ordering::Relaxed);
        // SAFETY: `wfi` only waits; then the latch is cleared and the masks restored.
        // A ring landing between `wfi` and the clear is lost as an interrupt, not as a
        // wake-up: the caller looks at its word again, and the fence orders that look
        // after the clear (the ringer's fence ordered its write before its ring).
        unsafe {
            asm!("wfi");
            msip(me).write_volatile(0);
            asm!("csrci mie, 8", "fence iorw, iorw");
            if was_enabled & BIT3 != 0 {
                asm!("csrsi mstatus, 8");
            }
        }
    }
}

/// The clock: `mtime`, shared by the harts.
pub struct Uptime;

fn mtime() -> u64 {
    let (lo, hi) = (MTIME as *const u32, (MTIME + 4) as *const u32);
    loop {
        // SAFETY: `mtime`'s halves; read high, low, high until no carry came between.
        let (h, l, again) = unsafe { (hi.read_volatile(), lo.read_volatile(), hi.read_volatile()) };
        if h == again {
            return u64::from(h) << 32 | u64::from(l);
        }
    }
}

impl Clock for Uptime {
    fn now_ns() -> u64 {
        mtime() * NS_PER_MTIME_TICK
    }
}

fn set_mtimecmp(hart: usize, at: u64) {
    let lo = (MTIMECMP + 8 * hart) as *mut u32;
    let hi = (MTIMECMP + 8 * hart + 4) as *mut u32;
    // SAFETY: this hart's compare register; the low half goes to the maximum first,
    // so that no value between the old and the new one fires early.
    unsafe {
        lo.write_volatile(u32::MAX);
        hi.write_volatile((at >> 32) as u32);
        lo.write_volatile(at as u32);
    }
}

/// Starts the timer interrupt on this hart (hart 0), every `TICK_PERIOD`.
pub fn start_ticks() {
    set_mtimecmp(core(), mtime() + TICK_PERIOD);
    // SAFETY: enables the machine timer interrupt, whose handler is below, and
    // interrupts on this hart.
    unsafe {
        riscv::register::mie::set_mtimer();
        riscv::register::mstatus::set_mie();
    }
}

#[riscv_rt::core_interrupt(riscv::interrupt::Interrupt::MachineTimer)]
fn machine_timer() {
    let hart = core();
    if crate::on_tick() {
        set_mtimecmp(hart, mtime() + TICK_PERIOD);
    } else {
        set_mtimecmp(hart, u64::MAX);
        // SAFETY: only stops this interrupt.
        unsafe { riscv::register::mie::clear_mtimer() };
    }
}

/// Lets hart 1 leave the boot hook (below) and run `core1`.
pub fn start_core1() {
    // SAFETY: hart 1's `msip`: the boot hook waits for it.
    unsafe { msip(1).write_volatile(1) };
}

// riscv-rt calls this on every hart before RAM is initialised; the hart returning 1
// initialises it. Hart 1 waits for hart 0's `start_core1` (its `msip`), then clears it.
// It must not clear it before waiting: hart 0 may have sent it already.
global_asm!(
    r#".section .init.mp_hook, "ax"
    .global _mp_hook
_mp_hook:
    beqz a0, 2f
    li   t0, 0x02000000    // CLINT msip
    slli t1, a0, 2
    add  t0, t0, t1        // &msip[hart]
    li   t1, 8             // mie.MSIE
    csrs mie, t1
1:  wfi
    csrr t2, mip
    and  t2, t2, t1
    beqz t2, 1b            // not rung yet: sleep again
    sw   zero, 0(t0)
    csrc mie, t1
    li   a0, 0
    ret
2:  li   a0, 1
    ret
"#
);

#[riscv_rt::entry]
fn main(hart: usize) -> ! {
    match hart {
        0 => crate::core0(),
        _ => crate::core1(),
    }
}

/// Sleeps this hart for good.
pub fn park() -> ! {
    loop {
        riscv::asm::wfi();
    }
}
