#!/bin/bash
# Runs smp-litmus.elf with several hart counts and checks exit status 0 and the
# final "smp-litmus: PASS" line. Each run is bounded by a timeout.
# Usage: test/guest/smp-litmus/verify.sh [N...]            (default: 1 2 4, on QEMU)
#        VMM=wkvm test/guest/smp-litmus/verify.sh 2 4       (on wkvm: node bin/wkvm.js run)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
ELF="$ROOT/test/guest/smp-litmus/smp-litmus.elf"
TIMEOUT="${TIMEOUT:-120}"
VMM="${VMM:-qemu}"
case "$VMM" in
  qemu) vmm=("${QEMU:-qemu-system-riscv64}") ;;
  wkvm) vmm=(node "$ROOT/bin/wkvm.js" run) ;;
  *) echo "verify: VMM must be qemu or wkvm, not '$VMM'" >&2; exit 2 ;;
esac
[ $# -eq 0 ] && set -- 1 2 4
failed=0
for harts in "$@"; do
  start=$(date +%s%N)
  out="$(timeout "$TIMEOUT" "${vmm[@]}" -M virt -m 128M -smp "$harts" -bios none -nographic -kernel "$ELF" </dev/null 2>&1)"
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  last="$(printf '%s\n' "$out" | tr -d '\r' | tail -n 1)"
  if [ "$rc" = 0 ] && [ "$last" = "smp-litmus: PASS" ]; then
    echo "ok   $VMM -smp $harts (${ms} ms)"
  else
    failed=1
    echo "FAIL $VMM -smp $harts: exit $rc after ${ms} ms, last line '$last'"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
done
exit "$failed"
