//! Puts memory.x where the linker looks, wherever cargo is run from, and tells the code
//! which QEMU machine (and so which SysTick clock) the target runs on.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo::rustc-check-cfg=cfg(cortex_m0)");
    if std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv6m")) {
        println!("cargo::rustc-cfg=cortex_m0");
    }
}
