#!/bin/bash
# Rebuilds the committed bare-metal guest ELFs (test/guest/*, bench/guest/*) with
# Debian's riscv64-unknown-elf-gcc, and the Linux user program test/guest/linux/randio. Usage: scripts/build-guests.sh [clean]
# Optional: VERIFY=1 also runs each program on qemu-system-riscv64 -M virt and
# checks its exit status (test/guest/expected-exit lists them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CROSS="${CROSS:-riscv64-unknown-elf-}"

if ! command -v "${CROSS}gcc" >/dev/null 2>&1; then
  echo "build-guests: ${CROSS}gcc not found." >&2
  echo "  Install the cross compiler: apt-get install -y gcc-riscv64-unknown-elf" >&2
  echo "  (or set CROSS=<prefix> to another riscv64 bare-metal toolchain)." >&2
  exit 1
fi

target="${1:-all}"
make --no-print-directory -C "$ROOT/test/guest" CROSS="$CROSS" "$target"
make --no-print-directory -C "$ROOT/bench/guest" CROSS="$CROSS" "$target"
# Linux user programs (the disk benchmark's randio) need Debian's gcc-riscv64-linux-gnu instead.
if command -v riscv64-linux-gnu-gcc >/dev/null 2>&1; then
  make --no-print-directory -C "$ROOT/test/guest/linux/randio" "$target"
else
  echo "build-guests: riscv64-linux-gnu-gcc not found: test/guest/linux/randio left as committed" >&2
  echo "  (apt-get install -y gcc-riscv64-linux-gnu)" >&2
fi

if [ "${VERIFY:-0}" = 1 ] && [ "$target" = all ]; then
  "$ROOT/test/guest/verify-qemu.sh"
fi
