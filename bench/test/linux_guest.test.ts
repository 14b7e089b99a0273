// The command lines of the Linux-guest suites: the same machine for wkvm and QEMU, and the guest folder.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vmmNodeOptions } from '../../host/cli/node_flags.js';
import { BenchSetupError } from '../lib/errors.js';
import { guestFiles, qemuLinuxCommand, qemuSkipReason, wkvmLinuxCommand, type GuestFiles } from '../lib/linux_guest.js';

const FILES: GuestFiles = { dir: '/g', kernel: '/g/Image', initrd: '/g/initramfs.cpio.gz', fwJump: '/g/opensbi/fw_jump.bin' };

/** The Node options `npm start` runs the VMM with come before the CLI's path. */
const NODE_OPTIONS = vmmNodeOptions();
const LEAD = NODE_OPTIONS.length;

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index < 0 ? undefined : args[index + 1];
}

describe('guest command lines', () => {
  it('boots wkvm through its CLI with either boot path', () => {
    const none = wkvmLinuxCommand('/repo/bin/wkvm.js', FILES, { mode: 'poweroff', smp: 1, bootPath: 'none' });
    expect(none.command).toBe(process.execPath);
    expect(none.args.slice(0, LEAD + 2)).toEqual([...NODE_OPTIONS, '/repo/bin/wkvm.js', 'run']);
    expect(option(none.args, '-bios')).toBe('none');
    expect(option(none.args, '-append')).toBe('console=ttyS0 guest.mode=poweroff');
    expect(none.label).toBe('wkvm -bios none');
    const firmware = wkvmLinuxCommand('/repo/bin/wkvm.js', FILES, { mode: 'bench', smp: 2, bootPath: 'fw_jump' });
    expect(option(firmware.args, '-bios')).toBe('/g/opensbi/fw_jump.bin');
    expect(option(firmware.args, '-smp')).toBe('2');
  });

  it('gives QEMU the same machine, always through fw_jump', () => {
    const boot = { mode: 'shell' as const, smp: 2, drive: { file: '/tmp/d.qcow2', format: 'qcow2' as const } };
    const wkvm = wkvmLinuxCommand('/repo/bin/wkvm.js', FILES, { ...boot, bootPath: 'fw_jump' });
    const qemu = qemuLinuxCommand('/usr/bin/qemu-system-riscv64', FILES, boot);
    expect(qemu.args).toEqual(wkvm.args.slice(LEAD + 2));
    expect(option(qemu.args, '-drive')).toBe('file=/tmp/d.qcow2,format=qcow2,if=none,id=d0');
    expect(option(qemu.args, '-device')).toBe('virtio-blk-device,drive=d0');
    expect(qemu.label).toBe('QEMU fw_jump');
  });

  it('adds extra disks after the first, as vdb, vdc, … on both VMMs', () => {
    const boot = { mode: 'shell' as const, smp: 1, drive: { file: '/tmp/d.raw', format: 'raw' as const },
      extraDrives: [{ file: '/tmp/tools.ext4', format: 'raw' as const }] };
    const qemu = qemuLinuxCommand('/usr/bin/qemu-system-riscv64', FILES, boot);
    const drives = qemu.args.flatMap((arg, i) => (arg === '-drive' ? [qemu.args[i + 1]] : []));
    const devices = qemu.args.flatMap((arg, i) => (arg === '-device' ? [qemu.args[i + 1]] : []));
    expect(drives).toEqual(['file=/tmp/d.raw,format=raw,if=none,id=d0', 'file=/tmp/tools.ext4,format=raw,if=none,id=d1']);
    expect(devices).toEqual(['virtio-blk-device,drive=d0', 'virtio-blk-device,drive=d1']);
    expect(wkvmLinuxCommand('/repo/bin/wkvm.js', FILES, { ...boot, bootPath: 'fw_jump' }).args.slice(LEAD + 2)).toEqual(qemu.args);
  });

  it('says why QEMU is left out', () => {
    expect(qemuSkipReason(false, '/usr/bin/qemu-system-riscv64')).toMatch(/--no-qemu/);
    expect(qemuSkipReason(true, null)).toMatch(/not on PATH/);
    expect(qemuSkipReason(true, '/usr/bin/qemu-system-riscv64')).toBeNull();
  });
});

describe('guestFiles', () => {
  it('takes WKVM_GUEST_DIR when set and names the first missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wkvm-guest-'));
    try {
      writeFileSync(join(dir, 'Image'), '');
      writeFileSync(join(dir, 'initramfs.cpio.gz'), '');
      expect(() => guestFiles('/nonexistent/repo', { WKVM_GUEST_DIR: dir })).toThrow(BenchSetupError);
      expect(() => guestFiles('/nonexistent/repo', { WKVM_GUEST_DIR: dir })).toThrow(/opensbi\/fw_jump.bin: the Linux guest is missing .*from WKVM_GUEST_DIR/);
      mkdirSync(join(dir, 'opensbi'));
      writeFileSync(join(dir, 'opensbi', 'fw_jump.bin'), '');
      expect(guestFiles('/nonexistent/repo', { WKVM_GUEST_DIR: dir }).kernel).toBe(join(dir, 'Image'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('defaults to ../shared/guest beside the checkout', () => {
    expect(() => guestFiles('/nonexistent/repo', {})).toThrow(/\/nonexistent\/shared\/guest/);
  });
});
