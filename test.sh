#!/usr/bin/env bash
# Every check of the project, from a fresh machine: installs what is missing, then runs
# formatting, lints, host tests, doc tests (the shmsync command's among them), the
# command's install, loom models, cross builds, the firmware demos on QEMU (one core; two
# cores and an interrupt handler) and the tour.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

# Every cargo test summary line goes here too, for the totals at the end.
results=$(mktemp)
trap 'rm -f "$results"' EXIT

CROSS_TARGETS=(thumbv7m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabi riscv32imac-unknown-none-elf thumbv6m-none-eabi)

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
cargo clippy -p shmsync-core --all-targets --all-features -- -D warnings
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo clippy -p shmsync-core --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
RUSTDOCFLAGS="-D warnings" cargo doc -p shmsync-core --all-features --no-deps --quiet

# The last line of defence against a hang: every test waits with a timeout of its own,
# and a test binary still running after this long is killed and fails the run. So is
# whatever a command leaves running when it ends: the forked children of a test binary
# that crashed would otherwise run on, holding the output pipe (and so this script)
# open for ever. `timeout` leads a process group of its own, which they stay in.
hang_limit() {
  local status=0 group left
  timeout --kill-after=30 "$1" "${@:2}" &
  group=$!
  wait "$group" || status=$?
  left=$(running_in_group "$group")
  if [ -n "$left" ]; then
    printf 'left running by %s, now killed:\n%s\n' "${*:2}" "$left" >&2
    kill -KILL -- "-$group" 2>/dev/null || true
    [ "$status" != 0 ] || status=1
  fi
  return "$status"
}

# The processes of process group $1 that have not ended, one "pid command" a line.
running_in_group() {
  local stat fields pid state pgid
  for stat in /proc/[0-9]*/stat; do
    { fields=$(<"$stat"); } 2>/dev/null || continue
    pid=${fields%% *}
    # After the command's name (which may hold spaces): state, parent, group.
    read -r state _ pgid _ <<<"${fields##*) }"
    [ "$pgid" = "$1" ] && [ "$state" != Z ] && echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done
  return 0
}

step "host tests and doc tests"
hang_limit 1800 cargo test --workspace 2>&1 | tee -a "$results"
# The async forms and the pass-through features.
hang_limit 900 cargo test -p shmsync-core --all-features 2>&1 | tee -a "$results"

step "the shmsync command installs as the README says"
install_root=$(mktemp -d)
cargo install --quiet --locked --debug --path cli --root "$install_root" --target-dir target/install
"$install_root/bin/shmsync" --version
"$install_root/bin/shmsync" ls --all >/dev/null
rm -rf "$install_root"

step "loom models"
hang_limit 1800 env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p shmsync-core --test loom --test loom_cores --release 2>&1 | tee -a "$results"
# Again with every contended release of a lock handing it over (fairness), so that
# every primitive built on a lock meets handed-over locks at every turn.
hang_limit 1800 env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom SHMSYNC_LOOM_HAND_OFF=1 cargo test -p shmsync-core --test loom --release 2>&1 | tee -a "$results"

step "cross builds of shmsync-core"
for target in "${CROSS_TARGETS[@]}"; do
  features=()
  # No compare-and-swap on Cortex-M0: the pass-through feature lets the final binary
  # provide it with a critical section.
  [ "$target" = thumbv6m-none-eabi ] && features=(--features critical-section)
  echo "$target ${features[*]}"
  cargo build -p shmsync-core --target "$target" "${features[@]}" --quiet
  cargo build -p shmsync-core --target "$target" "${features[@]}" --features embassy --quiet
done

# Installs the Debian package $2 unless the command $1 is there.
need() {
  command -v "$1" >/dev/null && return
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "$2" >/dev/null
}

step "embedded demo on QEMU: Cortex-M3 (lm3s6965evb) and Cortex-M0 (microbit)"
need qemu-system-arm qemu-system-arm
(
  cd embedded-demo
  cargo fmt --check
  for target in thumbv7m-none-eabi thumbv6m-none-eabi; do
    cargo clippy --release --target "$target" -- -D warnings
    cargo build --release --target "$target" --quiet
    echo "--- $target"
    # QEMU exits with the demo's status: 0 only when every invariant held.
    timeout 120 cargo run --release --target "$target" --quiet
  done
)

step "multicore demo on QEMU: RISC-V virt (2 harts) and Arm MPS2-AN521 (2 Cortex-M33)"
need qemu-system-riscv32 qemu-system-misc
(
  cd multicore-demo
  cargo fmt --check
  for target in riscv32imac-unknown-none-elf thumbv8m.main-none-eabi; do
    cargo clippy --release --target "$target" -- -D warnings
    cargo build --release --target "$target" --quiet
    echo "--- $target"
    # Both cores on two host threads, as QEMU runs them by default: 0 only when every
    # invariant held. QEMU 7.2 runs `wfe` as a no-op there, so waiters poll and a run
    # takes what the host's scheduler gives it: 37 s to over 120 s on a 2-vCPU VM with
    # other load. The limit only catches a hang.
    timeout 900 cargo run --release --target "$target" --quiet
  done
)

step "the tour (the README's demo)"
cargo run -q -p shmsync --example tour

step "all checks passed"
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
