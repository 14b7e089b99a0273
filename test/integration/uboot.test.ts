// Debian's U-Boot for QEMU's virt board (package u-boot-qemu) on wkvm: the same firmware chain users run
// on QEMU. U-Boot drives virtio-blk itself (polling its used ring, no interrupts) and loads Linux from an
// ext4 file system; these tests skip where the package or mke2fs is missing (CI installs both).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync, copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';

const UBOOT_SMODE = '/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin';
const UBOOT_MMODE = '/usr/lib/u-boot/qemu-riscv64/u-boot.bin';
/** mke2fs from PATH, else from /usr/sbin or /sbin (off a user's PATH). */
const mke2fs = spawnSync('sh', ['-c', 'command -v mke2fs']).stdout?.toString().trim() || ['/usr/sbin/mke2fs', '/sbin/mke2fs'].find((path) => existsSync(path));
const haveUboot = existsSync(UBOOT_SMODE) && existsSync(UBOOT_MMODE) && mke2fs !== undefined && existsSync(`${SHARED_GUEST}Image`);
/** U-Boot's prompt, and its autoboot countdown (any key stops it). */
const PROMPT = '=> ';
const COUNTDOWN = 'Hit any key to stop autoboot';

/**
 * U-Boot in S-mode under OpenSBI fw_jump with `args`, its autoboot stopped, `commands` typed at the prompt,
 * and poweroff once they are done (the marker's second sighting: the first is the echo of the line typed).
 */
