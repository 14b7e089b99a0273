// Interop of our qcow2 writer with the real qemu-img: the shared guest writes to a qcow2 image in
// guest.mode=disk while RecordingDiskImage logs every change it asks for; the log is replayed onto a
// raw copy of the same starting image; then `qemu-img check` must find the qcow2 clean and
// `qemu-img compare` must find it identical to the raw copy. A second boot reads the file back.
// Runs in-process (VirtMachine + attachVirtioDevices, the wiring of host/cli/main.ts); needs
// ../shared/guest, build/core.wasm and qemu-img. Each boot takes a few seconds.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED_GUEST } from '../helpers/wkvm_cli.js';
import { VirtMachine, type MachineOutcome } from '../../host/vmm/virt_machine.js';
import { attachVirtioDevices, type DriveSpec } from '../../host/devices/virtio/index.js';
import { createQcow2, DiskIoError, openDiskImage, type DiskImage } from '../../host/block/index.js';
import { RecordingDiskImage, ReplayError } from '../../host/block/recording.js';

const KERNEL = join(SHARED_GUEST, 'Image');
const INITRD = join(SHARED_GUEST, 'initramfs.cpio.gz');
const ROOTFS = join(SHARED_GUEST, 'rootfs.ext4');
/** What guest.mode=disk writes to /guest-write-test.txt (see ../shared/guest/init). */
const GUEST_WRITE = 'rvguest disk write test 0123456789abcdef';
const HELLO = 'Hello from the rvguest ext4 disk image!';
const PROMPT = 'root@rvguest:/# ';
const BOOT_TIMEOUT_MS = 120_000;

const haveGuest = existsSync(KERNEL) && existsSync(INITRD) && existsSync(ROOTFS);
const haveQemuImg = spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status === 0;
const haveQemu = spawnSync('qemu-system-riscv64', ['--version'], { stdio: 'ignore' }).status === 0;

interface ToolRun {
  status: number | null;
  output: string;
}

