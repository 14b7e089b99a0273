#!/bin/sh
# Rebuilds the bare-metal FP torture program and regenerates its reference output from QEMU.
# Needs Debian's gcc-riscv64-unknown-elf and qemu-system-misc. Commit both fp-torture.elf and
# expected.txt afterwards: CI checks against them without a cross compiler or QEMU.
set -eu

dir="$(cd "$(dirname "$0")/../test/guest/fp" && pwd)"
make -C "$dir" --no-print-directory -B fp-torture.elf

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
# The program powers the machine off through the test finisher; the timeout only bounds a hang.
if ! timeout 120 qemu-system-riscv64 -M virt -bios none -nographic -monitor none -serial stdio \
    -kernel "$dir/fp-torture.elf" >"$tmp" </dev/null; then
  echo "regen-fp-expected: QEMU failed or timed out" >&2
  exit 1
fi
if [ "$(tail -n 1 "$tmp")" != "# end" ]; then
  echo "regen-fp-expected: output is truncated (no '# end' line)" >&2
  exit 1
fi
mv "$tmp" "$dir/expected.txt"
trap - EXIT
echo "wrote $dir/expected.txt ($(wc -l <"$dir/expected.txt") lines, $(wc -c <"$dir/expected.txt") bytes)"
