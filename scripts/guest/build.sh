#!/bin/bash
# Builds wkvm's default Linux guest (RV64GC: Linux 6.1 + a static busybox) from Debian
# bookworm packages only: linux-source-6.1, the busybox source package, opensbi and the
# riscv64-linux-gnu cross compiler.
#
#   scripts/guest/build.sh [OUTDIR]      (npm run guest:build; OUTDIR defaults to guest-cache/
#                                         at the repository root)
#
# OUTDIR receives Image, initramfs.cpio.gz, rootfs.ext4, opensbi/fw_{jump,dynamic}.{bin,elf},
# kernel.config, build-info.txt and SHA256SUMS.
#
# Environment:
#   WKVM_GUEST_WORK  intermediate files (default /var/tmp/wkvm-guest-build, about 1.7 GB);
#                    delete it to force a build from scratch
#   JOBS             parallel compile jobs (default: the number of CPUs)
#   VERBOSE=1        stream the compiler output instead of a progress summary
#   FORCE=1          rebuild even when OUTDIR is up to date
#
# Installing packages needs root (apt-get). Without root the script still works when every
# package is installed and apt already knows the busybox source package. The images are
# reproducible: timestamps come from the linux-source tarball, and ownership, UUIDs and
# archive order are fixed, so the same package versions give byte-identical files.
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT_ARG="${1:-$REPO/guest-cache}"
WORK="${WKVM_GUEST_WORK:-/var/tmp/wkvm-guest-build}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
VERBOSE="${VERBOSE:-0}"
FORCE="${FORCE:-0}"
ROOTFS_MIB=16
FRAGMENT="$HERE/kernel.fragment"   # kernel options applied on top of tinyconfig
GUEST_INIT="$HERE/init"            # the guest's /init
KTAR=/usr/src/linux-source-6.1.tar.xz
OPENSBI_DIR=/usr/lib/riscv64-linux-gnu/opensbi/generic
export ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu-
export LC_ALL=C TZ=UTC

# Packages the recipe needs, by the step that uses them.
PACKAGES=(
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross   # cross compiler and libc for the static busybox
  linux-source-6.1                                # kernel source tarball
  make gcc libc6-dev bc flex bison libssl-dev libelf-dev xz-utils   # kernel build host tools
  dpkg-dev                                        # apt-get source (dpkg-source)
  cpio e2fsprogs                                  # initramfs (gen_initramfs) and rootfs.ext4
  opensbi                                         # firmware for -bios
)

# ---------------------------------------------------------------------------------------------
# Output helpers: numbered steps with elapsed time, and a progress view of long compiles.
# ---------------------------------------------------------------------------------------------
STEP_COUNT=9
STEP=0
STEP_NAME=
STEP_START=$SECONDS
CURRENT_LOG=

fmt_secs() {  # 215 -> 3m35s
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}
say() { printf '    %s\n' "$*"; }
step() {
  finish_step
  STEP=$((STEP + 1)); STEP_NAME=$1; STEP_START=$SECONDS; CURRENT_LOG=
  printf '\n[%d/%d] %s   (elapsed %s)\n' "$STEP" "$STEP_COUNT" "$STEP_NAME" "$(fmt_secs "$SECONDS")"
}
finish_step() {
  ((STEP > 0)) && say "done in $(fmt_secs $((SECONDS - STEP_START)))"
  return 0
}
fail() {  # fail MESSAGE [HINT...]: one clear error, then how to fix it
  printf '\nguest build: error: %s\n' "$1" >&2
  shift
  local hint
  for hint in "$@"; do printf '  %s\n' "$hint" >&2; done
  exit 1
}
on_error() {
  local status=$?
  printf '\nguest build: FAILED in step %d/%d (%s), line %d, exit status %d\n' \
    "$STEP" "$STEP_COUNT" "$STEP_NAME" "$1" "$status" >&2
  if [ -n "$CURRENT_LOG" ] && [ -f "$CURRENT_LOG" ]; then
    printf '  last lines of %s:\n' "$CURRENT_LOG" >&2
    tail -n 25 "$CURRENT_LOG" | sed 's/^/  | /' >&2
  fi
}
trap 'on_error $LINENO' ERR

