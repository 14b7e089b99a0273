#!/bin/bash
# Builds a distribution-style Linux kernel for checking wkvm beyond the tinyconfig guest: Debian
# bookworm's linux-source-6.1 with `make ARCH=riscv defconfig` (every driver and subsystem a riscv
# distribution kernel builds in: PCI, KVM, DRM, USB, NFS, btrfs, ...), modules and debug info off so
# one Image holds it all. Boot it with the shared initramfs (ARCHITECTURE.md, "Tests and evidence"):
#
#   scripts/guest/build-defconfig.sh [OUTDIR]     (default /var/tmp/wkvm-defconfig; ~12 min on 2 cores)
#   node bin/wkvm.js -m 512M -kernel OUTDIR/Image -initrd ../shared/guest/initramfs.cpio.gz \
#     -append "console=ttyS0 guest.mode=poweroff" -nographic
#
# With MODULES=1 the defconfig's modules stay modules (virtio-blk and ext4 made modules too), and they are
# installed under OUTDIR/modules/lib/modules/VERSION, for an initramfs to load them from (depmod and
# modprobe are in the shared initramfs's busybox; append a cpio of that tree to it, as Linux takes
# concatenated archives).
#
# Needs root for apt-get when a package is missing. Env: JOBS (default: the number of CPUs), MODULES.
set -Eeuo pipefail

OUT="${1:-/var/tmp/wkvm-defconfig}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
PACKAGES=(linux-source-6.1 gcc-riscv64-linux-gnu make flex bison bc libssl-dev libelf-dev xz-utils)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$OUT"
SOURCE="$OUT/linux-source-6.1"
[ -d "$SOURCE" ] || tar -xf /usr/src/linux-source-6.1.tar.xz -C "$OUT"
export ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu-
make -C "$SOURCE" O="$OUT/build" defconfig > /dev/null
"$SOURCE/scripts/config" --file "$OUT/build/.config" --disable DEBUG_INFO \
  --disable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT --enable DEBUG_INFO_NONE
if [ "${MODULES:-0}" = 1 ]; then
  "$SOURCE/scripts/config" --file "$OUT/build/.config" --module VIRTIO_BLK --module EXT4_FS --module HW_RANDOM_VIRTIO
else
  "$SOURCE/scripts/config" --file "$OUT/build/.config" --disable MODULES
fi
make -C "$SOURCE" O="$OUT/build" olddefconfig > /dev/null
if [ "${MODULES:-0}" = 1 ]; then
  make -C "$SOURCE" O="$OUT/build" -j"$JOBS" Image modules
  make -C "$SOURCE" O="$OUT/build" INSTALL_MOD_PATH="$OUT/modules" INSTALL_MOD_STRIP=1 DEPMOD=true modules_install > /dev/null
else
  make -C "$SOURCE" O="$OUT/build" -j"$JOBS" Image
fi
cp "$OUT/build/arch/riscv/boot/Image" "$OUT/build/System.map" "$OUT/"
echo "build-defconfig: $OUT/Image"
