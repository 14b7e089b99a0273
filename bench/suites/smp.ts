// Issue #6's benchmarks: how a CPU-bound guest workload scales from 1 to 2 vCPUs on this 2-core machine,
// how much host CPU an idle booted guest costs, boot time with -smp 2 against QEMU, and the bare-metal
// smp-litmus program's wall time at -smp 1, 2 and 4 against QEMU's.
//
// Workload and idle use the guest's shell over the console (guest.mode=shell), one boot per subject and
// run: after the prompt the guest is left alone for IDLE_SETTLE_MS, then the VMM process's CPU time
// (utime + stime of all its threads, /proc/PID/stat) is read across IDLE_MS; then two
// `dd if=/dev/zero bs=1M count=64 | sha256sum` pipelines run in the background and the shell waits for
// both, timed on the host between marker lines (and by the guest from /proc/uptime). Both digests must be
// the known one before the time counts.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleSession, GUEST_PROMPT, runTimedShellCommand } from '../lib/console_session.js';
import { BenchGuestError } from '../lib/errors.js';
import { parseLitmus } from '../lib/guest_output.js';
import { guestFiles, qemuLinuxCommand, qemuSkipReason, wkvmLinuxCommand, type LinuxCommand } from '../lib/linux_guest.js';
import { processCpuSeconds } from '../lib/proc_cpu.js';
import { runProcess } from '../lib/process.js';
import { ratio, spread, type Spread } from '../lib/spread.js';
import { fixed, formatTable, type Cell } from '../lib/table.js';
import type { BenchSuite, SuiteContext } from '../lib/suite.js';
import { bootSubjects, compareBoots, describeBootComparison, type BootComparison } from './boot.js';

const IDLE_SETTLE_MS = 2000;
const IDLE_MS = 10_000;
const JOBS = 2;
const JOB_MIB = 16;
const WORKLOAD = `u0=$(cut -d' ' -f1 /proc/uptime); ` +
  `for i in $(seq ${JOBS}); do (dd if=/dev/zero bs=1M count=${JOB_MIB} 2>/dev/null | sha256sum) & done; wait; ` +
  `u1=$(cut -d' ' -f1 /proc/uptime); echo "guest-seconds $u0 $u1"`;
const GUEST_SECONDS = /guest-seconds (\d+\.\d+) (\d+\.\d+)/;
const SMP_COUNTS = [1, 2] as const;
const LITMUS_HARTS = [1, 2, 4] as const;

export interface SmpSessionRun {
  /** Host ms between the markers around the workload. */
  readonly workloadMs: number;
  /** The guest's own elapsed seconds (/proc/uptime, 10 ms resolution). */
  readonly workloadGuestSeconds: number;
  /** Host CPU the VMM process used while the guest sat at its prompt, in % of one core. */
  readonly idleCpuPercent: number;
  /** ms from spawn to the shell prompt. */
  readonly promptMs: number;
}

export interface SmpSubjectFigures {
  readonly label: string;
  readonly smp: number;
  readonly runs: readonly SmpSessionRun[];
  readonly workloadMs: Spread;
  readonly workloadGuestSeconds: Spread;
  readonly idleCpuPercent: Spread;
}

export interface LitmusFigures {
  readonly label: string;
  readonly harts: number;
  readonly wallMs: Spread;
  readonly phaseMs: readonly Readonly<Record<string, number>>[];
}

export interface SmpFigures {
  readonly skipped: string | null;
  readonly qemuSkipped: string | null;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly workload: readonly SmpSubjectFigures[];
  /** Per VMM: workload time at -smp 1 over that at -smp 2, from the medians and from the best runs. */
  readonly speedups: readonly { readonly label: string; readonly speedup: number | null; readonly speedupBest: number | null }[];
  readonly boot: BootComparison | null;
  readonly litmus: readonly LitmusFigures[];
  readonly litmusSkipped: string | null;
}

export const smpSuite: BenchSuite = {
  name: 'smp',
  summary: 'guest workload at 1 and 2 vCPUs, idle host CPU, -smp 2 boot, smp-litmus at 1/2/4 harts: wkvm vs QEMU',
  async run(context) {
    const figures = await measure(context);
    return { text: describe(figures), figures };
  },
};

