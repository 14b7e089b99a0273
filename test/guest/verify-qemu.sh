#!/bin/bash
# Runs every program in manifest.tsv on qemu-system-riscv64 (the reference wkvm
# must match) and checks exit status and last output line. Each run is bounded by
# a timeout, so a hang is a failure rather than a stuck script.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
QEMU="${QEMU:-qemu-system-riscv64}"
TIMEOUT="${TIMEOUT:-60}"
pass=0
fail=0
while IFS=$'\t' read -r elf status board last_line; do
  case "$elf" in ''|'#'*) continue ;; esac
  out="$(timeout "$TIMEOUT" "$QEMU" -M "$board" -m 128M -bios none -nographic -kernel "$ROOT/$elf" </dev/null 2>&1)"
  rc=$?
  got_last="$(printf '%s\n' "$out" | tail -n 1)"
  [ -z "$out" ] && got_last=-
  if [ "$rc" = "$status" ] && [[ "$got_last" == $last_line ]]; then
    pass=$((pass + 1))
    echo "ok   $elf (exit $rc)"
  else
    fail=$((fail + 1))
    echo "FAIL $elf: exit $rc (want $status), last line '$got_last' (want '$last_line')"
  fi
done < "$ROOT/test/guest/manifest.tsv"
echo "verify-qemu: $pass passed, $fail failed"
[ "$fail" = 0 ]
