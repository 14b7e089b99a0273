// Runs a VM's harts in parallel, one worker thread each, over the VM's shared memory: Node worker_threads
// (vcpu_worker.ts) or, in a browser, module Web Workers (vcpu_web_worker.ts); both run vcpu_thread.ts.
// The VMM thread keeps the devices: it sleeps in Atomics.waitAsync on each hart's doorbell and handles
// an exit when a worker rings, then lets that worker go on.
import * as layout from '../../assembly/abi/layout.js';
import type { Vm } from '../kvm/vm.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { VcpuExit } from '../kvm/exits.js';
import type { VcpuWorkerData } from './vcpu_thread.js';
import { yieldToEventLoop } from './event_loop.js';

export interface SmpHandlers {
  /** Handles one exit of `vcpu` (as the single-threaded loop would). */
  handleExit(vcpu: Vcpu, exit: VcpuExit): void;
  /** True once the VM should stop (poweroff, reset, Ctrl-A x). */
  isDone(): boolean;
  /** Called after a batch of exits: flush console output. */
  afterExits(): void;
  /** Called every WATCH_INTERVAL_MS while the harts run (diagnostics that sample them). */
  watch?(): void;
}

let nextRunnerId = 0;

/** How often `SmpHandlers.watch` runs. */
const WATCH_INTERVAL_MS = 250;
/**
 * After handling an exit, how long the VMM thread keeps looking at that hart's doorbell before it sleeps.
 * Exits come in bursts (a console line is two per character: the 8250 driver reads LSR, then writes THR),
 * and each one that finds the VMM asleep in Atomics.waitAsync costs an event-loop wake-up: ~60 µs per
 * character of a -smp 2 boot's console output on a 2-vCPU host. The vCPU thread looks as long
 * (VcpuWorkerData.exitSpinMs) before it sleeps on the doorbell. On one core a look only delays the other side.
 */
const EXIT_SPIN_MS = 0.05;
/** Whether this is Node (worker_threads) rather than a browser (Web Workers). */
const IN_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
/** How often pause() looks again at the count of held workers if no worker's arrival woke it. */
const PAUSE_POLL_MS = 50;
/** The longest the VMM thread handles one hart's exits back to back before it lets the event loop in. */
const EXIT_BURST_MS = 2;

export class VcpuThreadError extends Error {
  constructor(readonly hartId: number, reason: string) {
    super(`vCPU ${hartId} thread failed: ${reason}`);
    this.name = 'VcpuThreadError';
  }
}

export class SmpRunner {
  private readonly words: Int32Array;
  private stopping = false;
  private flushScheduled = false;
  /** Unique per runner: vCPU threads of different VMs in one process must not share translations. */
  private readonly jitChannel = IN_NODE ? `wkvm-jit-${process.pid}-${nextRunnerId++}` : undefined;
  private exitSpinMs = 0;

  constructor(
    private readonly vm: Vm,
    private readonly vcpus: readonly Vcpu[],
    private readonly handlers: SmpHandlers,
    private readonly sliceInstructions: number,
  ) {
    this.words = new Int32Array(vm.memory.buffer);
  }

  async run(): Promise<void> {
    Atomics.store(this.words, layout.MACHINE_STOP >> 2, 0);
    this.exitSpinMs = (await hostCores()) > 1 ? EXIT_SPIN_MS : 0;
    let failure: Error | null = null;
    const threads = await Promise.all(this.vcpus.map((vcpu) => {
      const data: VcpuWorkerData = {
        module: this.vm.module,
        memory: this.vm.memory,
        hartId: vcpu.id,
        epochMs: this.vm.epochMs,
        sliceInstructions: this.sliceInstructions,
        exitSpinMs: this.exitSpinMs,
        jitChannel: this.jitChannel,
      };
      return startVcpuThread(data, (reason) => {
        failure ??= new VcpuThreadError(vcpu.id, reason);
        this.stop();
      });
    }));
    const serving = this.vcpus.map((vcpu) =>
      this.serve(vcpu).catch((error: unknown) => {
        failure ??= error as Error;
        this.stop();
      }),
    );
    const watching = this.handlers.watch ? setInterval(() => this.handlers.watch!(), WATCH_INTERVAL_MS) : null;
    await Promise.all(threads.map((thread) => thread.exited));
    if (watching) clearInterval(watching);
    this.stopping = true;
    this.wakeAll();
    await Promise.all(serving);
    this.handlers.afterExits();
    if (failure) throw failure;
  }

