//! Tells the crate whether 64-bit atomics exist on the target: natively, or through
//! portable-atomic's fallback.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_atomic_64)");
    let native = std::env::var("CARGO_CFG_TARGET_HAS_ATOMIC")
        .is_ok_and(|widths| widths.split(',').any(|w| w == "64"));
    let emulated = std::env::var_os("CARGO_FEATURE_FALLBACK").is_some();
    if native || emulated {
        println!("cargo::rustc-cfg=has_atomic_64");
    }
}
