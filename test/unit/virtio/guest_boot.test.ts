// The shared Linux guest on virtio devices, through the real CLI (needs `npm run build` and
// ../shared/guest): guest.mode=disk on raw and qcow2 copies of its ext4 image, snapshot=on, and
// virtio-rng plus virtio-console as the guest's console. These boot whole guests (about 2 s each).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, SHARED_GUEST } from '../../helpers/wkvm_cli.js';
import { openDiskImage } from '../../../host/block/index.js';

const KERNEL = join(SHARED_GUEST, 'Image');
const INITRD = join(SHARED_GUEST, 'initramfs.cpio.gz');
const ROOTFS = join(SHARED_GUEST, 'rootfs.ext4');
const haveGuest = existsSync(KERNEL) && existsSync(ROOTFS);
const haveQemuImg = (() => {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
/** What guest.mode=disk writes to /guest-write-test.txt. */
const GUEST_WRITE = 'rvguest disk write test 0123456789abcdef';

function boot(append: string, extra: string[], input?: Array<{ after?: string; send: string }>) {
  return runWkvm(['run', '-M', 'virt', '-m', '256M', '-kernel', KERNEL, '-initrd', INITRD, '-append', append, '-nographic', ...extra], {
    input,
    timeoutMs: 120_000,
  });
}

/** How often `text` occurs on the virtual disk (the guest's /init holds it once already). */
async function occurrences(path: string, text: string): Promise<number> {
  const disk = await openDiskImage(path);
  try {
    const bytes = Buffer.alloc(disk.size);
    await disk.read(0, bytes);
    let count = 0;
    for (let at = bytes.indexOf(text); at >= 0; at = bytes.indexOf(text, at + 1)) count++;
    return count;
  } finally {
    await disk.close();
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wkvm-guest-disk-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!haveGuest)('the shared guest on virtio-blk', () => {
  it('passes guest.mode=disk on a raw image, and the write is in the image afterwards', async () => {
    const image = join(dir, 'disk.raw');
    await copyFile(ROOTFS, image);
    const before = await occurrences(image, GUEST_WRITE);
    const run = await boot('console=ttyS0 guest.mode=disk', ['-drive', `file=${image},format=raw,if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0']);
    expect(run.stdout).toContain('GUEST-DISK-OK');
    expect(run.status).toBe(0);
    expect(await occurrences(image, GUEST_WRITE)).toBeGreaterThan(before);
  });

  it.skipIf(!haveQemuImg)('passes guest.mode=disk on a qcow2 image (if=virtio) that qemu-img check then finds clean', async () => {
    const image = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ROOTFS, image]);
    const run = await boot('console=ttyS0 guest.mode=disk', ['-drive', `file=${image},format=qcow2,if=virtio`]);
    expect(run.stdout).toContain('GUEST-DISK-OK');
    expect(run.status).toBe(0);
    execFileSync('qemu-img', ['check', image], { stdio: 'ignore' }); // throws on a non-zero exit
    expect(await occurrences(image, GUEST_WRITE)).toBeGreaterThan(await occurrences(ROOTFS, GUEST_WRITE));
    // A second boot mounts what the first left behind.
    const again = await boot('console=ttyS0 guest.mode=disk', ['-drive', `file=${image},format=qcow2,if=virtio`]);
    expect(again.stdout).toContain('GUEST-DISK-OK');
  });

  it('boots with the ext4 image as the root file system (no initramfs) and writes to it', async () => {
    const image = join(dir, 'root.raw');
    await copyFile(ROOTFS, image);
    const marker = 'written on the virtio root disk';
    const run = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-kernel', KERNEL, '-nographic',
      '-drive', `file=${image},format=raw,if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0',
      '-append', 'root=/dev/vda rw rootfstype=ext4 init=/init console=ttyS0 guest.mode=shell'], {
      timeoutMs: 120_000,
      input: [
        { after: 'root@rvguest:/# ', send: `cat /hello.txt; grep -c ' / ext4 rw' /proc/mounts; echo '${marker}' > /root-test.txt; sync; echo ROOT-$((6*7))\n` },
        { after: 'ROOT-42', send: 'exit\n' },
      ],
    });
    expect(run.stdout).toContain('Hello from the rvguest ext4 disk image!');
    expect(run.stdout).toMatch(/image!\r?\n1\r?\n/);
    expect(run.status, run.stderr).toBe(0);
    expect(await occurrences(image, marker)).toBeGreaterThan(0); // the file (and the shell's saved history)
  });

  it('leaves the image untouched with -snapshot', async () => {
    const image = join(dir, 'snap.raw');
    await copyFile(ROOTFS, image);
    const before = await readFile(image);
    const run = await boot('console=ttyS0 guest.mode=disk', ['-snapshot', '-drive', `file=${image},format=raw,if=virtio`]);
    expect(run.stdout).toContain('GUEST-DISK-OK');
    expect((await readFile(image)).equals(before)).toBe(true);
  });
});

describe.skipIf(!haveGuest)('virtio-rng and virtio-console in the shared guest', () => {
  it('reads /dev/hwrng from virtio-rng over a shell on the virtio console', async () => {
    // hvc0 is the kernel's SBI console (CONFIG_HVC_RISCV_SBI), so the virtio port is hvc1.
    const run = await boot('console=hvc1 guest.mode=shell', ['-device', 'virtio-rng-device', '-device', 'virtio-serial-device', '-device', 'virtconsole'], [
      { after: 'starting shell on hvc1', send: 'cat /sys/class/misc/hw_random/rng_current; head -c 64 /dev/hwrng | od -An -tx1 | wc -w; echo IN-$((6*7)); poweroff -f\n' },
    ]);
    expect(run.stdout).toContain('virtio_rng.0');
    expect(run.stdout).toMatch(/^\s*64\s*$/m);
    expect(run.stdout).toContain('IN-42');
  });
});
