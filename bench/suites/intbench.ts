// intbench whole runs: wkvm in this process, the wkvm CLI and QEMU, with the wall-time ratio.
import { BenchError } from '../lib/errors.js';
import {
  runIntbenchInProcess, runIntbenchProcess, qemuIntbenchArgs, wkvmCliIntbenchArgs,
  type WkvmIntbenchRun, type ProcessIntbenchRun,
} from '../lib/intbench.js';
import { formatTable, fixed, median, type Cell } from '../lib/table.js';
import type { BenchSuite, SuiteContext } from '../lib/suite.js';

export interface IntbenchFigures {
  readonly instructions: number;
  readonly wkvm: readonly WkvmIntbenchRun[];
  readonly wkvmCli: readonly ProcessIntbenchRun[] | null;
  readonly qemu: readonly ProcessIntbenchRun[] | null;
  readonly qemuSkipped: string | null;
  /** Median wall times over QEMU's: in-process wkvm, and the wkvm CLI process. */
  readonly ratioInProcess: number | null;
  readonly ratioCli: number | null;
}

export const intbenchSuite: BenchSuite = {
  name: 'intbench',
  summary: 'intbench.elf booted whole: wkvm in this process, the wkvm CLI, and QEMU when installed',
  async run(context) {
    const figures = await measure(context);
    return { text: describe(figures), figures };
  },
};

async function measure({ options, paths, hypervisor, qemuPath, progress }: SuiteContext): Promise<IntbenchFigures> {
  const wkvm: WkvmIntbenchRun[] = [];
  for (let i = 0; i < options.runs; i++) {
    const run = await runIntbenchInProcess({ elf: paths.intbenchElf, hypervisor, timeoutMs: options.timeoutMs });
    progress(`intbench wkvm in-process run ${i + 1}/${options.runs}: ${fixed(run.runMs)} ms, ${fixed(run.mips)} MIPS`);
    wkvm.push(run);
  }
  const instructions = wkvm[0]!.instructions;
  for (const run of wkvm) {
    if (run.instructions !== instructions) throw new BenchError(`intbench retired ${run.instructions} instructions in one run and ${instructions} in another`);
  }

  let wkvmCli: ProcessIntbenchRun[] | null = null;
  if (options.cli) {
    wkvmCli = [];
    for (let i = 0; i < options.runs; i++) {
      const run = await runIntbenchProcess('wkvm CLI', process.execPath, wkvmCliIntbenchArgs(paths.cli, paths.intbenchElf), options.timeoutMs);
      progress(`intbench wkvm CLI run ${i + 1}/${options.runs}: ${fixed(run.wallMs)} ms`);
      wkvmCli.push(run);
    }
  }

  let qemu: ProcessIntbenchRun[] | null = null;
  let qemuSkipped: string | null = null;
  if (!options.qemu) qemuSkipped = 'skipped (--no-qemu)';
  else if (qemuPath === null) qemuSkipped = 'qemu-system-riscv64 is not on PATH';
  else {
    qemu = [];
    for (let i = 0; i < options.runs; i++) {
      const run = await runIntbenchProcess('QEMU', qemuPath, qemuIntbenchArgs(paths.intbenchElf), options.timeoutMs);
      progress(`intbench QEMU run ${i + 1}/${options.runs}: ${fixed(run.wallMs)} ms`);
      qemu.push(run);
    }
  }
  const qemuWall = qemu === null ? null : median(qemu.map((r) => r.wallMs));
  return {
    instructions,
    wkvm,
    wkvmCli,
    qemu,
    qemuSkipped,
    ratioInProcess: qemuWall === null ? null : median(wkvm.map((r) => r.wallMs)) / qemuWall,
    ratioCli: qemuWall === null || wkvmCli === null ? null : median(wkvmCli.map((r) => r.wallMs)) / qemuWall,
  };
}

function describe(figures: IntbenchFigures): string {
  const mipsOf = (ms: number) => figures.instructions / (ms * 1000);
  const row = (subject: string, times: readonly number[]): Cell[] => [
    subject, fixed(median(times)), fixed(Math.min(...times)), fixed(mipsOf(median(times))), fixed(mipsOf(Math.min(...times))), 'ok',
  ];
  const rows: Cell[][] = [
    row('wkvm (in-process, create+run)', figures.wkvm.map((r) => r.wallMs)),
    row('wkvm (in-process, run only)', figures.wkvm.map((r) => r.runMs)),
  ];
  if (figures.wkvmCli) rows.push(row('wkvm CLI (process)', figures.wkvmCli.map((r) => r.wallMs)));
  if (figures.qemu) rows.push(row('QEMU TCG (process)', figures.qemu.map((r) => r.wallMs)));
  const lines = [
    `intbench: ${figures.instructions} instructions (wkvm minstret, boot included), ${figures.wkvm.length} run${figures.wkvm.length === 1 ? '' : 's'} each`,
    formatTable(['subject', 'median ms', 'best ms', 'MIPS (median)', 'MIPS (best)', 'checksum'], rows),
    `per-run in-process ms: ${figures.wkvm.map((r) => fixed(r.runMs)).join(', ')} (run 1 includes V8's tier-up to TurboFan)`,
  ];
  if (figures.qemuSkipped) lines.push(`QEMU: ${figures.qemuSkipped}`);
  if (figures.ratioInProcess !== null) {
    lines.push(`wkvm/QEMU wall time: ${fixed(figures.ratioInProcess)}× in-process` +
      (figures.ratioCli !== null ? `, ${fixed(figures.ratioCli)}× CLI process vs QEMU process` : ''));
  }
  const last = figures.wkvm[figures.wkvm.length - 1]!;
  const kernelRows = last.report.kernels.map((k, i) => {
    const ms = last.kernelLineAtMs[i]! - (i === 0 ? 0 : last.kernelLineAtMs[i - 1]!);
    return [k.name, k.instructions, fixed(ms), fixed(k.instructions / (ms * 1000))];
  });
  lines.push('', 'intbench kernels (last in-process run; time between the newlines of consecutive kernel lines):',
    formatTable(['kernel', 'instructions', '~ms', '~MIPS'], kernelRows));
  return lines.join('\n');
}
