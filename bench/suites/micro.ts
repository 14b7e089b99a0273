// The microbenchmarks as a suite (the loops are in lib/micro_programs.ts, the timing in lib/micro.ts).
import { runMicroBenchmarks, type MicroResult } from '../lib/micro.js';
import { formatTable, fixed } from '../lib/table.js';
import type { BenchSuite } from '../lib/suite.js';

export const microSuite: BenchSuite = {
  name: 'micro',
  summary: 'tinybench microbenchmarks of the core and the exit path',
  async run({ options, hypervisor, progress }) {
    const results = await runMicroBenchmarks({
      hypervisor, timeMs: options.timeMs, filter: options.filter,
      onResult: (r) => progress(`micro ${r.name}: ${r.mips !== null ? `${fixed(r.mips)} MIPS` : `${fixed(r.nsPerUnit)} ns/${r.unit}`}`),
    });
    return { text: describe(results), figures: results };
  },
};

function describe(results: readonly MicroResult[]): string {
  return [
    'microbenchmarks (tinybench; instruction loops run in 1,000,000-instruction run() slices)',
    formatTable(['benchmark', 'MIPS', 'ns/unit', 'unit', '±%', 'samples'], results.map((r) => [
      r.name, r.mips === null ? null : fixed(r.mips), fixed(r.nsPerUnit), r.unit, fixed(r.rme, 2), r.samples,
    ])),
  ].join('\n');
}