function qemuImg(...args: string[]): ToolRun {
  const run = spawnSync('qemu-img', args, { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** qemu-img for preparing images: any failure is a broken test setup. */
function qemuImgOk(...args: string[]): void {
  const run = qemuImg(...args);
  if (run.status !== 0) throw new Error(`qemu-img ${args.join(' ')} exited ${run.status}:\n${run.output}`);
}

interface GuestRun {
  outcome: MachineOutcome;
  console: string;
  diagnostics: string[];
}

interface BootOptions {
  append: string;
  drive: DriveSpec;
  wrapDisk?: (disk: DiskImage) => DiskImage;
  /** Console input, each sent once the console output contains `after`. */
  input?: Array<{ after: string; send: string }>;
}

/** Boots the shared guest with one virtio-blk disk, as `wkvm run -m 256M -kernel Image -initrd ...` does. */
async function bootGuest(options: BootOptions): Promise<GuestRun> {
  let consoleText = '';
  const diagnostics: string[] = [];
  const pending = [...(options.input ?? [])];
  let machine: VirtMachine | null = null;
  const feed = () => {
    while (machine !== null && pending.length > 0 && consoleText.includes(pending[0]!.after)) {
      machine.consoleInput(new TextEncoder().encode(pending.shift()!.send));
    }
  };
  machine = await VirtMachine.create({
    memoryBytes: 256 * 1024 * 1024,
    bios: 'none',
    kernel: KERNEL,
    initrd: INITRD,
    append: options.append,
    log: (line) => diagnostics.push(line),
    console: {
      write: (bytes) => {
        consoleText += Buffer.from(bytes).toString('latin1');
        feed();
      },
    },
  });
  const virtio = await attachVirtioDevices(
    machine,
    { drives: [options.drive], devices: [], wrapDisk: options.wrapDisk },
    (line) => diagnostics.push(line),
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    machine!.stop(-1);
  }, BOOT_TIMEOUT_MS);
  try {
    const outcome = await machine.run();
    if (timedOut) throw new Error(`the guest did not power off within ${BOOT_TIMEOUT_MS / 1000} s; console tail:\n${consoleText.slice(-3000)}`);
    return { outcome, console: consoleText, diagnostics };
  } finally {
    clearTimeout(timer);
    await virtio.close();
  }
}

function expectCleanPoweroff(run: GuestRun): void {
  expect(run.console).toContain('GUEST-POWEROFF');
  expect(run.outcome, `console tail:\n${run.console.slice(-2000)}\ndiagnostics:\n${run.diagnostics.join('\n')}`).toEqual({ kind: 'poweroff', status: 0 });
}

/**
 * Console input that makes the guest's shell print what guest.mode=disk left on /dev/vda, then power
 * off (also when something fails, so a failure shows in the output instead of as a timeout).
 */
function readBackCommands(mountOptions: string): Array<{ after: string; send: string }> {
  // The shell can be up before the virtio-blk probe has created /dev/vda (seen under QEMU).
  const waitForDisk = 'for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done';
  return [{
    after: PROMPT,
    send: `${waitForDisk}; mkdir -p /mnt/disk; mount -t ext4 -o ${mountOptions} /dev/vda /mnt/disk; echo MOUNT-STATUS-$?; ` +
      // `$((6*7))` makes the marker something the terminal's echo of the command cannot contain.
      'echo FILES-$((6*7)); cat /mnt/disk/guest-write-test.txt /mnt/disk/hello.txt; umount /mnt/disk; exit\n',
  }];
}

/** The files the read-back commands printed, or '' if they did not get that far. */
function filesShown(console: string): string {
  const at = console.indexOf('FILES-42');
  return at < 0 ? '' : console.slice(at);
}

/** Boots a shell, mounts the disk and prints the files guest.mode=disk left behind. */
async function readBackInGuest(image: string): Promise<GuestRun> {
  return bootGuest({
    append: 'console=ttyS0 guest.mode=shell',
    drive: { file: image, format: 'qcow2', if: 'virtio' },
    input: readBackCommands('rw'),
  });
}

/** Boots the same guest under QEMU on `image` (snapshot=on: QEMU must not change it) and reads the files. */
function readBackInQemu(image: string): Promise<{ status: number | null; console: string }> {
  const args = [
    '-M', 'virt', '-m', '256M', '-smp', '1', '-nographic', '-no-reboot',
    '-bios', join(SHARED_GUEST, 'opensbi', 'fw_jump.bin'), '-kernel', KERNEL, '-initrd', INITRD,
    '-append', 'console=ttyS0 guest.mode=shell',
    // QEMU's if=virtio means virtio-blk-pci on virt, which this guest kernel does not drive.
    '-drive', `file=${image},format=qcow2,if=none,id=d0,snapshot=on`, '-device', 'virtio-blk-device,drive=d0',
  ];
  return new Promise((resolve, reject) => {
    const qemu = spawn('qemu-system-riscv64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const pending = readBackCommands('ro');
    let output = '';
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString('latin1');
      while (pending.length > 0 && output.includes(pending[0]!.after)) qemu.stdin.write(pending.shift()!.send);
    };
    qemu.stdout.on('data', onOutput);
    qemu.stderr.on('data', onOutput);
    qemu.stdin.on('error', () => {});
    const timer = setTimeout(() => {
      qemu.kill('SIGKILL');
      reject(new Error(`QEMU did not power off within ${BOOT_TIMEOUT_MS / 1000} s; console tail:\n${output.slice(-3000)}`));
    }, BOOT_TIMEOUT_MS);
    qemu.on('error', reject);
    qemu.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, console: output });
    });
  });
}

interface Variant {
  readonly name: string;
  /** Makes `image` (the qcow2 the guest writes to) in `dir`, starting out with the content of rootfs.ext4. */
  make(dir: string, image: string): Promise<void>;
  /** Checks that whatever the qcow2 reads through (a backing file) is unchanged afterwards. */
  checkUntouched?(dir: string): Promise<void>;
}

