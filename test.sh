#!/usr/bin/env bash
# Every check of the project, from a fresh machine: installs what is missing, then runs
# formatting, lints, host tests, doc tests, loom models and cross builds.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

CROSS_TARGETS=(thumbv7m-none-eabi thumbv7em-none-eabihf riscv32imac-unknown-none-elf thumbv6m-none-eabi)

step "toolchain: components and targets"
installed_components=$(rustup component list --installed)
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed_components" || rustup component add "$component"
done
installed_targets=$(rustup target list --installed)
for target in "${CROSS_TARGETS[@]}"; do
  grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo clippy -p shmsync-core --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "host tests and doc tests"
cargo test --workspace

step "loom models"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p shmsync-core --test loom --release

step "cross builds of shmsync-core"
for target in "${CROSS_TARGETS[@]}"; do
  features=()
  # No compare-and-swap on Cortex-M0: the pass-through feature lets the final binary
  # provide it with a critical section.
  [ "$target" = thumbv6m-none-eabi ] && features=(--features critical-section)
  echo "$target ${features[*]}"
  cargo build -p shmsync-core --target "$target" "${features[@]}" --quiet
done

step "the tour (the README's demo)"
cargo run -q -p shmsync --example tour

step "all checks passed"
