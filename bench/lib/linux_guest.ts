// The shared Linux guest (Image, initramfs, OpenSBI) and the command lines that boot it under the wkvm CLI
// and under QEMU, with the same machine, memory, kernel command line and disk for both. Used by the boot,
// disk and smp suites.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { vmmNodeOptions } from '../../host/cli/node_flags.js';
import { BenchSetupError } from './errors.js';

/** The files of the guest folder (see ../shared/guest/README.md). */
export interface GuestFiles {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly fwJump: string;
}

/**
 * The guest folder: $WKVM_GUEST_DIR when set (as `npm start` reads it), else `../shared/guest` beside the
 * checkout. Throws BenchSetupError naming the missing file.
 */
export function guestFiles(root: string, env: NodeJS.ProcessEnv = process.env): GuestFiles {
  const fromEnv = env.WKVM_GUEST_DIR;
  const dir = fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : resolve(root, '..', 'shared', 'guest');
  const files: GuestFiles = {
    dir,
    kernel: join(dir, 'Image'),
    initrd: join(dir, 'initramfs.cpio.gz'),
    fwJump: join(dir, 'opensbi', 'fw_jump.bin'),
  };
  for (const path of [files.kernel, files.initrd, files.fwJump]) {
    if (!existsSync(path)) {
      throw new BenchSetupError(path, `the Linux guest is missing (looked in ${dir}${fromEnv ? ', from WKVM_GUEST_DIR' : ''}; set WKVM_GUEST_DIR to a folder with Image, initramfs.cpio.gz and opensbi/fw_jump.bin)`);
    }
  }
  return files;
}

/** `guest.mode=` of the guest's /init. */
export type GuestMode = 'poweroff' | 'bench' | 'disk' | 'shell';

/** How the kernel is entered: wkvm's own SBI (`-bios none`, KVM style) or OpenSBI fw_jump in M-mode. */
export type BootPath = 'none' | 'fw_jump';

export interface GuestDrive {
  readonly file: string;
  readonly format: 'raw' | 'qcow2';
}

export interface LinuxBoot {
  readonly mode: GuestMode;
  readonly smp: number;
  readonly bootPath: BootPath;
  readonly drive?: GuestDrive;
  /** More disks after `drive` (the guest sees them as vdb, vdc, … in this order on both VMMs). */
  readonly extraDrives?: readonly GuestDrive[];
}

export type Vmm = 'wkvm' | 'qemu';

/** One way of booting the guest, as a child process. */
export interface LinuxCommand {
  /** For tables: "wkvm -bios none", "QEMU fw_jump". */
  readonly label: string;
  readonly vmm: Vmm;
  readonly bootPath: BootPath;
  readonly command: string;
  readonly args: readonly string[];
}

export const GUEST_MEMORY = '256M';

function commonArgs(files: GuestFiles, boot: LinuxBoot): string[] {
  const args = [
    '-M', 'virt', '-m', GUEST_MEMORY, '-smp', String(boot.smp), '-nographic', '-no-reboot',
    '-bios', boot.bootPath === 'none' ? 'none' : files.fwJump,
    '-kernel', files.kernel, '-initrd', files.initrd,
    '-append', `console=ttyS0 guest.mode=${boot.mode}`,
  ];
  if (boot.drive !== undefined) {
    args.push('-drive', `file=${boot.drive.file},format=${boot.drive.format},if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0');
  }
  (boot.extraDrives ?? []).forEach((drive, i) => {
    args.push('-drive', `file=${drive.file},format=${drive.format},if=none,id=d${i + 1}`, '-device', `virtio-blk-device,drive=d${i + 1}`);
  });
  return args;
}

/**
 * `node bin/wkvm.js run ...`, spawned as node itself so the child's pid is the VMM's, with the Node options
 * `npm start` gives it (host/cli/node_flags.ts).
 */
export function wkvmLinuxCommand(cli: string, files: GuestFiles, boot: LinuxBoot): LinuxCommand {
  return {
    label: `wkvm -bios ${boot.bootPath}`,
    vmm: 'wkvm',
    bootPath: boot.bootPath,
    command: process.execPath,
    args: [...vmmNodeOptions(), cli, 'run', ...commonArgs(files, boot)],
  };
}

/** QEMU cannot enter an S-mode kernel without firmware, so it always boots through fw_jump here. */
export function qemuLinuxCommand(qemuPath: string, files: GuestFiles, boot: Omit<LinuxBoot, 'bootPath'>): LinuxCommand {
  const withFirmware: LinuxBoot = { ...boot, bootPath: 'fw_jump' };
  return { label: 'QEMU fw_jump', vmm: 'qemu', bootPath: 'fw_jump', command: qemuPath, args: commonArgs(files, withFirmware) };
}

/** Why QEMU is left out of a run, or null when it takes part. */
export function qemuSkipReason(qemuWanted: boolean, qemuPath: string | null): string | null {
  if (!qemuWanted) return 'skipped (--no-qemu)';
  if (qemuPath === null) return 'qemu-system-riscv64 is not on PATH';
  return null;
}