# Reads a build's output and shows how far it got: every line with VERBOSE=1; otherwise one
# status line rewritten in place on a terminal, or a line every 15 s in a log. The full output
# goes to LOG. Kbuild (kernel and busybox) prints one "  CC      path" line per build step.
show_progress() {  # show_progress LABEL LOG EXPECTED_STEPS
  local label=$1 log=$2 expected=$3 line steps=0 warnings=0 last=$SECONDS latest= on_tty=0 total=
  [ -t 1 ] && on_tty=1
  exec 3>"$log"
  while IFS= read -r line; do
    printf '%s\n' "$line" >&3
    case $line in *warning:*) warnings=$((warnings + 1)) ;; esac
    case $line in '  '[A-Z]*) steps=$((steps + 1)); latest=$line ;; esac
    if [ "$VERBOSE" = 1 ]; then
      printf '    %s | %s\n' "$label" "$line"
    elif ((SECONDS != last)) && { ((on_tty)) || ((SECONDS - last >= 15)); }; then
      last=$SECONDS
      total=; ((expected > 0)) && total="/~$expected"
      latest="$(printf '%s' "$latest" | tr -s ' ')"; latest="${latest# }"
      if ((on_tty)); then
        printf '\r\033[K    %s: %d%s steps, %s, %s' "$label" "$steps" "$total" \
          "$(fmt_secs $((SECONDS - STEP_START)))" "${latest:0:48}"
      else
        printf '    %s: %d%s steps after %s, now: %s\n' "$label" "$steps" "$total" \
          "$(fmt_secs $((SECONDS - STEP_START)))" "$latest"
      fi
    fi
  done
  exec 3>&-
  ((on_tty)) && [ "$VERBOSE" != 1 ] && printf '\r\033[K'
  if ((steps > 0)); then
    say "$label: $steps build steps, $warnings compiler warnings (full output: $log)"
  fi
}
run_build() {  # run_build LABEL LOG EXPECTED_STEPS COMMAND...
  local label=$1 log=$2 expected=$3
  shift 3
  CURRENT_LOG=$log
  "$@" 2>&1 < /dev/null | show_progress "$label" "$log" "$expected"
}
run_quiet() {  # run_quiet LOG COMMAND...: output only to LOG (shown on failure)
  local log=$1
  shift
  CURRENT_LOG=$log
  "$@" > "$log" 2>&1 < /dev/null
}

# ---------------------------------------------------------------------------------------------
# Preflight: Debian, inputs, output folder, work folder.
# ---------------------------------------------------------------------------------------------
command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
  fail "this recipe needs Debian 12 (bookworm) with apt: it builds the guest from Debian packages." \
       "Elsewhere, use a prebuilt guest: npm start looks in \$WKVM_GUEST_DIR and ../shared/guest/."
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || fail "JOBS=$JOBS is not a positive number of parallel compile jobs"
for input in "$FRAGMENT" "$GUEST_INIT"; do
  [ -f "$input" ] || fail "missing $input (it belongs to the recipe; is the checkout complete?)"
done
mkdir -p "$OUT_ARG" 2>/dev/null || fail "cannot create the output folder $OUT_ARG"
OUT="$(cd "$OUT_ARG" && pwd)"
mkdir -p "$WORK" 2>/dev/null && [ -w "$WORK" ] ||
  fail "cannot write to the work folder $WORK" \
       "Set WKVM_GUEST_WORK to a writable folder with about 2 GB free (or, if an earlier build" \
       "ran as root and created it, run this one as root too: sudo npm run guest:build)."
IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

