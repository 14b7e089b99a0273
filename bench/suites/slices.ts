// The slice-size experiment as a suite (the measuring is in lib/slices.ts).
import { runSliceExperiment, type SliceResult } from '../lib/slices.js';
import { formatTable, fixed, median } from '../lib/table.js';
import type { BenchSuite } from '../lib/suite.js';

export const slicesSuite: BenchSuite = {
  name: 'slices',
  summary: "intbench's MIPS as a function of the run() slice size, each run in a fresh process",
  async run({ options, runScript, progress }) {
    const results = await runSliceExperiment({
      runScript, configs: options.slices, runs: options.runs, timeoutMs: options.timeoutMs, core: options.core,
      onResult: (r) => progress(`slice ${r.sliceInstructions}${r.nodeFlags.length ? ` ${r.nodeFlags.join(' ')}` : ''}: ${fixed(r.median.mips)} MIPS`),
    });
    return { text: describe(results), figures: results };
  },
};

function describe(results: readonly SliceResult[]): string {
  return [
    'slice-size experiment: intbench, each run in a fresh node process (median of runs)',
    formatTable(['slice (instructions)', 'node flags', 'run ms', 'MIPS', '1st kernel MIPS', 'all runs MIPS'], results.map((r) => [
      r.sliceInstructions, r.nodeFlags.join(' ') || '-', fixed(r.median.runMs), fixed(r.median.mips),
      fixed(median(r.runs.map((p) => p.firstKernelMips))), r.runs.map((p) => fixed(p.mips)).join(' / '),
    ])),
    '(the console is MMIO: every run() returns at least at each printed line, so a huge slice is one call only until the first kernel prints)',
  ].join('\n');
}