async function measure(context: SuiteContext): Promise<SmpFigures> {
  const loadBefore = loadavg();
  const qemuSkipped = qemuSkipReason(context.options.qemu, context.qemuPath);
  if (!context.options.cli) {
    return {
      skipped: 'skipped (--no-cli: every wkvm run here is a CLI process)', qemuSkipped, loadBefore, loadAfter: loadavg(),
      workload: [], speedups: [], boot: null, litmus: [], litmusSkipped: null,
    };
  }
  const files = guestFiles(context.paths.root);

  const sessionSubjects: { command: LinuxCommand; smp: number }[] = [];
  for (const smp of SMP_COUNTS) sessionSubjects.push({ command: wkvmLinuxCommand(context.paths.cli, files, { mode: 'shell', smp, bootPath: 'none' }), smp });
  if (qemuSkipped === null) {
    for (const smp of SMP_COUNTS) sessionSubjects.push({ command: qemuLinuxCommand(context.qemuPath!, files, { mode: 'shell', smp }), smp });
  }
  const sessionRuns = sessionSubjects.map(() => [] as SmpSessionRun[]);
  for (let round = 0; round < context.options.runs; round++) {
    for (const [i, { command, smp }] of sessionSubjects.entries()) {
      const run = await runSmpSession(context, command, smp);
      context.progress(`smp ${command.label} -smp ${smp} run ${round + 1}/${context.options.runs}: workload ${fixed(run.workloadMs)} ms ` +
        `(guest ${run.workloadGuestSeconds.toFixed(2)} s), idle ${fixed(run.idleCpuPercent)} % of a core`);
      sessionRuns[i]!.push(run);
    }
  }
  const workload = sessionSubjects.map(({ command, smp }, i) => ({
    label: command.label,
    smp,
    runs: sessionRuns[i]!,
    workloadMs: spread(sessionRuns[i]!.map((r) => r.workloadMs)),
    workloadGuestSeconds: spread(sessionRuns[i]!.map((r) => r.workloadGuestSeconds)),
    idleCpuPercent: spread(sessionRuns[i]!.map((r) => r.idleCpuPercent)),
  }));
  const labels = [...new Set(workload.map((w) => w.label))];
  const speedups = labels.map((label) => {
    const one = workload.find((w) => w.label === label && w.smp === 1)?.workloadMs;
    const two = workload.find((w) => w.label === label && w.smp === 2)?.workloadMs;
    return { label, speedup: ratio(one?.median, two?.median), speedupBest: ratio(one?.min, two?.min) };
  });

  const boot = await compareBoots(context, bootSubjects(context, files, { mode: 'poweroff', smp: 2 }), 2);

  const litmusElf = join(context.paths.root, 'test', 'guest', 'smp-litmus', 'smp-litmus.elf');
  const litmusSkipped: string | null = existsSync(litmusElf) ? null : `${litmusElf} is missing (make -C test/guest/smp-litmus)`;
  const litmus: LitmusFigures[] = [];
  if (litmusSkipped === null) {
    const subjects: { label: string; command: string; prefix: string[] }[] = [
      { label: 'wkvm', command: process.execPath, prefix: [context.paths.cli, 'run'] },
    ];
    if (qemuSkipped === null) subjects.push({ label: 'QEMU', command: context.qemuPath!, prefix: [] });
    for (const harts of LITMUS_HARTS) {
      const walls = subjects.map(() => [] as number[]);
      const phases = subjects.map(() => [] as Record<string, number>[]);
      for (let round = 0; round < context.options.runs; round++) {
        for (const [i, subject] of subjects.entries()) {
          const name = `smp-litmus (${subject.label} -smp ${harts})`;
          const args = [...subject.prefix, '-M', 'virt', '-m', '128M', '-smp', String(harts), '-bios', 'none', '-nographic', '-kernel', litmusElf];
          const run = await runProcess(name, subject.command, args, context.options.timeoutMs);
          if (run.exitCode !== 0) throw new BenchGuestError(name, `exited with ${run.exitCode ?? run.signal} (expected 0 after PASS)`, run.stdout + run.stderr);
          const report = parseLitmus(name, run.stdout, harts);
          context.progress(`${name} run ${round + 1}/${context.options.runs}: ${fixed(run.wallMs)} ms, PASS`);
          walls[i]!.push(run.wallMs);
          phases[i]!.push({ ...report.phaseMs });
        }
      }
      subjects.forEach((subject, i) => litmus.push({ label: subject.label, harts, wallMs: spread(walls[i]!), phaseMs: phases[i]! }));
    }
  }
  return { skipped: null, qemuSkipped, loadBefore, loadAfter: loadavg(), workload, speedups, boot, litmus, litmusSkipped };
}

