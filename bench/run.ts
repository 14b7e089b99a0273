// The benchmark runner (`npm run bench`, or `node dist/bench/run.js SUITE [options]`). Suites:
//   intbench  intbench.elf booted whole: wkvm in this process, the wkvm CLI, and QEMU when installed
//   slices    intbench's MIPS as a function of the run() slice size, each in a fresh process
//   micro     tinybench microbenchmarks of the core and the exit path
//   all       the three above
// Tables go to stdout, progress to stderr; --json FILE also writes every figure.
import { writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Hypervisor } from '../host/kvm/hypervisor.js';
import { BenchError, BenchSetupError, BenchUsageError } from './lib/errors.js';
import { benchPaths, checkBuild, findOnPath, type BenchPaths } from './lib/paths.js';
import { describeEnvironment, type BenchEnvironment } from './lib/environment.js';
import {
  runIntbenchInProcess, runIntbenchProcess, qemuIntbenchArgs, wkvmCliIntbenchArgs,
  type WkvmIntbenchRun, type ProcessIntbenchRun,
} from './lib/intbench.js';
import { runSliceExperiment, DEFAULT_SLICE_CONFIGS, PROBE_PREFIX, type SliceConfig, type SliceResult, type SliceProbeResult } from './lib/slices.js';
import { runMicroBenchmarks, type MicroResult } from './lib/micro.js';
import { formatTable, fixed, median, type Cell } from './lib/table.js';

const USAGE = `usage: node dist/bench/run.js [intbench|slices|micro|all] [options]
  --runs N        repetitions of each whole run (default 3)
  --json FILE     also write all figures as JSON to FILE
  --no-qemu       skip the QEMU comparison
  --no-cli        skip the runs of the wkvm CLI as a child process
  --slices LIST   slice sizes for the slices suite, comma-separated (default 10000,...,2147483647 and two --no-liftoff controls)
  --time MS       tinybench time per microbenchmark (default 1000)
  --filter TEXT   only microbenchmarks whose name contains TEXT
  --timeout S     give up on a whole run after S seconds (default 300)
  --core FILE     measure this core.wasm instead of build/core.wasm (the CLI runs still use build/)`;

type Suite = 'intbench' | 'slices' | 'micro' | 'all';

interface Options {
  readonly suite: Suite;
  readonly runs: number;
  readonly json: string | null;
  readonly qemu: boolean;
  readonly cli: boolean;
  readonly slices: readonly SliceConfig[];
  readonly timeMs: number;
  readonly filter: string | undefined;
  readonly timeoutMs: number;
  /** A core.wasm to measure instead of build/core.wasm (the CLI runs always use build/). */
  readonly core: string | null;
}

function positiveInteger(flag: string, text: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < 1 || value > max) {
    throw new BenchUsageError(flag, `expects a whole number from 1 to ${max}, got ${text === undefined ? 'nothing' : `"${text}"`}`);
  }
  return value;
}

