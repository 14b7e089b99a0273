// Issue #5's disk benchmark: busybox dd in the shared guest, sequential 64 MiB writes and reads in 1 MiB
// blocks and 16 MiB in 4 KiB blocks, with O_DIRECT so every block is a virtio-blk request and nothing is
// served from the guest's page cache, on a blank raw and a blank qcow2 image; wkvm and QEMU in one run.
//
// The guest's /init has no dd mode, so the suite drives its shell (guest.mode=shell) over the console.
// Throughput is dd's own report (bytes over the seconds it measured with the guest clock); the host also
// times each command between marker lines as a cross-check. The data written is 0xA5 bytes (not zeros, so
// a write that never reaches the image cannot pass): after the timed steps the guest flushes the disk
// (`sync /dev/vda`) and reads the whole written range back through md5sum, and after power-off the host
// checks the image itself (qemu-img check and convert for qcow2).
//
// The random 4 KiB pattern runs test/guest/linux/randio (a static Linux program) from a second, ext4 disk
// the guest mounts read-only: random-offset O_DIRECT writes of 0xA5 blocks and then reads inside the range
// the sequential steps filled, so the content checks above still hold and every byte read must be 0xA5.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleSession, GUEST_PROMPT, runTimedShellCommand } from '../lib/console_session.js';
import { createBlankImage, createFilesImage, findContentsMismatch, readGuestView, type ImageFormat } from '../lib/disk_image.js';
import { BenchGuestError } from '../lib/errors.js';
import { expectDdTransfer, expectRandio } from '../lib/guest_output.js';
import { guestFiles, qemuLinuxCommand, qemuSkipReason, wkvmLinuxCommand, type GuestFiles, type LinuxCommand } from '../lib/linux_guest.js';
import { findOnPath } from '../lib/paths.js';
import { ratio, spread, type Spread } from '../lib/spread.js';
import { fixed, formatTable, type Cell } from '../lib/table.js';
import type { BenchSuite, SuiteContext } from '../lib/suite.js';

const MiB = 1024 * 1024;
const IMAGE_BYTES = 128 * MiB;
const FILL = 0xa5;
/** The pattern file in the guest's tmpfs: 64 MiB of FILL, the source of every write. */
const PATTERN_BYTES = 64 * MiB;
const SMALL_BLOCK_OFFSET = 64 * MiB;
const SMALL_BLOCK_BYTES = 16 * MiB;
const WRITTEN_BYTES = SMALL_BLOCK_OFFSET + SMALL_BLOCK_BYTES;

interface DdStep {
  readonly name: string;
  readonly description: string;
  readonly command: string;
  readonly bytes: number;
  readonly blockSize: number;
}

const STEPS: readonly DdStep[] = [
  { name: 'seq-write-1M', description: 'write 64 MiB, 1 MiB blocks', command: 'dd if=/tmp/pat of=/dev/vda bs=1M count=64 oflag=direct', bytes: 64 * MiB, blockSize: MiB },
  { name: 'seq-read-1M', description: 'read 64 MiB, 1 MiB blocks', command: 'dd if=/dev/vda of=/dev/null bs=1M count=64 iflag=direct', bytes: 64 * MiB, blockSize: MiB },
  { name: 'seq-write-4K', description: 'write 16 MiB, 4 KiB blocks', command: 'dd if=/tmp/pat of=/dev/vda bs=4k count=4096 seek=16384 oflag=direct', bytes: SMALL_BLOCK_BYTES, blockSize: 4096 },
  { name: 'seq-read-4K', description: 'read 16 MiB, 4 KiB blocks', command: 'dd if=/dev/vda of=/dev/null bs=4k count=4096 skip=16384 iflag=direct', bytes: SMALL_BLOCK_BYTES, blockSize: 4096 },
];

interface RandomStep {
  readonly name: string;
  readonly description: string;
  readonly operation: 'read' | 'write';
  readonly count: number;
  readonly seed: number;
}

