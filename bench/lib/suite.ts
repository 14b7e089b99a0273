// The frame every benchmark suite fits: the runner hands each suite the same context and prints what it
// returns. A new suite (the Linux boot benchmarks, say) is a file in bench/suites/ and a line in
// bench/suites/index.ts.
import type { Hypervisor } from '../../host/kvm/hypervisor.js';
import type { BenchPaths } from './paths.js';
import type { SliceConfig } from './slices.js';

/** The runner's options, parsed from the command line (see USAGE in run.ts). */
export interface RunnerOptions {
  /** Repetitions of each whole run. */
  readonly runs: number;
  readonly json: string | null;
  readonly qemu: boolean;
  readonly cli: boolean;
  readonly slices: readonly SliceConfig[];
  /** tinybench time per microbenchmark, ms. */
  readonly timeMs: number;
  readonly filter: string | undefined;
  /** Per whole run, ms. */
  readonly timeoutMs: number;
  /** A core.wasm to measure instead of build/core.wasm (the CLI runs always use build/). */
  readonly core: string | null;
}

export interface SuiteContext {
  readonly options: RunnerOptions;
  readonly paths: BenchPaths;
  /** Over the core being measured, compiled once. */
  readonly hypervisor: Hypervisor;
  /** qemu-system-riscv64, when it is on PATH. */
  readonly qemuPath: string | null;
  /** The runner's own script, for suites that run probes in fresh processes. */
  readonly runScript: string;
  /** A progress line (stderr). */
  readonly progress: (line: string) => void;
}

export interface SuiteOutcome {
  /** The human-readable tables. */
  readonly text: string;
  /** Every figure, for --json. */
  readonly figures: unknown;
}

export interface BenchSuite {
  /** The subcommand (and the key in the JSON report). */
  readonly name: string;
  readonly summary: string;
  run(context: SuiteContext): Promise<SuiteOutcome>;
}
