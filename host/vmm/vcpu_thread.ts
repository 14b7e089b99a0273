// The body of a vCPU thread (SMP), shared by the Node worker (vcpu_worker.ts) and the browser's Web
// Worker (vcpu_web_worker.ts): runs one hart of the shared memory on its own instance of the core. Exits
// the core cannot finish alone (MMIO, SBI console, system events, errors) go to the VMM thread through the
// hart's doorbell word; WFI and stopped harts sleep on the hart's wake word. Neither side polls, but for a
// moment after an exit (exitSpinMs), when the next one is likely to follow. Nothing here needs Node.
import * as layout from '../../assembly/abi/layout.js';
import { createCoreInstance, realTimeClock, type TranslatedBatch } from '../kvm/core.js';

export interface VcpuWorkerData {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly hartId: number;
  readonly epochMs: number;
  readonly sliceInstructions: number;
  /** How long the thread looks at its doorbell after an exit before it sleeps (0 on one core). */
  readonly exitSpinMs: number;
  /** The BroadcastChannel name on which the VM's vCPU threads share translated code; none: no sharing. */
  readonly jitChannel?: string;
}

/** How the thread shares translated code with the VM's other vCPU threads. */
export interface TranslationSharing {
  /** Sends a batch this thread compiled. */
  publish(batch: TranslatedBatch): void;
  /** The batches other threads sent since the last call (read without returning to the event loop). */
  received(): Iterable<TranslatedBatch>;
}

/** How long a sleeping hart waits before re-checking the stop flag, at most. */
const MAX_SLEEP_MS = 200;

/** Runs the hart until the VMM sets MACHINE_STOP. */
export function runVcpuThread(data: VcpuWorkerData, sharing: TranslationSharing | null): void {
  const instance = createCoreInstance(data.module, data.memory, realTimeClock(data.epochMs), {
    onCompiled: sharing === null ? undefined : (batch) => sharing.publish(batch),
  });
  const core = instance.exports;
  const words = new Int32Array(data.memory.buffer);
  const base = layout.HARTS + data.hartId * layout.HART_SIZE;
  const wakeIndex = (base + layout.HART_WAKE) >> 2;
  const doorbellIndex = (base + layout.RUN_DOORBELL) >> 2;
  const stopIndex = layout.MACHINE_STOP >> 2;
  const pauseIndex = layout.MACHINE_PAUSE >> 2;
  const pausedHartsIndex = layout.MACHINE_PAUSED_HARTS >> 2;
  const ticksPerMs = layout.TIMEBASE_HZ / 1000;

  while (Atomics.load(words, stopIndex) === 0) {
    if (Atomics.load(words, pauseIndex) !== 0) {
      holdWhilePaused(words, pauseIndex, pausedHartsIndex, stopIndex);
      continue;
    }
    const wakeSeq = Atomics.load(words, wakeIndex);
    if (sharing !== null) for (const batch of sharing.received()) instance.adopt(data.hartId, batch);
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
        for (const until = performance.now() + data.exitSpinMs; Atomics.load(words, doorbellIndex) === 1 && performance.now() < until;) { /* spin */ }
        while (Atomics.load(words, doorbellIndex) === 1 && Atomics.load(words, stopIndex) === 0) {
          Atomics.wait(words, doorbellIndex, 1, MAX_SLEEP_MS);
        }
    }
  }
}

/**
 * The VM is paused (the monitor's stop): counts this hart among the held ones, for the VMM waiting on
 * that count, and sleeps until the pause ends or the VM stops.
 */
function holdWhilePaused(words: Int32Array, pauseIndex: number, pausedHartsIndex: number, stopIndex: number): void {
  Atomics.add(words, pausedHartsIndex, 1);
  Atomics.notify(words, pausedHartsIndex);
  while (Atomics.load(words, pauseIndex) !== 0 && Atomics.load(words, stopIndex) === 0) {
    Atomics.wait(words, pauseIndex, 1, MAX_SLEEP_MS);
  }
  Atomics.sub(words, pausedHartsIndex, 1);
}
