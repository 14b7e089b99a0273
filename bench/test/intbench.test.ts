// intbench as the runner sees it: the checksum line gates every figure, and a real boot through the virt
// machine yields the instruction count the MIPS figures are computed from.
import { describe, expect, it } from 'vitest';
import { INTBENCH_CHECKSUM, parseIntbenchOutput, runIntbenchInProcess } from '../lib/intbench.js';
import { benchPaths } from '../lib/paths.js';
import { parseProbeOutput, PROBE_PREFIX } from '../lib/slices.js';
import { formatTable, fixed, median } from '../lib/table.js';
import { BenchGuestError } from '../lib/errors.js';

const KERNELS = `intbench: quicksort rounds=80 result=0x708e6fce insns=49575091
intbench: mergesort rounds=50 result=0x1154c71e insns=49730795
`;

describe('parseIntbenchOutput', () => {
  it('reads the kernel lines and the summary', () => {
    const report = parseIntbenchOutput('t', `${KERNELS}intbench: checksum=${INTBENCH_CHECKSUM} insns=99305886 ok\r\n`);
    expect(report.checksum).toBe(INTBENCH_CHECKSUM);
    expect(report.kernelInstructions).toBe(99305886);
    expect(report.kernels.map((k) => [k.name, k.rounds, k.instructions])).toEqual([['quicksort', 80, 49575091], ['mergesort', 50, 49730795]]);
  });

  it('refuses output without the summary line', () => {
    expect(() => parseIntbenchOutput('t', KERNELS)).toThrow(/no checksum line/);
  });

  it('refuses a FAIL verdict and a checksum other than the expected one', () => {
    expect(() => parseIntbenchOutput('t', `intbench: checksum=${INTBENCH_CHECKSUM} insns=1 FAIL\n`)).toThrow(BenchGuestError);
    expect(() => parseIntbenchOutput('t', 'intbench: checksum=0x12345678 insns=1 ok\n')).toThrow(/expected 0x2263cca8 ok/);
  });
});

describe('runIntbenchInProcess', () => {
  const { intbenchElf } = benchPaths();

  it('boots intbench.elf and counts every instruction of the run', async () => {
    const run = await runIntbenchInProcess({ elf: intbenchElf, timeoutMs: 120_000 });
    expect(run.report.checksum).toBe(INTBENCH_CHECKSUM);
    expect(run.report.kernels).toHaveLength(6);
    // minstret at power-off covers the kernels plus boot and printing.
    expect(run.instructions).toBeGreaterThan(run.report.kernelInstructions);
    expect(run.instructions - run.report.kernelInstructions).toBeLessThan(1_000_000);
    expect(run.mips).toBeCloseTo(run.instructions / (run.runMs * 1000), 6);
    expect(run.kernelLineAtMs).toHaveLength(6);
    expect([...run.kernelLineAtMs].sort((a, b) => a - b)).toEqual(run.kernelLineAtMs);
  });

  it('stops a run that outlives its timeout and says so', async () => {
    await expect(runIntbenchInProcess({ elf: intbenchElf, timeoutMs: 100 })).rejects.toThrow(/did not power off within 0.1 s/);
  });
});

describe('parseProbeOutput', () => {
  it('takes the last result line', () => {
    const line = `${PROBE_PREFIX}{"runMs":10,"wallMs":11,"instructions":1000,"mips":0.1,"firstKernelMips":0.2}`;
    expect(parseProbeOutput('p', `noise\n${line}\n`).mips).toBe(0.1);
  });

  it('refuses a missing line or a non-numeric field', () => {
    expect(() => parseProbeOutput('p', 'nothing\n')).toThrow(/no result line/);
    expect(() => parseProbeOutput('p', `${PROBE_PREFIX}{"runMs":1,"wallMs":1,"instructions":1,"firstKernelMips":1}`)).toThrow(/numeric mips/);
  });
});

describe('table helpers', () => {
  it('pads columns, right-aligning numeric ones', () => {
    const text = formatTable(['name', 'MIPS'], [['a', '5'], ['long name', '123'], ['c', null]]);
    expect(text.split('\n')).toEqual(['name       MIPS', '---------  ----', 'a             5', 'long name   123', 'c             -']);
  });

  it('rounds to significant digits and takes medians', () => {
    expect(fixed(123.456)).toBe('123');
    expect(fixed(12.3456)).toBe('12.3');
    expect(fixed(0.123456)).toBe('0.12');
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
