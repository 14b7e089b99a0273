// Issue #4's boot benchmark: the shared Linux guest booted to GUEST-READY and to power-off by the wkvm CLI
// (firmware-less and through OpenSBI fw_jump) and by QEMU (fw_jump) in one run, the subjects interleaved
// run by run so load changes on this shared machine hit them alike; then guest.mode=bench, whose seven
// results must be the known values before its times count.
import { loadavg } from 'node:os';
import { timeBenchMode, timePoweroffBoot, type BenchModeRun, type BootRun } from '../lib/linux_boot.js';
import { GUEST_BENCH_EXPECTED } from '../lib/guest_output.js';
import {
  guestFiles, qemuLinuxCommand, qemuSkipReason, wkvmLinuxCommand, type GuestFiles, type LinuxBoot, type LinuxCommand,
} from '../lib/linux_guest.js';
import { ratio, spread, type Spread } from '../lib/spread.js';
import { fixed, formatTable, median, type Cell } from '../lib/table.js';
import type { BenchSuite, SuiteContext } from '../lib/suite.js';

export interface BootSubjectFigures {
  readonly label: string;
  readonly runs: readonly BootRun[];
  readonly readyMs: Spread;
  readonly exitMs: Spread;
}

export interface BenchModeSubjectFigures {
  readonly label: string;
  readonly runs: readonly BenchModeRun[];
  readonly exitMs: Spread;
  /** The guest's own `GUEST-BENCH total seconds=`. */
  readonly guestTotalSeconds: Spread;
}

export interface BootComparison {
  readonly smp: number;
  readonly subjects: readonly BootSubjectFigures[];
  /** Per wkvm subject: its median over QEMU's, to GUEST-READY and to exit. */
  readonly ratios: readonly { readonly label: string; readonly ready: number | null; readonly exit: number | null }[];
}

export interface BootFigures {
  readonly skipped: string | null;
  readonly qemuSkipped: string | null;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly poweroff: BootComparison | null;
  readonly benchMode: readonly BenchModeSubjectFigures[] | null;
}

export const bootSuite: BenchSuite = {
  name: 'boot',
  summary: 'Linux guest to GUEST-READY and power-off, and its bench mode: wkvm (-bios none, fw_jump) vs QEMU',
  async run(context) {
    const figures = await measure(context);
    return { text: describe(figures), figures };
  },
};

/** The subjects of a boot comparison: wkvm's two boot paths, then QEMU when it takes part. */
export function bootSubjects(context: SuiteContext, files: GuestFiles, boot: Omit<LinuxBoot, 'bootPath'>): LinuxCommand[] {
  const subjects = [
    wkvmLinuxCommand(context.paths.cli, files, { ...boot, bootPath: 'none' }),
    wkvmLinuxCommand(context.paths.cli, files, { ...boot, bootPath: 'fw_jump' }),
  ];
  if (qemuSkipReason(context.options.qemu, context.qemuPath) === null) subjects.push(qemuLinuxCommand(context.qemuPath!, files, boot));
  return subjects;
}

/** Poweroff-mode boots of every subject, `runs` rounds, interleaved. */
export async function compareBoots(context: SuiteContext, subjects: readonly LinuxCommand[], smp: number): Promise<BootComparison> {
  const runs = subjects.map(() => [] as BootRun[]);
  for (let round = 0; round < context.options.runs; round++) {
    for (const [i, subject] of subjects.entries()) {
      const run = await timePoweroffBoot(subject, context.options.timeoutMs);
      context.progress(`boot -smp ${smp} ${subject.label} run ${round + 1}/${context.options.runs}: ready ${fixed(run.readyMs)} ms, exit ${fixed(run.exitMs)} ms`);
      runs[i]!.push(run);
    }
  }
  const figures = subjects.map((subject, i) => ({
    label: subject.label,
    runs: runs[i]!,
    readyMs: spread(runs[i]!.map((r) => r.readyMs)),
    exitMs: spread(runs[i]!.map((r) => r.exitMs)),
  }));
  const qemu = figures.find((_, i) => subjects[i]!.vmm === 'qemu');
  const ratios = figures.filter((_, i) => subjects[i]!.vmm === 'wkvm').map((f) => ({
    label: f.label,
    ready: ratio(f.readyMs.median, qemu?.readyMs.median),
    exit: ratio(f.exitMs.median, qemu?.exitMs.median),
  }));
  return { smp, subjects: figures, ratios };
}