function runUbootCommands(args: string[], commands: string) {
  const marker = 'COMMANDS-DONE';
  return runWkvm(['run', '-M', 'virt', '-m', '256M', '-bios', `${SHARED_GUEST}opensbi/fw_jump.bin`, '-kernel', UBOOT_SMODE, ...args, '-nographic'], {
    timeoutMs: 60_000,
    input: [
      { after: COUNTDOWN, send: ' ' },
      { after: PROMPT, send: `${commands}; echo ${marker}\r` },
      { after: marker, occurrence: 2, send: 'poweroff\r' },
    ],
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wkvm-uboot-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveUboot)('U-Boot (Debian u-boot-qemu)', () => {
  it('boots Linux from an ext4 virtio disk: OpenSBI fw_jump → U-Boot (S-mode) → booti', async () => {
    const tree = join(dir, 'boot');
    mkdirSync(tree);
    copyFileSync(`${SHARED_GUEST}Image`, join(tree, 'Image'));
    copyFileSync(`${SHARED_GUEST}initramfs.cpio.gz`, join(tree, 'initramfs.cpio.gz'));
    const image = join(dir, 'boot.img');
    execFileSync(mke2fs!, ['-q', '-F', '-t', 'ext4', '-d', tree, image, '64M']);
    const result = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-bios', `${SHARED_GUEST}opensbi/fw_jump.bin`,
      '-kernel', UBOOT_SMODE, '-drive', `file=${image},format=raw,if=virtio`, '-nographic'], {
      timeoutMs: 120_000,
      input: [
        { after: COUNTDOWN, send: ' ' },
        {
          after: PROMPT,
          send: 'ext4load virtio 0 ${kernel_addr_r} /Image; ext4load virtio 0 ${ramdisk_addr_r} /initramfs.cpio.gz; ' +
            'setenv bootargs console=ttyS0 guest.mode=poweroff; booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}\r',
        },
      ],
    });
    expect(result.stdout).toMatch(/U-Boot 20\d\d/);
    expect(result.stdout).toContain(`${statSync(`${SHARED_GUEST}Image`).size} bytes read`);
    expect(result.stdout).toContain(`${statSync(`${SHARED_GUEST}initramfs.cpio.gz`).size} bytes read`);
    expect(result.stdout).toContain('Starting kernel');
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  }, 150_000);

  it('gets a DHCP lease over virtio-net from U-Boot\'s own driver (-nic user)', async () => {
    const result = await runUbootCommands(['-nic', 'user,restrict=on'], 'setenv autoload no; dhcp');
    expect(result.stdout).toMatch(/Net:\s+eth0: virtio-net#0/);
    expect(result.stdout).toMatch(/DHCP client bound to address 10\.0\.2\.15/);
    expect(result.status, result.stderr).toBe(0);
  }, 90_000);

  it('loads the boot file DHCP names over TFTP (-netdev user,tftp=DIR,bootfile=FILE), as a network boot does', async () => {
    const tftpRoot = join(dir, 'tftp');
    mkdirSync(join(tftpRoot, 'pxe'), { recursive: true });
    const payload = new Uint8Array(300_000);
    for (let i = 0, x = 1; i < payload.length; i++) payload[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    writeFileSync(join(tftpRoot, 'pxe', 'payload.bin'), payload);
    const result = await runUbootCommands(['-netdev', `user,id=n0,restrict=on,tftp=${tftpRoot},bootfile=pxe/payload.bin`,
      '-device', 'virtio-net-device,netdev=n0'], 'dhcp ${loadaddr}; crc32 ${loadaddr} ${filesize}');
    expect(result.stdout).toMatch(/DHCP client bound to address 10\.0\.2\.15/);
    expect(result.stdout).toMatch(/Filename 'pxe\/payload\.bin'/);
    expect(result.stdout).toContain(`Bytes transferred = ${payload.length}`);
    expect(result.stdout).toMatch(new RegExp(`crc32 for [0-9a-f]+ \\.\\.\\. [0-9a-f]+ ==> ${(crc32(payload) >>> 0).toString(16).padStart(8, '0')}`));
    expect(result.status, result.stderr).toBe(0);
  }, 90_000);

  it('finds a virtio-blk-pci disk on the PCIe bus (pci enum, virtio scan) and reads it: the CRC U-Boot computes is the image\'s', async () => {
    // 64 KiB of varied bytes; U-Boot reads the first 16 sectors into RAM and checksums them.
    const bytes = new Uint8Array(64 * 1024).map((_, i) => (i * 131 + (i >> 9) * 17) & 0xff);
    const image = join(dir, 'pattern.img');
    writeFileSync(image, bytes);
    const expected = (crc32(bytes.subarray(0, 16 * 512)) >>> 0).toString(16).padStart(8, '0');
    const result = await runUbootCommands(['-drive', `if=none,id=hd0,file=${image},format=raw`, '-device', 'virtio-blk-pci,drive=hd0'],
      'pci enum; pci; virtio scan; virtio info; virtio read 0x84000000 0 0x10; crc32 0x84000000 0x2000');
    expect(result.stdout).toMatch(/00\.00\.00\s+0x1b36\s+0x0008\s+Bridge device/);
    expect(result.stdout).toMatch(/00\.01\.00\s+0x1af4\s+0x1042\s+Mass storage controller/);
    expect(result.stdout).toMatch(/Device 0: 1af4 VirtIO Block Device[\s\S]*Capacity: [\d.]+ MB = 0\.0 GB \(128 x 512\)/);
    expect(result.stdout).toContain('16 blocks read: OK');
    expect(result.stdout).toContain(`crc32 for 84000000 ... 84001fff ==> ${expected}`);
    expect(result.status, result.stderr).toBe(0);
  }, 90_000);

  it('gets a DHCP lease over virtio-net-pci from U-Boot\'s own driver (-netdev user -device virtio-net-pci)', async () => {
    // U-Boot looks for NICs before anything scans PCI: after `pci enum`, `virtio scan` binds the virtio-net it found.
    const result = await runUbootCommands(['-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0'],
      'setenv autoload no; pci enum; pci; virtio scan; dhcp');
    expect(result.stdout).toMatch(/00\.01\.00\s+0x1af4\s+0x1041\s+Network controller/);
    expect(result.stdout).toMatch(/DHCP client bound to address 10\.0\.2\.15/);
    expect(result.status, result.stderr).toBe(0);
  }, 90_000);

  it('runs U-Boot as the M-mode firmware (-bios) and reads a file from the guest ext4 image', async () => {
    const image = join(dir, 'rootfs.img');
    copyFileSync(`${SHARED_GUEST}rootfs.ext4`, image);
    const result = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-bios', UBOOT_MMODE,
      '-drive', `file=${image},format=raw,if=virtio`, '-nographic'], {
      input: [
        { after: COUNTDOWN, send: ' ' },
        { after: PROMPT, send: 'ext4load virtio 0 ${loadaddr} /hello.txt; md.b ${loadaddr} 0x28; poweroff\r' },
      ],
    });
    expect(result.stdout).toContain('40 bytes read');
    expect(result.stdout).toContain('Hello from the r');
    expect(result.status, result.stderr).toBe(0);
  });
});

