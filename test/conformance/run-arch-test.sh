#!/bin/bash
# Runs riscv-arch-test (https://github.com/riscv-non-isa/riscv-arch-test, not part of this repository) on
# wkvm and on QEMU, and compares the signatures: the suite's RV64 tests for I, M, A, C, F, D, B (Zba, Zbb,
# Zbc, Zbs), Zifencei, privilege and pmp64, plus the F and D tests under rv32i_m that name RV64 too.
#
#   test/conformance/run-arch-test.sh PATH/TO/riscv-arch-test
#
# Each test is built with Debian's riscv64-unknown-elf-gcc against arch-test/model_test.h (which prints the
# signature on the UART), run on `qemu-system-riscv64 -M virt -cpu rv64,h=false -bios none` (wkvm has no
# H extension, and the trap handler's signature depends on it) and on wkvm twice: as configured, and with
# every block translated (`-accel tcg,jit-threshold=1`). A test whose build fails needs an extension
# outside RV64GC (Zcb, say) and is skipped. known-differences.tsv lists the tests whose signatures differ
# for a reason, reported as "known". Env: JOBS (default: cores), OUT (work dir), QEMU, WKVM, ARCH_TEST_DIRS
# (the suite's directories to run instead of all of the above, e.g. "rv64i_m/B").
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SUITE="${1:?usage: run-arch-test.sh PATH/TO/riscv-arch-test}/riscv-test-suite"
[ -d "$SUITE/env" ] || { echo "run-arch-test: no riscv-test-suite/env under $1" >&2; exit 2; }
export SUITE HERE QEMU="${QEMU:-qemu-system-riscv64}" WKVM="${WKVM:-$ROOT/bin/wkvm.js}"
export OUT="${OUT:-$(mktemp -d /tmp/arch-test.XXXXXX)}"
mkdir -p "$OUT/elf" "$OUT/sig"

one() {
  local src=$1 rel name elf defs
  rel=${src#"$SUITE"/}; rel=${rel/\/src\//\/}; rel=${rel%.S}
  name=${rel//\//_}; elf="$OUT/elf/$name.elf"
  # The test's own RVTEST_CASE line says which macros it needs (TEST_CASE_1, rvtest_mtrap_routine, ...).
  defs=$(grep -ho 'def [A-Za-z_0-9]*=[A-Za-z0-9]*' "$src" | sort -u | sed 's/^def /-D/')
  # shellcheck disable=SC2086
  if ! riscv64-unknown-elf-gcc -march=rv64gc_zicsr_zifencei_zba_zbb_zbc_zbs -mabi=lp64 -static -mcmodel=medany -fvisibility=hidden \
      -nostdlib -nostartfiles -T "$HERE/arch-test/link.ld" -I "$SUITE/env" -I "$HERE/arch-test" \
      -DXLEN=64 -DFLEN=64 $defs "$src" -o "$elf" 2> "$OUT/elf/$name.log"; then
    echo "skip $rel"; return
  fi
  timeout 60 "$QEMU" -M virt -cpu rv64,h=false -m 128M -bios none -nographic -kernel "$elf" </dev/null 2>&1 | tr -d '\r' > "$OUT/sig/$name.qemu"
  timeout 60 node "$WKVM" run -M virt -m 128M -bios none -nographic -kernel "$elf" </dev/null 2>&1 | tr -d '\r' > "$OUT/sig/$name.wkvm"
  timeout 60 node "$WKVM" run -M virt -m 128M -bios none -nographic -accel tcg,jit-threshold=1 -kernel "$elf" </dev/null 2>&1 | tr -d '\r' > "$OUT/sig/$name.jit"
  if [ "$(wc -l < "$OUT/sig/$name.qemu")" -lt 4 ]; then echo "noref $rel"; return; fi
  # differs: as configured; differs-jit: with every block translated; differs-both.
  local verdict=pass interp=same jit=same
  cmp -s "$OUT/sig/$name.qemu" "$OUT/sig/$name.wkvm" || interp=differs
  cmp -s "$OUT/sig/$name.qemu" "$OUT/sig/$name.jit" || jit=differs
  case "$interp/$jit" in same/differs) verdict=differs-jit ;; differs/same) verdict=differs ;; differs/differs) verdict=differs-both ;; esac
  if [ "$verdict" != pass ] && grep -q "^$rel	" "$HERE/known-differences.tsv"; then verdict="known-$verdict"; fi
  echo "$verdict $rel"
}
export -f one

{
  for dir in ${ARCH_TEST_DIRS:-rv64i_m/I rv64i_m/M rv64i_m/A rv64i_m/C rv64i_m/F rv64i_m/D rv64i_m/B rv64i_m/Zifencei rv64i_m/privilege rv64i_m/pmp64}; do
    find "$SUITE/$dir/src" -name '*.S' 2>/dev/null
  done
  [ -n "${ARCH_TEST_DIRS:-}" ] || find "$SUITE/rv32i_m/F/src" "$SUITE/rv32i_m/D/src" -name '*.S' 2>/dev/null | xargs grep -l 'RVTEST_ISA(.*RV64' 2>/dev/null
} | sort | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c 'one "$@"' _ {} | sort -k2 > "$OUT/results.txt"

grep -v '^pass ' "$OUT/results.txt"
awk '{ n[$1]++ } END { for (k in n) printf "%s %d  ", k, n[k]; print "" }' "$OUT/results.txt"
echo "signatures and logs: $OUT"
! grep -qE '^(differs|noref)' "$OUT/results.txt"
