// A vCPU thread (SMP): runs one hart of the shared memory on its own instance of the core. Exits the core
// cannot finish alone (MMIO, SBI console, system events, errors) go to the VMM thread through the hart's
// doorbell word; WFI and stopped harts sleep on the hart's wake word. Neither side polls, but for a moment
// after an exit (EXIT_SPIN_MS), when the next one is likely to follow.
// Translated code is shared: each module of translated blocks a thread compiles goes to the VM's other vCPU
// threads on a BroadcastChannel, and each takes it into its hart's block cache between run() calls.
import { BroadcastChannel, parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import * as layout from '../../assembly/abi/layout.js';
import { createCoreInstance, realTimeClock, type TranslatedBatch } from '../kvm/core.js';
import { EXIT_SPIN_MS } from './smp_runner.js';

export interface VcpuWorkerData {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly hartId: number;
  readonly epochMs: number;
  readonly sliceInstructions: number;
  /** The BroadcastChannel name on which the VM's vCPU threads share translated code; none: no sharing. */
  readonly jitChannel?: string;
}

/** How long a sleeping hart waits before re-checking the stop flag, at most. */
const MAX_SLEEP_MS = 200;

function main(data: VcpuWorkerData): void {
  const channel = data.jitChannel === undefined ? null : new BroadcastChannel(data.jitChannel);
  channel?.unref();
  // Node reads a BroadcastChannel like a MessagePort with receiveMessageOnPort (its type declarations predate that).
  const port = channel as unknown as MessagePort | null;
  const instance = createCoreInstance(data.module, data.memory, realTimeClock(data.epochMs), {
    onCompiled: channel === null ? undefined : (batch) => channel.postMessage(batch),
  });
  const core = instance.exports;
  const adoptShared = (): void => {
    if (port === null) return;
    for (let message = receiveMessageOnPort(port); message !== undefined; message = receiveMessageOnPort(port)) {
      instance.adopt(data.hartId, message.message as TranslatedBatch);
    }
  };
  const words = new Int32Array(data.memory.buffer);
  const base = layout.HARTS + data.hartId * layout.HART_SIZE;
  const wakeIndex = (base + layout.HART_WAKE) >> 2;
  const doorbellIndex = (base + layout.RUN_DOORBELL) >> 2;
  const stopIndex = layout.MACHINE_STOP >> 2;
  const ticksPerMs = layout.TIMEBASE_HZ / 1000;

  while (Atomics.load(words, stopIndex) === 0) {
    const wakeSeq = Atomics.load(words, wakeIndex);
    adoptShared();
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
        // Hand the exit to the VMM and wait until it is done with it: a while looking (the VMM, looking too
        // after its last exit, usually is done in a few µs), then asleep.
        Atomics.store(words, doorbellIndex, 1);
        Atomics.notify(words, doorbellIndex);
        for (const until = performance.now() + EXIT_SPIN_MS; Atomics.load(words, doorbellIndex) === 1 && performance.now() < until;) { /* spin */ }
        while (Atomics.load(words, doorbellIndex) === 1 && Atomics.load(words, stopIndex) === 0) {
          Atomics.wait(words, doorbellIndex, 1, MAX_SLEEP_MS);
        }
    }
  }
  channel?.close();
  parentPort?.postMessage({ type: 'stopped', hartId: data.hartId });
}

main(workerData as VcpuWorkerData);