/** 4 KiB requests at random 4 KiB-aligned offsets in [0, WRITTEN_BYTES), one at a time (queue depth 1). */
const RANDOM_STEPS: readonly RandomStep[] = [
  { name: 'rand-write-4K', description: 'random write 2048 × 4 KiB', operation: 'write', count: 2048, seed: 7 },
  { name: 'rand-read-4K', description: 'random read 4096 × 4 KiB', operation: 'read', count: 4096, seed: 42 },
];
const RANDIO = 'test/guest/linux/randio/randio';
const TOOLS_IMAGE_BYTES = 8 * MiB;

const PREPARE_PATTERN = `head -c ${MiB} /dev/zero | tr '\\0' '\\${FILL.toString(8)}' > /tmp/p1 && ` +
  `for i in $(seq ${PATTERN_BYTES / MiB}); do cat /tmp/p1; done > /tmp/pat && rm /tmp/p1 && wc -c < /tmp/pat`;
const READ_BACK = `dd if=/dev/vda bs=1M count=${WRITTEN_BYTES / MiB} iflag=direct 2>/dev/null | md5sum`;

export interface DiskStepRun {
  readonly bytes: number;
  /** dd's own seconds. */
  readonly guestSeconds: number;
  /** Between the marker lines around the command, on the host. */
  readonly hostMs: number;
}

export interface DiskSubjectFigures {
  readonly label: string;
  readonly format: ImageFormat;
  readonly runs: readonly Readonly<Record<string, DiskStepRun>>[];
  /** Per step: MB/s (10^6 bytes per second) from dd's seconds. */
  readonly mbPerSecond: Readonly<Record<string, Spread>>;
  readonly hostMbPerSecond: Readonly<Record<string, Spread>>;
}

export interface DiskFigures {
  readonly skipped: string | null;
  /** Why the random 4 KiB steps did not run (no mke2fs), or null. */
  readonly randomSkipped: string | null;
  readonly qemuSkipped: string | null;
  readonly qcow2Skipped: string | null;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly subjects: readonly DiskSubjectFigures[];
}

export const diskSuite: BenchSuite = {
  name: 'disk',
  summary: 'guest dd to a virtio-blk disk (raw and qcow2), O_DIRECT, 1 MiB and 4 KiB blocks: wkvm vs QEMU',
  async run(context) {
    const figures = await measure(context);
    return { text: describe(figures), figures };
  },
};