async function measure(context: SuiteContext): Promise<BootFigures> {
  const loadBefore = loadavg();
  const qemuSkipped = qemuSkipReason(context.options.qemu, context.qemuPath);
  if (!context.options.cli) {
    return { skipped: 'skipped (--no-cli: every wkvm run here is a CLI process)', qemuSkipped, loadBefore, loadAfter: loadavg(), poweroff: null, benchMode: null };
  }
  const files = guestFiles(context.paths.root);
  const poweroff = await compareBoots(context, bootSubjects(context, files, { mode: 'poweroff', smp: 1 }), 1);

  // Bench mode computes for ~20 s on wkvm after a ~1 s boot, so one boot path is enough: the firmware-less
  // default (the boot path makes no difference to the workload).
  const benchSubjects = [wkvmLinuxCommand(context.paths.cli, files, { mode: 'bench', smp: 1, bootPath: 'none' })];
  if (qemuSkipped === null) benchSubjects.push(qemuLinuxCommand(context.qemuPath!, files, { mode: 'bench', smp: 1 }));
  const benchRuns = benchSubjects.map(() => [] as BenchModeRun[]);
  for (let round = 0; round < context.options.runs; round++) {
    for (const [i, subject] of benchSubjects.entries()) {
      const run = await timeBenchMode(subject, context.options.timeoutMs);
      context.progress(`guest bench mode ${subject.label} run ${round + 1}/${context.options.runs}: ${fixed(run.exitMs)} ms, guest total ${run.report.totalSeconds} s, results ok`);
      benchRuns[i]!.push(run);
    }
  }
  const benchMode = benchSubjects.map((subject, i) => ({
    label: subject.label,
    runs: benchRuns[i]!,
    exitMs: spread(benchRuns[i]!.map((r) => r.exitMs)),
    guestTotalSeconds: spread(benchRuns[i]!.map((r) => r.report.totalSeconds)),
  }));
  return { skipped: null, qemuSkipped, loadBefore, loadAfter: loadavg(), poweroff, benchMode };
}

const loads = (values: readonly number[]) => values.map((v) => v.toFixed(2)).join(' ');

/** The poweroff-mode table, shared with the smp suite's -smp 2 comparison. */
export function describeBootComparison(comparison: BootComparison): string {
  const qemu = comparison.subjects.find((s) => s.label.startsWith('QEMU'));
  const rows: Cell[][] = comparison.subjects.map((s) => {
    const ratios = comparison.ratios.find((r) => r.label === s.label);
    return [
      s.label, fixed(s.readyMs.min), fixed(s.readyMs.median), fixed(s.exitMs.min), fixed(s.exitMs.median),
      ratios?.ready != null ? `${fixed(ratios.ready)}×` : null, ratios?.exit != null ? `${fixed(ratios.exit)}×` : null,
    ];
  });
  const runs = comparison.subjects[0]?.runs.length ?? 0;
  return [
    `boot to GUEST-READY and to exit, guest.mode=poweroff, -smp ${comparison.smp} (${runs} run${runs === 1 ? '' : 's'} each, interleaved; ms from spawn)`,
    formatTable(['subject', 'ready min', 'ready median', 'exit min', 'exit median', 'ready ×QEMU', 'exit ×QEMU'], rows),
    qemu === undefined ? 'QEMU: not run (no ratios)' : '×QEMU: median over QEMU fw_jump\'s median',
  ].join('\n');
}

function describe(figures: BootFigures): string {
  if (figures.skipped !== null) return `boot: ${figures.skipped}`;
  const lines = [`boot suite: load average (1/5/15 min) ${loads(figures.loadBefore)} before, ${loads(figures.loadAfter)} after`];
  if (figures.qemuSkipped) lines.push(`QEMU: ${figures.qemuSkipped}`);
  lines.push(describeBootComparison(figures.poweroff!));
  const bench = figures.benchMode!;
  const qemu = bench.find((s) => s.label.startsWith('QEMU'));
  lines.push('', `guest.mode=bench (the seven steps' results all checked against the known values; ${bench[0]!.runs.length} run${bench[0]!.runs.length === 1 ? '' : 's'} each)`,
    formatTable(['subject', 'wall min ms', 'wall median ms', 'guest total min s', 'guest total median s', 'wall ×QEMU', 'guest total ×QEMU'],
      bench.map((s) => [
        s.label, fixed(s.exitMs.min), fixed(s.exitMs.median), fixed(s.guestTotalSeconds.min), fixed(s.guestTotalSeconds.median),
        s === qemu ? null : optionalRatio(ratio(s.exitMs.median, qemu?.exitMs.median)),
        s === qemu ? null : optionalRatio(ratio(s.guestTotalSeconds.median, qemu?.guestTotalSeconds.median)),
      ])));
  const stepRows: Cell[][] = Object.keys(GUEST_BENCH_EXPECTED).map((step) => [
    step, ...bench.map((s) => fixed(median(s.runs.map((r) => r.report.steps.find((x) => x.name === step)!.seconds)))),
  ]);
  lines.push('', 'guest bench steps, median guest seconds (/proc/uptime, 10 ms resolution):',
    formatTable(['step', ...bench.map((s) => s.label)], stepRows));
  return lines.join('\n');
}

function optionalRatio(value: number | null): string | null {
  return value === null ? null : `${fixed(value)}×`;
}
