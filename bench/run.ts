// The benchmark runner (`npm run bench`, or `node dist/bench/run.js SUITE [options]`). The suites are in
// bench/suites/ (index.ts lists them); `all` runs every one. Tables go to stdout, progress to stderr;
// --json FILE also writes every figure.
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Hypervisor } from '../host/kvm/hypervisor.js';
import { BenchError, BenchSetupError, BenchUsageError } from './lib/errors.js';
import { benchPaths, checkBuild, findOnPath, type BenchPaths } from './lib/paths.js';
import { describeEnvironment } from './lib/environment.js';
import { runIntbenchInProcess } from './lib/intbench.js';
import { DEFAULT_SLICE_CONFIGS, PROBE_PREFIX, type SliceProbeResult } from './lib/slices.js';
import type { BenchSuite, RunnerOptions } from './lib/suite.js';
import { SUITES } from './suites/index.js';

const USAGE = `usage: node dist/bench/run.js [${SUITES.map((s) => s.name).join('|')}|all] [options]
${SUITES.map((s) => `  ${s.name.padEnd(14)}${s.summary}`).join('\n')}
  all           every suite above (the default)
options:
  --runs N        repetitions of each whole run (default 3)
  --json FILE     also write all figures as JSON to FILE
  --no-qemu       skip the QEMU comparison
  --no-cli        skip the runs of the wkvm CLI as a child process
  --slices LIST   slice sizes for the slices suite, comma-separated (default 10000,...,2147483647 and V8-flag controls)
  --time MS       tinybench time per microbenchmark (default 1000)
  --filter TEXT   only microbenchmarks whose name contains TEXT
  --timeout S     give up on a whole run after S seconds (default 300)
  --core FILE     measure this core.wasm instead of build/core.wasm (the CLI runs still use build/)`;

function positiveInteger(flag: string, text: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < 1 || value > max) {
    throw new BenchUsageError(flag, `expects a whole number from 1 to ${max}, got ${text === undefined ? 'nothing' : `"${text}"`}`);
  }
  return value;
}

interface Invocation {
  readonly suites: readonly BenchSuite[];
  readonly options: RunnerOptions;
}

/** The suites and options, or null when the user asked for help. */
function parseArguments(args: readonly string[]): Invocation | null {
  let suites: readonly BenchSuite[] = SUITES;
  let runs = 3;
  let json: string | null = null;
  let qemu = true;
  let cli = true;
  let slices = DEFAULT_SLICE_CONFIGS;
  let timeMs = 1000;
  let filter: string | undefined;
  let timeoutMs = 300_000;
  let core: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const next = args[++i];
      if (next === undefined) throw new BenchUsageError(arg, 'needs a value');
      return next;
    };
    const suite = SUITES.find((s) => s.name === arg);
    if (suite !== undefined) {
      suites = [suite];
      continue;
    }
    switch (arg) {
      case 'all': suites = SUITES; break;
      case '--runs': runs = positiveInteger(arg, value(), 100); break;
      case '--json': json = value(); break;
      case '--no-qemu': qemu = false; break;
      case '--no-cli': cli = false; break;
      case '--slices':
        slices = value().split(',').map((s) => ({ sliceInstructions: positiveInteger(arg, s.trim(), 2 ** 31 - 1), nodeFlags: [] }));
        break;
      case '--time': timeMs = positiveInteger(arg, value(), 600_000); break;
      case '--filter': filter = value(); break;
      case '--timeout': timeoutMs = positiveInteger(arg, value(), 86_400) * 1000; break;
      case '--core':
        core = resolve(value());
        if (!existsSync(core)) throw new BenchSetupError(core, 'no such core (--core)');
        break;
      case '-h': case '--help': return null;
      default: throw new BenchUsageError(arg, `unknown argument\n${USAGE}`);
    }
  }
  return { suites, options: { runs, json, qemu, cli, slices, timeMs, filter, timeoutMs, core } };
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
const print = (text: string) => process.stdout.write(`${text}\n`);

/** The hypervisor over build/core.wasm, or over the core given with --core. */
async function loadHypervisor(core: string | null): Promise<Hypervisor> {
  return core === null ? Hypervisor.create() : Hypervisor.create(pathToFileURL(core));
}

/**
 * `slice-probe --slice N [--timeout S] [--core FILE]`: one intbench run in this (fresh) process, printed
 * as one PROBE_PREFIX line for the slices suite.
 */
async function sliceProbe(args: readonly string[], paths: BenchPaths): Promise<void> {
  let slice: number | undefined;
  let timeoutMs = 300_000;
  let core: string | null = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--slice') slice = positiveInteger('--slice', args[++i], 2 ** 31 - 1);
    else if (args[i] === '--timeout') timeoutMs = positiveInteger('--timeout', args[++i], 86_400) * 1000;
    else if (args[i] === '--core' && args[i + 1] !== undefined) core = args[++i]!;
    else throw new BenchUsageError(args[i]!, 'slice-probe takes --slice N [--timeout S] [--core FILE]');
  }
  if (slice === undefined) throw new BenchUsageError('slice-probe', 'needs --slice N');
  const hypervisor = await loadHypervisor(core);
  const run = await runIntbenchInProcess({ elf: paths.intbenchElf, hypervisor, sliceInstructions: slice, timeoutMs });
  const first = run.report.kernels[0];
  const firstAtMs = run.kernelLineAtMs[0];
  const result: SliceProbeResult = {
    runMs: run.runMs, wallMs: run.wallMs, instructions: run.instructions, mips: run.mips,
    firstKernelMips: first !== undefined && firstAtMs !== undefined ? first.instructions / (firstAtMs * 1000) : NaN,
  };
  print(PROBE_PREFIX + JSON.stringify(result));
}

async function main(argv: readonly string[]): Promise<void> {
  const paths = benchPaths();
  if (argv[0] === 'slice-probe') {
    checkBuild(paths, () => {});
    await sliceProbe(argv.slice(1), paths);
    return;
  }
  const invocation = parseArguments(argv);
  if (invocation === null) {
    print(USAGE);
    return;
  }
  const { suites, options } = invocation;
  checkBuild(paths, (line) => progress(`warning: ${line}`));
  const qemuPath = findOnPath('qemu-system-riscv64');
  const environment = { ...describeEnvironment(paths.root, qemuPath), core: options.core ?? paths.coreWasm };
  print(`wkvm bench ${environment.date} | node ${environment.node} (V8 ${environment.v8}) | ${environment.cpu} × ${environment.cores}, ` +
    `load ${environment.loadAverage.toFixed(2)} | commit ${environment.commit ?? 'unknown'}` +
    `${environment.dirty ? ' (uncommitted changes in assembly/ or host/)' : ''}` +
    (environment.qemu ? ` | ${environment.qemu}` : '') + ` | core ${options.core ?? 'build/core.wasm'}`);
  const hypervisor = await loadHypervisor(options.core);
  const context = { options, paths, hypervisor, qemuPath, runScript: fileURLToPath(import.meta.url), progress };
  const report: Record<string, unknown> = { environment };
  for (const suite of suites) {
    const outcome = await suite.run(context);
    print(`\n${outcome.text}`);
    report[suite.name] = outcome.figures;
  }
  if (options.json !== null) {
    writeFileSync(options.json, `${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`);
    progress(`wrote ${options.json}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof BenchError) {
    process.stderr.write(`bench: error: ${error.message}\n`);
  } else {
    process.stderr.write(`bench: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exitCode = 1;
});