/** The options, or null when the user asked for help. */
function parseOptions(args: readonly string[]): Options | null {
  let suite: Suite = 'all';
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
    switch (arg) {
      case 'intbench': case 'slices': case 'micro': case 'all': suite = arg; break;
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
  return { suite, runs, json, qemu, cli, slices, timeMs, filter, timeoutMs, core };
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
const print = (text: string) => process.stdout.write(`${text}\n`);

// ---- intbench ----

interface IntbenchFigures {
  readonly instructions: number;
  readonly wkvm: readonly WkvmIntbenchRun[];
  readonly wkvmCli: readonly ProcessIntbenchRun[] | null;
  readonly qemu: readonly ProcessIntbenchRun[] | null;
  readonly qemuSkipped: string | null;
  /** Median wall times over QEMU's: in-process wkvm, and the wkvm CLI process. */
  readonly ratioInProcess: number | null;
  readonly ratioCli: number | null;
}

async function intbenchSuite(options: Options, paths: BenchPaths, hypervisor: Hypervisor, qemuPath: string | null): Promise<IntbenchFigures> {
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

function printIntbench(figures: IntbenchFigures): void {
  const n = figures.instructions;
  const mipsOf = (ms: number) => n / (ms * 1000);
  const rows: Cell[][] = [];
  const wall = figures.wkvm.map((r) => r.wallMs);
  const run = figures.wkvm.map((r) => r.runMs);
  rows.push(['wkvm (in-process, create+run)', fixed(median(wall)), fixed(Math.min(...wall)), fixed(mipsOf(median(wall))), fixed(mipsOf(Math.min(...wall))), 'ok']);
  rows.push(['wkvm (in-process, run only)', fixed(median(run)), fixed(Math.min(...run)), fixed(mipsOf(median(run))), fixed(mipsOf(Math.min(...run))), 'ok']);
  if (figures.wkvmCli) {
    const cli = figures.wkvmCli.map((r) => r.wallMs);
    rows.push(['wkvm CLI (process)', fixed(median(cli)), fixed(Math.min(...cli)), fixed(mipsOf(median(cli))), fixed(mipsOf(Math.min(...cli))), 'ok']);
  }
  if (figures.qemu) {
    const q = figures.qemu.map((r) => r.wallMs);
    rows.push(['QEMU TCG (process)', fixed(median(q)), fixed(Math.min(...q)), fixed(mipsOf(median(q))), fixed(mipsOf(Math.min(...q))), 'ok']);
  }
  print(`\nintbench: ${n} instructions (wkvm minstret, boot included), ${figures.wkvm.length} runs each`);
  print(formatTable(['subject', 'median ms', 'best ms', 'MIPS (median)', 'MIPS (best)', 'checksum'], rows));
  print(`per-run in-process ms: ${figures.wkvm.map((r) => fixed(r.runMs)).join(', ')} (run 1 includes V8's tier-up to TurboFan)`);
  if (figures.qemuSkipped) print(`QEMU: ${figures.qemuSkipped}`);
  if (figures.ratioInProcess !== null) {
    print(`wkvm/QEMU wall time: ${fixed(figures.ratioInProcess)}× in-process` +
      (figures.ratioCli !== null ? `, ${fixed(figures.ratioCli)}× CLI process vs QEMU process` : ''));
  }
  // Per kernel, from when the guest wrote each line's newline.
  const last = figures.wkvm[figures.wkvm.length - 1]!;
  const kernelRows = last.report.kernels.map((k, i) => {
    const ms = last.kernelLineAtMs[i]! - (i === 0 ? 0 : last.kernelLineAtMs[i - 1]!);
    return [k.name, k.instructions, fixed(ms), fixed(k.instructions / (ms * 1000))];
  });
  print(`\nintbench kernels (last in-process run; time between the newlines of consecutive kernel lines):`);
  print(formatTable(['kernel', 'instructions', '~ms', '~MIPS'], kernelRows));
}

// ---- slices ----

function printSlices(results: readonly SliceResult[]): void {
  print('\nslice-size experiment: intbench, each run in a fresh node process (median of runs)');
  print(formatTable(['slice (instructions)', 'node flags', 'run ms', 'MIPS', '1st kernel MIPS', 'all runs MIPS'], results.map((r) => [
    r.sliceInstructions, r.nodeFlags.join(' ') || '-', fixed(r.median.runMs), fixed(r.median.mips), fixed(median(r.runs.map((p) => p.firstKernelMips))),
    r.runs.map((p) => fixed(p.mips)).join(' / '),
  ])));
  print('(the console is MMIO: every run() returns at least at each printed line, so a huge slice is one call only until the first kernel prints)');
}

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

// ---- micro ----

function printMicro(results: readonly MicroResult[]): void {
  print('\nmicrobenchmarks (tinybench; instruction loops run in 1,000,000-instruction run() slices)');
  print(formatTable(['benchmark', 'MIPS', 'ns/unit', 'unit', '±%', 'samples'], results.map((r) => [
    r.name, r.mips === null ? null : fixed(r.mips), fixed(r.nsPerUnit), r.unit, fixed(r.rme, 2), r.samples,
  ])));
}

// ---- main ----

/** The hypervisor over build/core.wasm, or over the core given with --core. */
async function loadHypervisor(core: string | null): Promise<Hypervisor> {
  if (core === null) return Hypervisor.create();
  return Hypervisor.create(pathToFileURL(core));
}

interface JsonReport {
  environment: BenchEnvironment & { core: string };
  intbench?: IntbenchFigures;
  slices?: readonly SliceResult[];
  micro?: readonly MicroResult[];
}

async function main(argv: readonly string[]): Promise<void> {
  const paths = benchPaths();
  if (argv[0] === 'slice-probe') {
    checkBuild(paths, () => {});
    await sliceProbe(argv.slice(1), paths);
    return;
  }
  const options = parseOptions(argv);
  if (options === null) {
    print(USAGE);
    return;
  }
  checkBuild(paths, (line) => progress(`warning: ${line}`));
  const qemuPath = findOnPath('qemu-system-riscv64');
  const environment = describeEnvironment(paths.root, qemuPath);
  print(`wkvm bench ${environment.date} | node ${environment.node} (V8 ${environment.v8}) | ${environment.cpu} × ${environment.cores}, load ${environment.loadAverage.toFixed(2)} | ` +
    `commit ${environment.commit ?? 'unknown'}${environment.dirty ? ' (uncommitted changes in assembly/ or host/)' : ''}` +
    (environment.qemu ? ` | ${environment.qemu}` : '') + ` | core ${options.core ?? 'build/core.wasm'}`);
  const hypervisor = await loadHypervisor(options.core);
  const report: JsonReport = { environment: { ...environment, core: options.core ?? paths.coreWasm } };
  const wants = (suite: Suite) => options.suite === suite || options.suite === 'all';

  if (wants('intbench')) {
    const figures = await intbenchSuite(options, paths, hypervisor, qemuPath);
    printIntbench(figures);
    report.intbench = figures;
  }
  if (wants('slices')) {
    const runScript = fileURLToPath(import.meta.url);
    const results = await runSliceExperiment({
      runScript, configs: options.slices, runs: options.runs, timeoutMs: options.timeoutMs, core: options.core,
      onResult: (r) => progress(`slice ${r.sliceInstructions}${r.nodeFlags.length ? ` ${r.nodeFlags.join(' ')}` : ''}: ${fixed(r.median.mips)} MIPS`),
    });
    printSlices(results);
    report.slices = results;
  }
  if (wants('micro')) {
    const results = await runMicroBenchmarks({
      hypervisor, timeMs: options.timeMs, filter: options.filter,
      onResult: (r) => progress(`micro ${r.name}: ${r.mips !== null ? `${fixed(r.mips)} MIPS` : `${fixed(r.nsPerUnit)} ns/${r.unit}`}`),
    });
    printMicro(results);
    report.micro = results;
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
