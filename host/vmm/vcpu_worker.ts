// A vCPU thread (SMP): runs one hart of the shared memory on its own instance of the core. Exits the core
// cannot finish alone (MMIO, SBI console, system events, errors) go to the VMM thread through the hart's
// doorbell word; WFI and stopped harts sleep on the hart's wake word. Neither side polls.
import { parentPort, workerData } from 'node:worker_threads';
import * as layout from '../../assembly/abi/layout.js';
import { instantiateCore, realTimeClock } from '../kvm/core.js';

export interface VcpuWorkerData {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly hartId: number;
  readonly epochMs: number;
  readonly sliceInstructions: number;
}

/** How long a sleeping hart waits before re-checking the stop flag, at most. */
const MAX_SLEEP_MS = 200;

function main(data: VcpuWorkerData): void {
  const core = instantiateCore(data.module, data.memory, realTimeClock(data.epochMs));
  const words = new Int32Array(data.memory.buffer);
  const base = layout.HARTS + data.hartId * layout.HART_SIZE;
  const wakeIndex = (base + layout.HART_WAKE) >> 2;
  const doorbellIndex = (base + layout.RUN_DOORBELL) >> 2;
  const stopIndex = layout.MACHINE_STOP >> 2;
  const ticksPerMs = layout.TIMEBASE_HZ / 1000;

  while (Atomics.load(words, stopIndex) === 0) {
    const wakeSeq = Atomics.load(words, wakeIndex);
    const code = core.run(data.hartId, data.sliceInstructions);
    switch (code) {
      case layout.EXIT_BUDGET:
        continue;
      case layout.EXIT_HALT: {
        const ticks = core.timerDeadline(data.hartId) - core.mtime();
        const ms = Number.isFinite(ticks) ? Math.min(Math.max(ticks / ticksPerMs, 0), MAX_SLEEP_MS) : MAX_SLEEP_MS;
        if (ms > 0) Atomics.wait(words, wakeIndex, wakeSeq, ms);
        continue;
      }
      case layout.EXIT_HART_STOPPED:
        Atomics.wait(words, wakeIndex, wakeSeq, MAX_SLEEP_MS);
        continue;
      default:
        // Hand the exit to the VMM and sleep until it is done with it.
        Atomics.store(words, doorbellIndex, 1);
        Atomics.notify(words, doorbellIndex);
        while (Atomics.load(words, doorbellIndex) === 1 && Atomics.load(words, stopIndex) === 0) {
          Atomics.wait(words, doorbellIndex, 1, MAX_SLEEP_MS);
        }
    }
  }
  parentPort?.postMessage({ type: 'stopped', hartId: data.hartId });
}

main(workerData as VcpuWorkerData);