const VARIANTS: Variant[] = [
  {
    name: 'qcow2 v3 from qemu-img convert',
    async make(_dir, image) {
      qemuImgOk('convert', '-f', 'raw', '-O', 'qcow2', ROOTFS, image);
    },
  },
  {
    name: 'qcow2 v2 (compat=0.10) from qemu-img convert',
    async make(_dir, image) {
      qemuImgOk('convert', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=0.10', ROOTFS, image);
    },
  },
  {
    name: 'empty qcow2 overlay over a raw backing file',
    async make(dir, image) {
      const base = join(dir, 'rootfs-copy.raw');
      await copyFile(ROOTFS, base);
      qemuImgOk('create', '-f', 'qcow2', '-b', base, '-F', 'raw', image);
    },
    async checkUntouched(dir) {
      const base = await readFile(join(dir, 'rootfs-copy.raw'));
      expect(base.equals(await readFile(ROOTFS)), 'the backing file changed').toBe(true);
    },
  },
];

let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'wkvm-disk-interop-'));
});
afterAll(async () => {
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

async function contentOf(path: string): Promise<Buffer> {
  const disk = await openDiskImage(path);
  try {
    const bytes = Buffer.alloc(disk.size);
    await disk.read(0, bytes);
    return bytes;
  } finally {
    await disk.close();
  }
}

describe('RecordingDiskImage', () => {
  const SIZE = 1 << 20;
  const CLUSTER = 1 << 16;

  it('replays writes, write-zeroes and discards onto a raw image so both read the same', async () => {
    const dir = await mkdtemp(join(workDir, 'recorder-'));
    const qcow2 = join(dir, 'a.qcow2');
    const raw = join(dir, 'b.raw');
    await createQcow2(qcow2, { size: SIZE });
    await writeFile(raw, Buffer.alloc(SIZE));
    const recorder = new RecordingDiskImage(await openDiskImage(qcow2));
    const pattern = Buffer.alloc(3 * CLUSTER, 0x5a);
    await recorder.write(CLUSTER - 100, pattern);
    await recorder.writeZeroes!(CLUSTER + 10, 1000);
    await recorder.discard!(2 * CLUSTER, CLUSTER);
    await recorder.write(7, Buffer.from('late'));
    await recorder.close();
    expect(recorder.changes.map((change) => change.operation)).toEqual(['write', 'write-zeroes', 'discard', 'write']);

    const target = await openDiskImage(raw, { format: 'raw' });
    await recorder.replayOnto(target);
    await target.close();
    const expected = await contentOf(qcow2);
    // The discarded cluster held data, so replaying it meant something.
    expect(expected.subarray(2 * CLUSTER, 3 * CLUSTER).every((byte) => byte === 0)).toBe(true);
    expect((await contentOf(raw)).equals(expected)).toBe(true);
  });

  it('keeps vectored writes vectored and records them as one write of the gathered bytes', async () => {
    const dir = await mkdtemp(join(workDir, 'recorder-'));
    const qcow2 = join(dir, 'v.qcow2');
    const raw = join(dir, 'v.raw');
    await createQcow2(qcow2, { size: SIZE });
    await writeFile(raw, Buffer.alloc(SIZE));
    const inner = await openDiskImage(qcow2);
    let vectoredCalls = 0;
    const innerWritev = inner.writev!.bind(inner);
    inner.writev = (offset, srcs) => { vectoredCalls++; return innerWritev(offset, srcs); };
    const recorder = new RecordingDiskImage(inner);
    const parts = [Buffer.alloc(5000, 1), Buffer.alloc(CLUSTER, 2), Buffer.alloc(3, 3)];
    await recorder.writev!(CLUSTER - 200, parts);
    const back = [Buffer.alloc(100), Buffer.alloc(CLUSTER + 4903)];
    await recorder.readv!(CLUSTER - 200, back);
    await recorder.close();
    expect(vectoredCalls).toBe(1);
    expect(Buffer.concat(back).equals(Buffer.concat(parts))).toBe(true);
    expect(recorder.changes).toHaveLength(1);
    const target = await openDiskImage(raw, { format: 'raw' });
    await recorder.replayOnto(target);
    await target.close();
    expect((await contentOf(raw)).equals(await contentOf(qcow2))).toBe(true);
  });

  it('offers write-zeroes and discard only when the image under it does', async () => {
    const dir = await mkdtemp(join(workDir, 'recorder-'));
    const raw = join(dir, 'c.raw');
    await writeFile(raw, Buffer.alloc(SIZE));
    const recorder = new RecordingDiskImage(await openDiskImage(raw, { format: 'raw' }));
    try {
      expect(recorder.writeZeroes).toBeTypeOf('function');
      expect(recorder.discard).toBeUndefined();
      expect(recorder.size).toBe(SIZE);
    } finally {
      await recorder.close();
    }
  });

  it('refuses to replay a change the image failed', async () => {
    const dir = await mkdtemp(join(workDir, 'recorder-'));
    const raw = join(dir, 'd.raw');
    await writeFile(raw, Buffer.alloc(SIZE));
    const recorder = new RecordingDiskImage(await openDiskImage(raw, { format: 'raw', readOnly: true }));
    await expect(recorder.write(512, Buffer.from('x'))).rejects.toBeInstanceOf(DiskIoError);
    await recorder.close();
    expect(recorder.changes[0]!.outcome).toBe('failed');
    const target = await openDiskImage(raw, { format: 'raw' });
    try {
      const error: unknown = await recorder.replayOnto(target).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ReplayError);
      expect(error).toMatchObject({ index: 0, operation: 'write', offset: 512 });
    } finally {
      await target.close();
    }
  });
});

describe.skipIf(!haveGuest || !haveQemuImg).each(VARIANTS)('the shared guest writes to a $name', (variant) => {
  let dir: string;
  let image: string;
  let mirror: string;
  let recorder: RecordingDiskImage | null = null;

  beforeAll(async () => {
    dir = await mkdtemp(join(workDir, 'variant-'));
    image = join(dir, 'disk.qcow2');
    mirror = join(dir, 'mirror.raw');
    await variant.make(dir, image);
    await copyFile(ROOTFS, mirror);
  });

  it('passes guest.mode=disk with every change it asks for recorded', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async () => {
    const run = await bootGuest({
      append: 'console=ttyS0 guest.mode=disk',
      drive: { file: image, format: 'qcow2', if: 'virtio' },
      wrapDisk: (disk) => (recorder = new RecordingDiskImage(disk)),
    });
    expect(run.console).toContain('GUEST-DISK-OK');
    expectCleanPoweroff(run);
    const changes = recorder!.changes;
    expect(changes.every((change) => change.outcome === 'done')).toBe(true);
    // The file's data block is among the recorded writes.
    expect(changes.some((change) => change.operation === 'write' && Buffer.from(change.bytes).includes(GUEST_WRITE))).toBe(true);
  });

  it('matches a raw copy of the starting image given the same changes, and qemu-img check finds it clean', async () => {
    expect(recorder, 'the recording boot did not run').not.toBeNull();
    const raw = await openDiskImage(mirror, { format: 'raw' });
    try {
      await recorder!.replayOnto(raw);
    } finally {
      await raw.close();
    }
    // Guards against a vacuous comparison: the replay did change the raw copy.
    expect(qemuImg('compare', '-f', 'raw', '-F', 'raw', ROOTFS, mirror).status).toBe(1);

    const check = qemuImg('check', image);
    expect(check.status, check.output).toBe(0);
    const compare = qemuImg('compare', '-f', 'qcow2', '-F', 'raw', image, mirror);
    expect(compare.status, compare.output).toBe(0);
    expect(compare.output).toContain('Images are identical');
    await variant.checkUntouched?.(dir);
  });

  it('reads its data back after a reboot, and the image stays clean', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async () => {
    const run = await readBackInGuest(image);
    expectCleanPoweroff(run);
    expect(run.console, `console tail:\n${run.console.slice(-2000)}`).toContain('MOUNT-STATUS-0');
    expect(filesShown(run.console)).toContain(GUEST_WRITE);
    expect(filesShown(run.console)).toContain(HELLO);
    const check = qemuImg('check', image);
    expect(check.status, check.output).toBe(0);
    await variant.checkUntouched?.(dir);
  });

  it.skipIf(!haveQemu)('is read by QEMU too: its guest finds the same files', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async () => {
    const before = await readFile(image);
    const run = await readBackInQemu(image);
    expect(run.console, `QEMU console tail:\n${run.console.slice(-2000)}`).toContain('MOUNT-STATUS-0');
    expect(filesShown(run.console)).toContain(GUEST_WRITE);
    expect(filesShown(run.console)).toContain(HELLO);
    expect(run.status).toBe(0);
    expect((await readFile(image)).equals(before), 'QEMU changed the image despite snapshot=on').toBe(true);
  });
});
