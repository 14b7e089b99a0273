// The slice-size experiment: intbench's speed as a function of the instruction budget the VMM gives each
// vcpu.run() (VirtMachine's sliceInstructions). V8 tiers WebAssembly up from Liftoff to TurboFan in the
// background, but a call already running stays in the code it entered with (no on-stack replacement for
// WASM in Node 20), so a run() that never returns would stay on the baseline tier. Each configuration runs
// in a fresh Node process, so no configuration inherits another's optimised code.
import { BenchGuestError } from './errors.js';
import { runProcess } from './process.js';

export interface SliceConfig {
  readonly sliceInstructions: number;
  /** Extra V8 flags for the child, e.g. --no-liftoff to start on TurboFan code. */
  readonly nodeFlags: readonly string[];
}

export const DEFAULT_SLICE_CONFIGS: readonly SliceConfig[] = [
  { sliceInstructions: 10_000, nodeFlags: [] },
  { sliceInstructions: 100_000, nodeFlags: [] },
  { sliceInstructions: 1_000_000, nodeFlags: [] },
  { sliceInstructions: 10_000_000, nodeFlags: [] },
  { sliceInstructions: 2 ** 31 - 1, nodeFlags: [] },
  // Controls: compiled by TurboFan before the first call, the huge slice loses nothing; never tiered up,
  // the whole run shows the baseline tier's speed.
  { sliceInstructions: 1_000_000, nodeFlags: ['--no-liftoff'] },
  { sliceInstructions: 2 ** 31 - 1, nodeFlags: ['--no-liftoff'] },
  // (--no-wasm-tier-up alone is overridden by dynamic tiering in Node 20's V8 11.3.)
  { sliceInstructions: 1_000_000, nodeFlags: ['--no-wasm-tier-up', '--no-wasm-dynamic-tiering'] },
];

/** What the `slice-probe` subcommand prints as its last stdout line, after PROBE_PREFIX. */
export interface SliceProbeResult {
  readonly runMs: number;
  readonly wallMs: number;
  readonly instructions: number;
  readonly mips: number;
  /**
   * MIPS of the first kernel alone (boot to its console line). intbench's console output is MMIO, so even
   * a huge slice returns from run() at the first line: only the first kernel is one uninterrupted call.
   */
  readonly firstKernelMips: number;
}

export const PROBE_PREFIX = 'slice-probe-result ';

export interface SliceResult extends SliceConfig {
  readonly runs: readonly SliceProbeResult[];
  /** The run with the median MIPS. */
  readonly median: SliceProbeResult;
}

export interface SliceExperimentOptions {
  /** This runner's own script: the probes are `node [flags] runScript slice-probe ...`. */
  readonly runScript: string;
  readonly configs: readonly SliceConfig[];
  readonly runs: number;
  readonly timeoutMs: number;
  /** A core.wasm to measure instead of build/core.wasm. */
  readonly core: string | null;
  readonly onResult?: (result: SliceResult) => void;
}

export async function runSliceExperiment(options: SliceExperimentOptions): Promise<SliceResult[]> {
  const results: SliceResult[] = [];
  for (const config of options.configs) {
    const probes: SliceProbeResult[] = [];
    for (let i = 0; i < options.runs; i++) probes.push(await probe(options, config));
    const sorted = [...probes].sort((a, b) => a.mips - b.mips);
    const result = { ...config, runs: probes, median: sorted[Math.floor((sorted.length - 1) / 2)]! };
    options.onResult?.(result);
    results.push(result);
  }
  return results;
}

async function probe(options: SliceExperimentOptions, config: SliceConfig): Promise<SliceProbeResult> {
  const subject = `slice ${config.sliceInstructions}${config.nodeFlags.length ? ` (${config.nodeFlags.join(' ')})` : ''}`;
  const args = [...config.nodeFlags, options.runScript, 'slice-probe', '--slice', String(config.sliceInstructions),
    '--timeout', String(Math.ceil(options.timeoutMs / 1000)), ...(options.core !== null ? ['--core', options.core] : [])];
  const run = await runProcess(subject, process.execPath, args, options.timeoutMs + 30_000);
  if (run.exitCode !== 0) throw new BenchGuestError(subject, `probe exited with ${run.exitCode ?? run.signal}`, run.stdout + run.stderr);
  return parseProbeOutput(subject, run.stdout);
}

export function parseProbeOutput(subject: string, stdout: string): SliceProbeResult {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith(PROBE_PREFIX));
  if (line === undefined) throw new BenchGuestError(subject, 'the probe printed no result line', stdout);
  const value = JSON.parse(line.slice(PROBE_PREFIX.length)) as Partial<SliceProbeResult>;
  for (const key of ['runMs', 'wallMs', 'instructions', 'mips', 'firstKernelMips'] as const) {
    if (typeof value[key] !== 'number' || !Number.isFinite(value[key])) {
      throw new BenchGuestError(subject, `the probe's result has no numeric ${key}`, line);
    }
  }
  return value as SliceProbeResult;
}
