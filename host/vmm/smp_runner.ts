// Runs a VM's harts in parallel, one worker thread each (vcpu_worker.ts), over the VM's shared memory.
// The VMM thread keeps the devices: it sleeps in Atomics.waitAsync on each hart's doorbell and handles
// an exit when a worker rings, then lets that worker go on.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as layout from '../../assembly/abi/layout.js';
import type { Vm } from '../kvm/vm.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { VcpuExit } from '../kvm/exits.js';
import type { VcpuWorkerData } from './vcpu_worker.js';
import { compiledWorkerUrl } from '../worker_url.js';

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
 * character of a -smp 2 boot's console output on a 2-vCPU host. The vCPU thread looks as long (EXIT_SPIN_MS
 * in vcpu_worker.ts) before it sleeps on the doorbell. On one core a look only delays the other side.
 */
export const EXIT_SPIN_MS = availableParallelism() > 1 ? 0.05 : 0;
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
  private workers: Worker[] = [];
  private stopping = false;
  private flushScheduled = false;
  /** Unique per runner: vCPU threads of different VMs in one process must not share translations. */
  private readonly jitChannel = `wkvm-jit-${process.pid}-${nextRunnerId++}`;

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
    let failure: Error | null = null;
    const exited = this.vcpus.map((vcpu) => {
      const data: VcpuWorkerData = {
        module: this.vm.module,
        memory: this.vm.memory,
        hartId: vcpu.id,
        epochMs: this.vm.epochMs,
        sliceInstructions: this.sliceInstructions,
        jitChannel: this.jitChannel,
      };
      const worker = new Worker(compiledWorkerUrl(import.meta.url, 'vmm', 'vcpu_worker.js'), { workerData: data });
      this.workers.push(worker);
      return new Promise<void>((resolve) => {
        worker.on('error', (error) => {
          failure ??= new VcpuThreadError(vcpu.id, error.message);
          this.stop();
        });
        worker.on('exit', () => resolve());
      });
    });
    const serving = this.vcpus.map((vcpu) =>
      this.serve(vcpu).catch((error: unknown) => {
        failure ??= error as Error;
        this.stop();
      }),
    );
    const watching = this.handlers.watch ? setInterval(() => this.handlers.watch!(), WATCH_INTERVAL_MS) : null;
    await Promise.all(exited);
    if (watching) clearInterval(watching);
    this.stopping = true;
    this.wakeAll();
    await Promise.all(serving);
    this.handlers.afterExits();
    if (failure) throw failure;
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
        await new Promise<void>((resolve) => setImmediate(resolve));
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
    const until = performance.now() + EXIT_SPIN_MS;
    do {
      if (Atomics.load(this.words, doorbell) === 1) return true;
    } while (!this.stopping && performance.now() < until);
    return false;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.handlers.afterExits();
    });
  }
}
