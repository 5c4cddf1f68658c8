//! Puts the target's memory layout where the linker looks for `memory.x`.
use std::path::PathBuf;

fn main() {
    let target = std::env::var("TARGET").unwrap();
    let layout = if target.starts_with("riscv32") {
        "memory-virt.x"
    } else {
        "memory-an521.x"
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy(layout, out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={layout}");
}