package_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Everything the outputs depend on; when it and the outputs are unchanged the build is skipped.
inputs_fingerprint() {
  {
    sha256sum "$HERE/build.sh" "$FRAGMENT" "$GUEST_INIT" | cut -d' ' -f1
    for p in linux-source-6.1 gcc-riscv64-linux-gnu libc6-dev-riscv64-cross opensbi e2fsprogs; do
      echo "$p=$(package_version "$p")"
    done
    echo "rootfs_mib=$ROOTFS_MIB"
  } | sha256sum | cut -d' ' -f1
}
if [ "$FORCE" != 1 ] && [ -f "$OUT/.build-inputs" ] && [ -f "$OUT/SHA256SUMS" ] &&
   [ "$(cat "$OUT/.build-inputs")" = "$(inputs_fingerprint)" ] &&
   (cd "$OUT" && sha256sum --quiet --status -c SHA256SUMS); then
  echo "guest build: $OUT is up to date (same recipe and package versions, checksums match)."
  echo "             FORCE=1 rebuilds it anyway; nothing to do."
  exit 0
fi

echo "guest build: building wkvm's default Linux guest into $OUT"
echo "             work folder $WORK, make -j$JOBS$([ "$VERBOSE" = 1 ] || echo ' (VERBOSE=1 shows the compiler output)')"