async function measure(context: SuiteContext): Promise<DiskFigures> {
  const loadBefore = loadavg();
  const qemuSkipped = qemuSkipReason(context.options.qemu, context.qemuPath);
  const qemuImg = findOnPath('qemu-img');
  const qcow2Skipped = qemuImg === null ? 'qemu-img is not on PATH (it creates and checks the qcow2 images)' : null;
  if (!context.options.cli) {
    return { skipped: 'skipped (--no-cli: every wkvm run here is a CLI process)', randomSkipped: null, qemuSkipped, qcow2Skipped, loadBefore, loadAfter: loadavg(), subjects: [] };
  }
  const mke2fs = findOnPath('mke2fs') ?? ['/usr/sbin/mke2fs', '/sbin/mke2fs'].find((path) => existsSync(path)) ?? null;
  const randio = join(context.paths.root, RANDIO);
  const randomSkipped = mke2fs === null ? 'mke2fs is not installed (it builds the disk that carries randio)'
    : !existsSync(randio) ? `${RANDIO} is missing` : null;
  const steps = [...STEPS.map((s) => s.name), ...(randomSkipped === null ? RANDOM_STEPS.map((s) => s.name) : [])];
  const files = guestFiles(context.paths.root);
  const formats: ImageFormat[] = qcow2Skipped === null ? ['raw', 'qcow2'] : ['raw'];
  const vmms: ('wkvm' | 'qemu')[] = qemuSkipped === null ? ['wkvm', 'qemu'] : ['wkvm'];
  const results = new Map<string, { label: string; format: ImageFormat; runs: Record<string, DiskStepRun>[] }>();
  for (let round = 0; round < context.options.runs; round++) {
    for (const format of formats) {
      for (const vmm of vmms) {
        const scratch = mkdtempSync(join(tmpdir(), 'wkvm-bench-disk-'));
        try {
          const image = join(scratch, `disk.${format}`);
          createBlankImage(image, format, IMAGE_BYTES, qemuImg);
          const extraDrives = [];
          if (randomSkipped === null) {
            const files = join(scratch, 'tools');
            mkdirSync(files);
            copyFileSync(randio, join(files, 'randio'));
            createFilesImage(join(scratch, 'tools.ext4'), files, TOOLS_IMAGE_BYTES, mke2fs!);
            extraDrives.push({ file: join(scratch, 'tools.ext4'), format: 'raw' as const });
          }
          const boot = { mode: 'shell' as const, smp: 1, drive: { file: image, format }, extraDrives };
          const command = vmm === 'wkvm' ? wkvmLinuxCommand(context.paths.cli, files, { ...boot, bootPath: 'none' }) : qemuLinuxCommand(context.qemuPath!, files, boot);
          const run = await runDiskSession(context, command, format, randomSkipped === null);
          checkImage(`disk (${command.label}, ${format})`, image, format, qemuImg, scratch);
          const key = `${command.label}|${format}`;
          if (!results.has(key)) results.set(key, { label: command.label, format, runs: [] });
          results.get(key)!.runs.push(run);
          context.progress(`disk ${command.label} ${format} run ${round + 1}/${context.options.runs}: ` +
            steps.map((name) => `${name} ${fixed(run[name]!.bytes / run[name]!.guestSeconds / 1e6)} MB/s`).join(', ') + '; data checked');
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
      }
    }
  }
  const subjects = [...results.values()].map((r) => ({
    label: r.label,
    format: r.format,
    runs: r.runs,
    mbPerSecond: Object.fromEntries(steps.map((name) => [name, spread(r.runs.map((x) => x[name]!.bytes / x[name]!.guestSeconds / 1e6))])),
    hostMbPerSecond: Object.fromEntries(steps.map((name) => [name, spread(r.runs.map((x) => x[name]!.bytes / (x[name]!.hostMs * 1000)))])),
  }));
  return { skipped: null, randomSkipped, qemuSkipped, qcow2Skipped, loadBefore, loadAfter: loadavg(), subjects };
}

/** One boot to the shell, the pattern, the four dd steps, the random steps, the read-back check, `exit`. */
async function runDiskSession(context: SuiteContext, command: LinuxCommand, format: ImageFormat, random: boolean): Promise<Record<string, DiskStepRun>> {
  const subject = `disk (${command.label}, ${format})`;
  const session = new ConsoleSession(subject, command.command, command.args, context.options.timeoutMs);
  try {
    await session.waitFor('GUEST-READY');
    await session.waitFor(GUEST_PROMPT);
    const prepared = await runTimedShellCommand(session, 'pattern', PREPARE_PATTERN);
    if (!new RegExp(`(^|\\n)${PATTERN_BYTES}\\r?\\n`).test(prepared.output)) {
      throw new BenchGuestError(subject, `the guest's pattern file is not ${PATTERN_BYTES} bytes`, prepared.output);
    }
    const run: Record<string, DiskStepRun> = {};
    for (const step of STEPS) {
      const timed = await runTimedShellCommand(session, step.name, `${step.command} 2>&1`);
      const dd = expectDdTransfer(`${subject} ${step.name}`, timed.output, step.bytes, step.blockSize);
      run[step.name] = { bytes: dd.bytes, guestSeconds: dd.seconds, hostMs: timed.hostMs };
    }
    if (random) {
      const mounted = await runTimedShellCommand(session, 'mount-tools', 'mount -o ro /dev/vdb /mnt; echo "mount-status $?"');
      if (!/mount-status 0\r?\n/.test(mounted.output)) throw new BenchGuestError(subject, 'the guest could not mount the randio disk (/dev/vdb)', mounted.output);
      for (const step of RANDOM_STEPS) {
        const timed = await runTimedShellCommand(session, step.name,
          `/mnt/randio /dev/vda ${step.operation} 4096 ${step.count} 0 ${WRITTEN_BYTES} ${step.seed} 2>&1`);
        const report = expectRandio(`${subject} ${step.name}`, timed.output,
          { operation: step.operation, block: 4096, count: step.count, fill: step.operation === 'read' ? FILL : undefined });
        run[step.name] = { bytes: report.block * report.count, guestSeconds: report.seconds, hostMs: timed.hostMs };
      }
    }
    // fsync on the device sends virtio-blk FLUSH. QEMU 7.2 needs it: it exits on the guest's power-off
    // without writing back the qcow2 metadata it caches (the written clusters are then unreachable).
    const flush = await runTimedShellCommand(session, 'flush', 'sync /dev/vda; echo "sync-status $?"');
    if (!/sync-status 0\r?\n/.test(flush.output)) throw new BenchGuestError(subject, '`sync /dev/vda` failed in the guest', flush.output);
    const readBack = await runTimedShellCommand(session, 'read-back', READ_BACK);
    const expectedMd5 = createHash('md5').update(Buffer.alloc(WRITTEN_BYTES, FILL)).digest('hex');
    if (!readBack.output.includes(`${expectedMd5}  -`)) {
      throw new BenchGuestError(subject, `the guest read back the first ${WRITTEN_BYTES / MiB} MiB with a different md5 (expected ${expectedMd5})`, readBack.output);
    }
    session.send('exit\n');
    const exit = await session.finished(60_000);
    if (exit.exitCode !== 0) throw new BenchGuestError(subject, `exited with ${exit.exitCode ?? exit.signal} after \`exit\` (expected 0)`, session.text.slice(-4000));
    return run;
  } finally {
    await session.kill();
  }
}

function checkImage(subject: string, image: string, format: ImageFormat, qemuImg: string | null, scratch: string): void {
  const contents = readGuestView(image, format, qemuImg, scratch);
  const mismatch = findContentsMismatch(contents, { fill: FILL, patternBytes: WRITTEN_BYTES, totalBytes: IMAGE_BYTES });
  if (mismatch !== null) throw new BenchGuestError(subject, `the image does not hold what the guest wrote: ${mismatch}`);
}

function describe(figures: DiskFigures): string {
  if (figures.skipped !== null) return `disk: ${figures.skipped}`;
  const loads = (values: readonly number[]) => values.map((v) => v.toFixed(2)).join(' ');
  const lines = [`disk suite: load average (1/5/15 min) ${loads(figures.loadBefore)} before, ${loads(figures.loadAfter)} after`];
  if (figures.qemuSkipped) lines.push(`QEMU: ${figures.qemuSkipped}`);
  if (figures.qcow2Skipped) lines.push(`qcow2: ${figures.qcow2Skipped}`);
  if (figures.randomSkipped) lines.push(`random 4 KiB: ${figures.randomSkipped}`);
  const runs = figures.subjects[0]?.runs.length ?? 0;
  lines.push(`busybox dd with O_DIRECT on a blank 128 MiB image, -smp 1, ${runs} run${runs === 1 ? '' : 's'} each (interleaved); ` +
    'MB/s = 10^6 bytes/s from dd\'s own seconds, median (min in parentheses); ×QEMU = wkvm median / QEMU median, same format');
  const rows: Cell[][] = [];
  const steps = [...STEPS, ...(figures.randomSkipped === null ? RANDOM_STEPS : [])];
  for (const step of steps) {
    for (const subject of figures.subjects) {
      const qemu = figures.subjects.find((s) => s.format === subject.format && s.label.startsWith('QEMU'));
      const mine = subject.mbPerSecond[step.name]!;
      const host = subject.hostMbPerSecond[step.name]!;
      rows.push([
        step.description, subject.format, subject.label, `${fixed(mine.median)} (${fixed(mine.min)})`, fixed(host.median),
        subject === qemu || qemu === undefined ? null : `${fixed(ratio(mine.median, qemu.mbPerSecond[step.name]!.median)!)}×`,
      ]);
    }
  }
  if (figures.randomSkipped === null) {
    lines.push('random steps: test/guest/linux/randio, 4 KiB O_DIRECT requests at random offsets in the first 80 MiB, one at a time; MB/s from its own clock');
  }
  lines.push(formatTable(['step', 'image', 'subject', 'MB/s (dd)', 'MB/s (host markers)', '×QEMU'], rows));
  return lines.join('\n');
}
