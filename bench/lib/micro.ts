// Runs the microbenchmarks under tinybench and turns step latencies into the unit each one reports:
// MIPS for instruction loops, ns per round trip for exits.
import { Bench } from 'tinybench';
import type { Hypervisor } from '../../host/kvm/hypervisor.js';
import { BenchError } from './errors.js';
import { MICRO_BENCHMARKS, type MicroBenchmark, type MicroUnit } from './micro_programs.js';

export interface MicroResult {
  readonly name: string;
  readonly measures: string;
  readonly unit: MicroUnit;
  readonly samples: number;
  /** Mean ms per step, and its relative margin of error (%). */
  readonly stepMs: number;
  readonly rme: number;
  /** Guest MIPS (instruction loops) or null. */
  readonly mips: number | null;
  /** ns per unit of work (per instruction, exit or run() call). */
  readonly nsPerUnit: number;
}

export interface MicroOptions {
  readonly hypervisor: Hypervisor;
  /** Time budget per benchmark in ms (tinybench `time`). */
  readonly timeMs: number;
  /** Only benchmarks whose name contains this (case-insensitive). */
  readonly filter?: string;
  readonly onResult?: (result: MicroResult) => void;
}

export async function runMicroBenchmarks(options: MicroOptions): Promise<MicroResult[]> {
  const selected = MICRO_BENCHMARKS.filter((b) => options.filter === undefined || b.name.toLowerCase().includes(options.filter.toLowerCase()));
  if (selected.length === 0) throw new BenchError(`no microbenchmark matches "${options.filter}"`);
  const results: MicroResult[] = [];
  for (const benchmark of selected) {
    const result = await runOne(benchmark, options);
    options.onResult?.(result);
    results.push(result);
  }
  return results;
}

async function runOne(benchmark: MicroBenchmark, options: MicroOptions): Promise<MicroResult> {
  const instance = benchmark.create(options.hypervisor);
  // One bench per benchmark, so each gets its own VM and a fresh warmup.
  const bench = new Bench({ time: options.timeMs, warmupTime: Math.min(250, options.timeMs / 4), throws: true });
  bench.add(benchmark.name, () => instance.step());
  await bench.run();
  instance.verify();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new BenchError(`${benchmark.name}: tinybench ended in state ${result.state}`);
  const stepMs = result.latency.mean;
  const nsPerUnit = (stepMs * 1e6) / benchmark.unitsPerStep;
  return {
    name: benchmark.name,
    measures: benchmark.measures,
    unit: benchmark.unit,
    samples: result.latency.samplesCount,
    stepMs,
    rme: result.latency.rme,
    mips: benchmark.unit === 'instruction' ? 1000 / nsPerUnit : null,
    nsPerUnit,
  };
}