# ---------------------------------------------------------------------------------------------
# 1. Debian packages: install whatever is missing (root only).
# ---------------------------------------------------------------------------------------------
step "Debian packages"
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# busybox is built from its Debian source package, which apt only finds with a deb-src entry.
busybox_fetched=0
ls "$WORK"/busybox-src/busybox-*/Makefile >/dev/null 2>&1 && busybox_fetched=1
has_deb_src() {
  grep -rqsE '^(Types:.*deb-src|deb-src[[:space:]])' /etc/apt/sources.list /etc/apt/sources.list.d/
}
need_update=0
if [ "$busybox_fetched" = 0 ] && ! has_deb_src; then
  ((IS_ROOT)) || fail "apt has no deb-src entry, which 'apt-get source busybox' needs." \
    "Run the build as root once (sudo npm run guest:build); it adds one for your Debian mirror."
  mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -n1 | awk '{print $2}')"
  [ -n "$mirror" ] || mirror="$(grep -hsE '^deb[[:space:]]' /etc/apt/sources.list | grep -v security | head -n1 | awk '{print $2}')"
  [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
  say "adding a deb-src entry for $mirror (bookworm) in /etc/apt/sources.list.d/wkvm-guest-src.sources"
  cat > /etc/apt/sources.list.d/wkvm-guest-src.sources <<EOF
Types: deb-src
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  need_update=1
fi
if ((${#missing[@]} > 0)); then
  ((IS_ROOT)) || fail "missing Debian packages: ${missing[*]}" \
    "Run the build as root (sudo npm run guest:build), or install them first:" \
    "sudo apt-get install -y --no-install-recommends ${missing[*]}"
  need_update=1
fi
if ((need_update)); then
  say "apt-get update"
  run_quiet "$WORK/apt-update.log" apt-get update -q
  if ((${#missing[@]} > 0)); then
    apt-cache show linux-source-6.1 >/dev/null 2>&1 ||
      fail "apt does not know linux-source-6.1: this recipe needs Debian 12 (bookworm) package sources."
    say "installing ${#missing[@]} packages: ${missing[*]}"
    say "(the download is about 200 MB; this takes a minute or two)"
    VERBOSE=1 run_build apt "$WORK/apt-install.log" 0 \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
else
  say "all ${#PACKAGES[@]} packages are installed"
fi
[ -f "$KTAR" ] || fail "$KTAR is missing although linux-source-6.1 is installed" \
  "Reinstall it: sudo apt-get install --reinstall linux-source-6.1"

# A fixed timestamp (the linux-source tarball's mtime) and build identity make the outputs
# reproducible.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(stat -c %Y "$KTAR")}"
KBUILD_BUILD_TIMESTAMP="$(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %e %H:%M:%S UTC %Y')"
export KBUILD_BUILD_TIMESTAMP KBUILD_BUILD_USER=rvguest KBUILD_BUILD_HOST=debian-bookworm KBUILD_BUILD_VERSION=1

# ---------------------------------------------------------------------------------------------
# 2. Kernel source: unpack Debian's linux-source-6.1 tarball (once per package version).
# ---------------------------------------------------------------------------------------------
step "Linux source ($KTAR)"
KSRC="$WORK/linux-source-6.1"
KOUT="$WORK/kbuild"
ktar_stamp="$(stat -c %Y:%s "$KTAR")"
if [ -f "$KSRC/.unpacked" ] && [ "$(cat "$KSRC/.unpacked")" = "$ktar_stamp" ]; then
  say "already unpacked in $KSRC"
else
  avail_kib="$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')"
  ((avail_kib > 2 * 1024 * 1024)) ||
    fail "only $((avail_kib / 1024)) MiB free in $WORK; the build needs about 2 GB." \
         "Free some space or set WKVM_GUEST_WORK to another folder."
  say "unpacking into $WORK (about 15 s)"
  rm -rf "$KSRC" "$KOUT" "$WORK/kconfig"
  tar -C "$WORK" -xJf "$KTAR"
  echo "$ktar_stamp" > "$KSRC/.unpacked"
fi
KVER="$(make -s -C "$KSRC" kernelversion)"
say "Linux $KVER (Debian linux-source-6.1 $(package_version linux-source-6.1))"

# ---------------------------------------------------------------------------------------------
# 3. Kernel config: tinyconfig + kernel.fragment, every requested option checked.
# ---------------------------------------------------------------------------------------------
step "kernel config (tinyconfig + scripts/guest/kernel.fragment)"
apply_fragment() {  # apply_fragment CONFIG_FILE
  local line sym val
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"; line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] && continue
    sym="${line%%=*}"; val="${line#*=}"
    case "$val" in
      y) "$KSRC/scripts/config" --file "$1" --enable "$sym" ;;
      n) "$KSRC/scripts/config" --file "$1" --disable "$sym" ;;
      \"*) val="${val#\"}"; "$KSRC/scripts/config" --file "$1" --set-str "$sym" "${val%\"}" ;;
      *) "$KSRC/scripts/config" --file "$1" --set-val "$sym" "$val" ;;
    esac
  done < "$FRAGMENT"
}
check_fragment() {  # check_fragment CONFIG_FILE: fails when a requested option did not stick
  local line sym val bad=0
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"; line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] && continue
    sym="${line%%=*}"; val="${line#*=}"
    if [ "$val" = n ]; then
      grep -q "^CONFIG_$sym=" "$1" && { say "config: $sym is still set (its dependencies force it)"; bad=1; }
    else
      grep -qxF "CONFIG_$sym=$val" "$1" || { say "config: $line was not applied (a dependency is missing)"; bad=1; }
    fi
  done < "$FRAGMENT"
  return "$bad"
}
config_key="$(cat "$KSRC/.unpacked" "$FRAGMENT" | sha256sum | cut -d' ' -f1)"
KCFG="$WORK/kconfig"
if [ -f "$KCFG/.config" ] && [ "$(cat "$KCFG/key" 2>/dev/null)" = "$config_key" ]; then
  say "unchanged since the last build"
else
  rm -rf "$KCFG"; mkdir -p "$KCFG"
  run_quiet "$WORK/kconfig.log" make -s -C "$KSRC" O="$KCFG" tinyconfig
  for pass in 1 2; do  # a second pass keeps options whose dependencies appeared in the first
    say "applying $(grep -cE '^[A-Z0-9_]+=' "$FRAGMENT") options, pass $pass"
    apply_fragment "$KCFG/.config"
    run_quiet "$WORK/kconfig.log" make -s -C "$KSRC" O="$KCFG" olddefconfig
  done
  check_fragment "$KCFG/.config" || fail "the kernel config does not match kernel.fragment (see above)"
  echo "$config_key" > "$KCFG/key"
  say "every option of kernel.fragment is in the config"
fi
mkdir -p "$KOUT"
# Copy only when changed, so an unchanged config does not trigger a rebuild.
cmp -s "$KCFG/.config" "$KOUT/.config" || cp "$KCFG/.config" "$KOUT/.config"

# ---------------------------------------------------------------------------------------------
# 4. Kernel Image.
# ---------------------------------------------------------------------------------------------
step "Linux $KVER kernel Image (make -j$JOBS; about 3-4 min on 2 cores the first time)"
image_before="$(stat -c %Y "$KOUT/arch/riscv/boot/Image" 2>/dev/null || echo none)"
run_build kernel "$WORK/kernel-build.log" 1360 make -C "$KSRC" O="$KOUT" -j"$JOBS" Image
if [ "$image_before" != "$(stat -c %Y "$KOUT/arch/riscv/boot/Image")" ]; then
  echo $((SECONDS - STEP_START)) > "$WORK/kernel-build-seconds"
fi
say "Image: $(stat -c %s "$KOUT/arch/riscv/boot/Image") bytes"

# ---------------------------------------------------------------------------------------------
# 5. busybox source: Debian's source package (apt-get source, no root needed).
# ---------------------------------------------------------------------------------------------
step "busybox source (apt-get source busybox)"
BBSRCDIR="$WORK/busybox-src"
if ((busybox_fetched)); then
  say "already fetched: $(cd "$BBSRCDIR" && ls ./*.dsc | sed 's|^\./||')"
else
  rm -rf "$BBSRCDIR"; mkdir -p "$BBSRCDIR"
  fetch_busybox() { (cd "$BBSRCDIR" && apt-get source -q busybox); }
  if ! run_quiet "$WORK/busybox-source.log" fetch_busybox; then
    ((IS_ROOT)) || fail "apt-get source busybox failed (see $WORK/busybox-source.log)" \
      "apt may need 'sudo apt-get update' after a deb-src entry was added."
    say "apt-get source failed; running apt-get update and trying again"
    run_quiet "$WORK/apt-update.log" apt-get update -q
    rm -rf "$BBSRCDIR"; mkdir -p "$BBSRCDIR"
    run_quiet "$WORK/busybox-source.log" fetch_busybox
  fi
  say "fetched $(cd "$BBSRCDIR" && ls ./*.dsc | sed 's|^\./||')"
fi
BBSRC="$(ls -d "$BBSRCDIR"/busybox-*/ | head -n1)"; BBSRC="${BBSRC%/}"

# ---------------------------------------------------------------------------------------------
# 6. busybox: defconfig + static, cross-compiled.
# ---------------------------------------------------------------------------------------------
step "busybox $(basename "$BBSRC" | sed 's/^busybox-//') static build (make -j$JOBS; about 1 min the first time)"
BBOUT="$WORK/busybox-build"
BBCFG="$WORK/busybox.config"
mkdir -p "$BBOUT"
rm -rf "$WORK/busybox-cfg"; mkdir -p "$WORK/busybox-cfg"
run_quiet "$WORK/busybox-config.log" make -s -C "$BBSRC" O="$WORK/busybox-cfg" defconfig
# Static, so the guest needs no libc; no PIE; no tc (it needs kernel CBQ headers the guest lacks).
sed -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' \
    -e 's/^CONFIG_CROSS_COMPILER_PREFIX=.*/CONFIG_CROSS_COMPILER_PREFIX="riscv64-linux-gnu-"/' \
    -e 's/^CONFIG_PIE=y/# CONFIG_PIE is not set/' \
    -e 's/^CONFIG_TC=y/# CONFIG_TC is not set/' "$WORK/busybox-cfg/.config" > "$BBCFG"
if ! cmp -s "$BBCFG" "$BBOUT/.config.requested"; then
  say "configuring: defconfig + CONFIG_STATIC, no tc"
  cp "$BBCFG" "$BBOUT/.config"
  run_quiet "$WORK/busybox-config.log" bash -c 'yes "" | make -s -C "$1" O="$2" oldconfig' _ "$BBSRC" "$BBOUT"
  cp "$BBCFG" "$BBOUT/.config.requested"
fi
busybox_before="$(stat -c %Y "$BBOUT/busybox" 2>/dev/null || echo none)"
run_build busybox "$WORK/busybox-build.log" 640 make -C "$BBSRC" O="$BBOUT" -j"$JOBS" busybox
if [ "$busybox_before" != "$(stat -c %Y "$BBOUT/busybox")" ]; then
  echo $((SECONDS - STEP_START)) > "$WORK/busybox-build-seconds"
fi
if riscv64-linux-gnu-readelf -l "$BBOUT/busybox" | grep -q INTERP; then
  fail "busybox was linked dynamically although CONFIG_STATIC is set (see $WORK/busybox-build.log)"
fi
say "busybox: $(stat -c %s "$BBOUT/busybox") bytes, static"

# ---------------------------------------------------------------------------------------------
# 7. Root tree and initramfs.cpio.gz. The kernel's gen_initramfs writes the /dev nodes, so no
#    mknod (and no root) is needed; entries are sorted, owned by root, mtimes fixed, gzip -n.
# ---------------------------------------------------------------------------------------------
step "root file tree and initramfs.cpio.gz"
ROOT="$WORK/rootfs"
rm -rf "$ROOT"; mkdir -p "$ROOT"
run_quiet "$WORK/busybox-install.log" make -s -C "$BBSRC" O="$BBOUT" CONFIG_PREFIX="$ROOT" install
rm -f "$ROOT/linuxrc"
mkdir -p "$ROOT"/{dev,proc,sys,tmp,mnt,root,etc,run,var/log}
chmod 1777 "$ROOT/tmp"
install -m 0755 "$GUEST_INIT" "$ROOT/init"
echo 'root:x:0:0:root:/root:/bin/sh' > "$ROOT/etc/passwd"
echo 'root:x:0:' > "$ROOT/etc/group"
echo rvguest > "$ROOT/etc/hostname"
cat > "$ROOT/etc/profile" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TERM=${TERM:-vt100}
PS1='\u@\h:\w\$ '
EOF
printf 'Hello from the rvguest ext4 disk image!\n' > "$ROOT/hello.txt"
((IS_ROOT)) && chown -R 0:0 "$ROOT"
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
say "$(find "$ROOT" | wc -l) entries ($(find "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr" -type l | wc -l) busybox applet links)"

cat > "$WORK/initramfs.extra" <<'EOF'
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
EOF
rm -f "$WORK/initramfs.cpio"
# gen_init_cpio is a host tool of the kernel tree (built because BLK_DEV_INITRD=y).
run_quiet "$WORK/initramfs.log" make -s -C "$KSRC" O="$KOUT" usr/gen_init_cpio
run_quiet "$WORK/initramfs.log" bash -c 'cd "$1" && sh "$2/usr/gen_initramfs.sh" -o "$3" -u squash -g squash "$4" "$5"' \
  _ "$KOUT" "$KSRC" "$WORK/initramfs.cpio" "$ROOT" "$WORK/initramfs.extra"
gzip -n -9 -c "$WORK/initramfs.cpio" > "$OUT/initramfs.cpio.gz.tmp"
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
say "initramfs.cpio.gz: $(stat -c %s "$OUT/initramfs.cpio.gz") bytes"

# ---------------------------------------------------------------------------------------------
# 8. rootfs.ext4: the same tree via mke2fs -d (no loop mount), fixed UUID, hash seed and times.
# ---------------------------------------------------------------------------------------------
step "rootfs.ext4 (${ROOTFS_MIB} MiB ext4, mke2fs -d)"
rm -f "$OUT/rootfs.ext4.tmp"
run_quiet "$WORK/ext4.log" env E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" mke2fs -q -F -t ext4 -L rvguest \
  -U 5f8c6a2e-1d3b-4c6e-9a7f-0b1c2d3e4f50 \
  -E hash_seed=0c0ffee0-1234-4abc-8def-0123456789ab,root_owner=0:0 \
  -b 4096 -N 1024 -d "$ROOT" "$OUT/rootfs.ext4.tmp" "${ROOTFS_MIB}M"
# mke2fs copies each file's owner, ctime and atime, which a build cannot pin (the owner is the
# builder's when not root): set them in the image itself.
(cd "$ROOT" && find . | sed 's|^\.||; s|^$|/|' | sort | while IFS= read -r p; do
  printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$p" "$p"
  printf 'sif "%s" ctime @%s\nsif "%s" atime @%s\n' "$p" "$SOURCE_DATE_EPOCH" "$p" "$SOURCE_DATE_EPOCH"
done) > "$WORK/ext4-fixups.debugfs"
run_quiet "$WORK/ext4.log" env E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" \
  debugfs -w -f "$WORK/ext4-fixups.debugfs" "$OUT/rootfs.ext4.tmp"
run_quiet "$WORK/ext4.log" e2fsck -fn "$OUT/rootfs.ext4.tmp"
mv "$OUT/rootfs.ext4.tmp" "$OUT/rootfs.ext4"
say "rootfs.ext4: checked with e2fsck"

# ---------------------------------------------------------------------------------------------
# 9. Kernel, firmware, build record, checksums.
# ---------------------------------------------------------------------------------------------
step "Image, OpenSBI firmware, build-info.txt, SHA256SUMS"
install -m 0644 "$KOUT/arch/riscv/boot/Image" "$OUT/Image"
install -m 0644 "$KOUT/.config" "$OUT/kernel.config"
mkdir -p "$OUT/opensbi"
for f in fw_jump.bin fw_jump.elf fw_dynamic.bin fw_dynamic.elf; do
  [ -f "$OPENSBI_DIR/$f" ] || fail "$OPENSBI_DIR/$f is missing" "Reinstall the firmware: sudo apt-get install --reinstall opensbi"
  install -m 0644 "$OPENSBI_DIR/$f" "$OUT/opensbi/$f"
done
say "OpenSBI $(package_version opensbi) generic firmware -> opensbi/"
{
  echo "kernel_version=$KVER"
  echo "linux_source_pkg=$(package_version linux-source-6.1)"
  echo "busybox_src=$(basename "$BBSRC") ($(cd "$BBSRCDIR" && ls ./*.dsc | sed 's|^\./||'))"
  echo "opensbi_pkg=$(package_version opensbi)"
  echo "gcc_cross=$(riscv64-linux-gnu-gcc -dumpfullversion) ($(package_version gcc-12-riscv64-linux-gnu))"
  echo "source_date_epoch=$SOURCE_DATE_EPOCH"
  echo "kernel_build_seconds=$(cat "$WORK/kernel-build-seconds" 2>/dev/null || echo unknown)  # last full compile"
  echo "busybox_build_seconds=$(cat "$WORK/busybox-build-seconds" 2>/dev/null || echo unknown)  # last full compile"
  echo "this_run_seconds=$SECONDS"
  echo "jobs=$JOBS cpus=$(nproc)"
} > "$OUT/build-info.txt"
(cd "$OUT" && sha256sum Image initramfs.cpio.gz rootfs.ext4 opensbi/fw_jump.bin opensbi/fw_jump.elf \
  opensbi/fw_dynamic.bin opensbi/fw_dynamic.elf kernel.config > SHA256SUMS)
inputs_fingerprint > "$OUT/.build-inputs"
# Under sudo, hand the outputs to the user who asked for them.
if ((IS_ROOT)) && [ -n "${SUDO_UID:-}" ] && [ -n "${SUDO_GID:-}" ]; then
  chown -R "$SUDO_UID:$SUDO_GID" "$OUT"
fi
finish_step
STEP=0
printf '\nguest build: done in %s. %s holds:\n' "$(fmt_secs "$SECONDS")" "$OUT"
(cd "$OUT" && ls -l Image initramfs.cpio.gz rootfs.ext4 opensbi/* | sed 's/^/    /')
if [ "$OUT" = "$REPO/guest-cache" ]; then
  echo "Boot it with: npm start"
else
  echo "Boot it with: WKVM_GUEST_DIR=$OUT npm start"
fi
