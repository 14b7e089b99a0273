#!/bin/bash
# Runs xv6-riscv (https://github.com/mit-pdos/xv6-riscv, not part of this repository) on wkvm with xv6's
# own QEMU command line, and its user-space test suite in it: `usertests -q` must print ALL TESTS PASSED.
#
#   test/conformance/run-xv6.sh PATH/TO/xv6-riscv [usertests arguments, default -q]
#
# Builds xv6's kernel and file system image with its Makefile (Debian's riscv64-unknown-elf-gcc), copies
# fs.img (the tests write to it) and boots `-machine virt -bios none -kernel kernel/kernel -m 128M -smp 3
# -global virtio-mmio.force-legacy=false -drive file=fs.img,if=none,format=raw,id=x0
# -device virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0`, as `make qemu` does. Env: WKVM, TIMEOUT (s).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
XV6="${1:?usage: run-xv6.sh PATH/TO/xv6-riscv [usertests args]}"
shift
ARGS="${*:--q}"
WKVM="${WKVM:-$ROOT/bin/wkvm.js}"
make -s -C "$XV6" kernel/kernel fs.img >/dev/null
WORK="$(mktemp -d /tmp/xv6-run.XXXXXX)"
cp "$XV6/fs.img" "$WORK/fs.img"
exec node "$HERE/xv6-console.mjs" "${TIMEOUT:-1800}" "usertests $ARGS" node "$WKVM" run -machine virt -bios none \
  -kernel "$XV6/kernel/kernel" -m 128M -smp 3 -nographic -global virtio-mmio.force-legacy=false \
  -drive "file=$WORK/fs.img,if=none,format=raw,id=x0" -device virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0
