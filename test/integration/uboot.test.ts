// Debian's U-Boot for QEMU's virt board (package u-boot-qemu) on wkvm: the same firmware chain users run
// on QEMU. U-Boot drives virtio-blk itself (polling its used ring, no interrupts) and loads Linux from an
// ext4 file system; these tests skip where the package or mke2fs is missing (CI installs both).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync, copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';

const UBOOT_SMODE = '/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin';
const UBOOT_MMODE = '/usr/lib/u-boot/qemu-riscv64/u-boot.bin';
/** mke2fs from PATH, else from /usr/sbin or /sbin (off a user's PATH). */
const mke2fs = spawnSync('sh', ['-c', 'command -v mke2fs']).stdout?.toString().trim() || ['/usr/sbin/mke2fs', '/sbin/mke2fs'].find((path) => existsSync(path));
const haveUboot = existsSync(UBOOT_SMODE) && existsSync(UBOOT_MMODE) && mke2fs !== undefined && existsSync(`${SHARED_GUEST}Image`);
/** U-Boot's prompt, and its autoboot countdown (any key stops it). */
const PROMPT = '=> ';
const COUNTDOWN = 'Hit any key to stop autoboot';

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
    const result = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-bios', `${SHARED_GUEST}opensbi/fw_jump.bin`,
      '-kernel', UBOOT_SMODE, '-nic', 'user,restrict=on', '-nographic'], {
      timeoutMs: 60_000,
      input: [
        { after: COUNTDOWN, send: ' ' },
        { after: PROMPT, send: 'setenv autoload no; dhcp; echo DHCP-$filesize-DONE\r' },
        { after: 'DONE', occurrence: 2, send: 'poweroff\r' },
      ],
    });
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
    const result = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-bios', `${SHARED_GUEST}opensbi/fw_jump.bin`,
      '-kernel', UBOOT_SMODE, '-netdev', `user,id=n0,restrict=on,tftp=${tftpRoot},bootfile=pxe/payload.bin`,
      '-device', 'virtio-net-device,netdev=n0', '-nographic'], {
      timeoutMs: 60_000,
      input: [
        { after: COUNTDOWN, send: ' ' },
        { after: PROMPT, send: 'dhcp ${loadaddr}; crc32 ${loadaddr} ${filesize}; echo TFTP-DONE\r' },
        { after: 'TFTP-DONE', occurrence: 2, send: 'poweroff\r' },
      ],
    });
    expect(result.stdout).toMatch(/DHCP client bound to address 10\.0\.2\.15/);
    expect(result.stdout).toMatch(/Filename 'pxe\/payload\.bin'/);
    expect(result.stdout).toContain(`Bytes transferred = ${payload.length}`);
    expect(result.stdout).toMatch(new RegExp(`crc32 for [0-9a-f]+ \\.\\.\\. [0-9a-f]+ ==> ${crc32(payload).toString(16).padStart(8, '0')}`));
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

/** CRC-32 (IEEE 802.3, reflected), as U-Boot's crc32 command prints it. */
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}