  /**
   * Holds every worker at its next slice boundary (their loops check MACHINE_PAUSE) and resolves once
   * all hold, or the run ends. Exits rung meanwhile are served as usual, so a worker waiting on its
   * doorbell gets to its boundary.
   */
  async pause(): Promise<void> {
    const pausedIndex = layout.MACHINE_PAUSED_HARTS >> 2;
    Atomics.store(this.words, layout.MACHINE_PAUSE >> 2, 1);
    this.wakeAll();
    for (;;) {
      const held = Atomics.load(this.words, pausedIndex);
      if (held >= this.vcpus.length || this.stopping || Atomics.load(this.words, layout.MACHINE_STOP >> 2) !== 0) return;
      const wait = Atomics.waitAsync(this.words, pausedIndex, held, PAUSE_POLL_MS);
      if (wait.async) await wait.value;
    }
  }

  /** Lets held workers run on. */
  resume(): void {
    Atomics.store(this.words, layout.MACHINE_PAUSE >> 2, 0);
    Atomics.notify(this.words, layout.MACHINE_PAUSE >> 2);
  }

  /** Makes every worker return (their loops check MACHINE_STOP) and wakes whatever sleeps. */
  stop(): void {
    Atomics.store(this.words, layout.MACHINE_STOP >> 2, 1);
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const vcpu of this.vcpus) {
      const base = layout.HARTS + vcpu.id * layout.HART_SIZE;
      Atomics.add(this.words, (base + layout.HART_WAKE) >> 2, 1);
      Atomics.notify(this.words, (base + layout.HART_WAKE) >> 2);
      Atomics.notify(this.words, (base + layout.RUN_DOORBELL) >> 2);
    }
    Atomics.notify(this.words, layout.MACHINE_PAUSE >> 2);
  }

  private async serve(vcpu: Vcpu): Promise<void> {
    const doorbell = (layout.HARTS + vcpu.id * layout.HART_SIZE + layout.RUN_DOORBELL) >> 2;
    let burstStart = performance.now();
    while (!this.stopping) {
      if (!this.exitRung(doorbell)) {
        const wait = Atomics.waitAsync(this.words, doorbell, 0);
        if (wait.async) await wait.value;
        burstStart = performance.now();
      } else if (performance.now() - burstStart > EXIT_BURST_MS) {
        // Console input, timers and disk completions wait on the event loop.
        await yieldToEventLoop();
        burstStart = performance.now();
      }
      if (Atomics.load(this.words, doorbell) !== 1) continue;
      this.handlers.handleExit(vcpu, vcpu.exitFromRunArea());
      if (this.handlers.isDone()) this.stop();
      Atomics.store(this.words, doorbell, 0);
      Atomics.notify(this.words, doorbell);
      this.scheduleFlush();
    }
  }

  /** Whether the hart rings its doorbell within EXIT_SPIN_MS. */
  private exitRung(doorbell: number): boolean {
    const until = performance.now() + this.exitSpinMs;
    do {
      if (Atomics.load(this.words, doorbell) === 1) return true;
    } while (!this.stopping && performance.now() < until);
    return false;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    void yieldToEventLoop().then(() => {
      this.flushScheduled = false;
      this.handlers.afterExits();
    });
  }
}

/** The host's cores (a look at the doorbell pays only when the other side runs on another one). */
async function hostCores(): Promise<number> {
  if (!IN_NODE) return globalThis.navigator?.hardwareConcurrency ?? 1;
  const { availableParallelism } = await import('node:os');
  return availableParallelism();
}

/** A started vCPU thread: `exited` settles when it has gone. */
interface VcpuThread {
  readonly exited: Promise<void>;
}

/**
 * Starts the thread of one hart. `onError` gets the reason a thread failed (it then goes). (The thread
 * comes wrapped: an async function cannot resolve to a promise, only to what that promise settles to.)
 */
async function startVcpuThread(data: VcpuWorkerData, onError: (reason: string) => void): Promise<VcpuThread> {
  if (IN_NODE) {
    const { Worker } = await import('node:worker_threads');
    const { compiledWorkerUrl } = await import('../worker_url.js');
    const worker = new Worker(compiledWorkerUrl(import.meta.url, 'vmm', 'vcpu_worker.js'), { workerData: data });
    const exited = new Promise<void>((resolve) => {
      worker.on('error', (error) => onError(error.message));
      worker.on('exit', () => resolve());
    });
    return { exited };
  }
  // A module Web Worker: its data (the compiled core and the shared memory) comes in the first message.
  const worker = new Worker(new URL('./vcpu_web_worker.js', import.meta.url), { type: 'module' });
  const exited = new Promise<void>((resolve) => {
    worker.onmessage = (event: MessageEvent<{ type?: string }>) => {
      if (event.data?.type !== 'stopped') return;
      worker.terminate();
      resolve();
    };
    worker.onerror = (event) => {
      onError(event.message || 'the worker failed to start');
      worker.terminate();
      resolve();
    };
  });
  worker.postMessage(data);
  return { exited };
}