async function runSmpSession(context: SuiteContext, command: LinuxCommand, smp: number): Promise<SmpSessionRun> {
  const subject = `smp (${command.label} -smp ${smp})`;
  const session = new ConsoleSession(subject, command.command, command.args, context.options.timeoutMs);
  try {
    await session.waitFor('GUEST-READY');
    const prompt = await session.waitFor(GUEST_PROMPT);
    const pid = session.pid;
    if (pid === undefined) throw new BenchGuestError(subject, 'the VMM process has no pid');

    await sleep(IDLE_SETTLE_MS);
    const cpuBefore = processCpuSeconds(pid);
    const idleStart = performance.now();
    await sleep(IDLE_MS);
    const cpuAfter = processCpuSeconds(pid);
    const idleCpuPercent = ((cpuAfter - cpuBefore) / ((performance.now() - idleStart) / 1000)) * 100;

    const nproc = await runTimedShellCommand(session, 'nproc', 'nproc');
    if (!new RegExp(`(^|\\n)${smp}\\r?\\n`).test(nproc.output)) throw new BenchGuestError(subject, `the guest's nproc is not ${smp}`, nproc.output);

    const timed = await runTimedShellCommand(session, 'workload', WORKLOAD);
    const digest = createHash('sha256').update(Buffer.alloc(JOB_MIB * 1024 * 1024)).digest('hex');
    const digests = timed.output.split(`${digest}  -`).length - 1;
    if (digests !== JOBS) throw new BenchGuestError(subject, `${digests} of ${JOBS} sha256sum jobs printed the digest of ${JOB_MIB} MiB of zeros (${digest})`, timed.output);
    const seconds = GUEST_SECONDS.exec(timed.output);
    if (seconds === null) throw new BenchGuestError(subject, 'the workload printed no guest-seconds line', timed.output);

    session.send('exit\n');
    const exit = await session.finished(60_000);
    if (exit.exitCode !== 0) throw new BenchGuestError(subject, `exited with ${exit.exitCode ?? exit.signal} after \`exit\` (expected 0)`, session.text.slice(-4000));
    return {
      workloadMs: timed.hostMs,
      workloadGuestSeconds: Number(seconds[2]) - Number(seconds[1]),
      idleCpuPercent,
      promptMs: prompt.atMs,
    };
  } finally {
    await session.kill();
  }
}

function describe(figures: SmpFigures): string {
  if (figures.skipped !== null) return `smp: ${figures.skipped}`;
  const loads = (values: readonly number[]) => values.map((v) => v.toFixed(2)).join(' ');
  const lines = [`smp suite: load average (1/5/15 min) ${loads(figures.loadBefore)} before, ${loads(figures.loadAfter)} after`];
  if (figures.qemuSkipped) lines.push(`QEMU: ${figures.qemuSkipped}`);
  const runs = figures.workload[0]?.runs.length ?? 0;
  lines.push(`guest workload: ${JOBS} × (dd if=/dev/zero bs=1M count=${JOB_MIB} | sha256sum) in the background, then wait; digests checked; ` +
    `${runs} run${runs === 1 ? '' : 's'} each. Idle: VMM process CPU (all threads) over ${IDLE_MS / 1000} s at the shell prompt, ${IDLE_SETTLE_MS / 1000} s after it appeared`);
  lines.push(formatTable(
    ['subject', '-smp', 'workload min ms', 'workload median ms', 'guest median s', 'speedup 1→2 (medians)', 'speedup 1→2 (best)', 'idle CPU median %', 'idle CPU max %'],
    figures.workload.map((w): Cell[] => {
      const speedup = w.smp === 2 ? figures.speedups.find((s) => s.label === w.label) : undefined;
      const times = (value: number | null | undefined) => (value != null ? `${fixed(value)}×` : null);
      return [
        w.label, w.smp, fixed(w.workloadMs.min), fixed(w.workloadMs.median), fixed(w.workloadGuestSeconds.median),
        times(speedup?.speedup), times(speedup?.speedupBest), fixed(w.idleCpuPercent.median), fixed(Math.max(...w.idleCpuPercent.runs)),
      ];
    })));
  if (figures.boot !== null) lines.push('', describeBootComparison(figures.boot));
  if (figures.litmusSkipped) lines.push('', `smp-litmus: ${figures.litmusSkipped}`);
  else if (figures.litmus.length > 0) {
    const litmusRuns = figures.litmus[0]!.wallMs.runs.length;
    lines.push('', `smp-litmus.elf, -bios none -m 128M, spawn to exit (PASS and exact totals checked; ${litmusRuns} run${litmusRuns === 1 ? '' : 's'} each)`,
      formatTable(['subject', 'harts', 'wall min ms', 'wall median ms', '×QEMU', 'median phase ms amoadd / lrsc / spinlock / mp'],
        figures.litmus.map((l): Cell[] => {
          const qemu = figures.litmus.find((q) => q.label === 'QEMU' && q.harts === l.harts);
          const phase = (name: string) => fixed(medianOf(l.phaseMs.map((p) => p[name] ?? NaN)));
          return [
            l.label, l.harts, fixed(l.wallMs.min), fixed(l.wallMs.median),
            l === qemu || qemu === undefined ? null : `${fixed(ratio(l.wallMs.median, qemu.wallMs.median)!)}×`,
            ['amoadd', 'lrsc', 'spinlock', 'mp-rounds'].map(phase).join(' / '),
          ];
        })));
  }
  return lines.join('\n');
}

function medianOf(values: readonly number[]): number {
  return spread(values).median;
}
