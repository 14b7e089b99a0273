// Disk I/O on a dedicated thread instead of libuv's pool. Both do the system call on another thread so
// the vCPU never waits on the disk; the difference is the round trip. A libuv request wakes a sleeping
// pool thread and then the event loop (48 µs median per page-cached 4 KiB read on this project's 2-vCPU
// VMs, with the VMM polling); this thread keeps looking for work for WORKER_SPIN_MS after each request,
// and the VMM looks for finished requests in shared memory between vCPU slices (pollBlockIo), so the
// same read completes in ~4 µs. When nobody polls, Atomics.waitAsync delivers the completion.
//
// One thread serves every file of the process, one request at a time in submission order; a VMM whose
// only hart waits for a request the thread has not started does it itself (performOne), so requests may
// finish out of order, and are delivered in order. Requests it cannot take (ring full, large requests:
// LARGE_REQUEST_BYTES) return null from submit() and the caller uses libuv's pool, which also gives
// concurrency under load.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { compiledWorkerUrl } from '../worker_url.js';
import { registerBlockIoPoller } from './io_hooks.js';
import { performIo } from './io_perform.js';
import { totalLength } from './scatter.js';
import {
  HEADER_BYTES, HEADER_COMPLETED, HEADER_DONE_BASE, HEADER_MAX_SPIN_US, HEADER_STOP, HEADER_SUBMITTED, HEADER_TAKEN, IoOp, LARGE_REQUEST_BYTES, MAX_SEGMENTS, RING_BUFFER_ID, RING_BYTES, RING_SLOTS, SLOT_FD, SLOT_FLOATS,
  SLOT_OP, SLOT_POSITION, SLOT_RESULT, SLOT_SEGMENT_BASE, SLOT_SEGMENTS, SLOTS_OFFSET, STAGING_BYTES, STAGING_OFFSET, WORKER_SPIN_MS,
  type BufferRegistration, type IoOpCode,
} from './io_ring.js';

export { IoOp, type IoOpCode } from './io_ring.js';

interface Waiter {
  readonly op: IoOpCode;
  readonly fd: number;
  readonly position: number;
  readonly views: readonly Uint8Array[];
  readonly resolve: (bytes: number) => void;
  readonly reject: (error: Error) => void;
  /** Whether `views` are outside shared memory, so the worker moves them through the slot's staging area. */
  readonly staged: boolean;
  /** Whether the VMM's thread did the request itself (straight into `views`). */
  doneHere: boolean;
}

const OP_NAMES = ['preadv', 'pwritev', 'fdatasync'] as const;

const workerUrl = (): URL => compiledWorkerUrl(import.meta.url, 'block', 'io_thread_worker.js');

export class BlockIoThread {
  private static sharedThread: BlockIoThread | null | undefined;

  /**
   * The process's I/O thread, started on first use and registered as the VMM's block I/O poller
   * (io_hooks.ts); null where it cannot start (no compiled worker).
   */
  static shared(): BlockIoThread | null {
    if (BlockIoThread.sharedThread === undefined) {
      const url = workerUrl();
      const thread = existsSync(fileURLToPath(url)) ? new BlockIoThread({ url }) : null;
      BlockIoThread.sharedThread = thread;
      if (thread !== null) {
        registerBlockIoPoller({
          poll: () => thread.poll(),
          performOne: () => thread.performOne(),
          get submittedCount() {
            return thread.submitted;
          },
          allowSpin: (allowed) => {
            thread.maxSpinMs = allowed ? WORKER_SPIN_MS : 0;
          },
        });
      }
    }
    return BlockIoThread.sharedThread;
  }

  private readonly ring = new SharedArrayBuffer(RING_BYTES);
  private readonly header = new Int32Array(this.ring, 0, HEADER_BYTES >> 2);
  private readonly slots = new Float64Array(this.ring, SLOTS_OFFSET, RING_SLOTS * SLOT_FLOATS);
  private readonly waiters: (Waiter | undefined)[] = new Array<Waiter | undefined>(RING_SLOTS);
  private readonly worker: Worker;
  private readonly registrations: MessagePort;
  private readonly bufferIds = new WeakMap<SharedArrayBuffer, number>();
  /** Tells the worker to drop a buffer the VMM no longer has (a finished VM's RAM). */
  private readonly forget = new FinalizationRegistry<number>((id) => this.registrations.postMessage({ id, buffer: null }));
  private nextBufferId = RING_BUFFER_ID + 1;
  private submitted = 0;
  private delivered = 0;
  private waitArmed = false;
  /** HEADER_COMPLETED when poll() last looked: everything finished before then it has delivered, or will at the next look. */
  private completedSeen = 0;
  private failure: Error | null = null;

  constructor(options: { url?: URL; spinMs?: number } = {}) {
    this.maxSpinMs = options.spinMs ?? WORKER_SPIN_MS;
    const channel = new MessageChannel();
    this.registrations = channel.port1;
    this.worker = new Worker(options.url ?? workerUrl(), {
      workerData: { ring: this.ring, registrations: channel.port2 },
      transferList: [channel.port2],
    });
    this.worker.unref();
    this.registrations.unref();
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the disk I/O thread exited (code ${code})`)));
  }

  /**
   * The longest the worker looks for the next request before it sleeps. A spin pays when the VMM polls
   * (one vCPU on the VMM's thread); with vCPU threads the cores are theirs, so the VMM sets 0 then.
   */
  set maxSpinMs(ms: number) {
    Atomics.store(this.header, HEADER_MAX_SPIN_US, Math.max(0, Math.round(ms * 1000)));
  }

  /** Requests submitted and not yet delivered. */
  get pending(): number {
    return (this.submitted - this.delivered) | 0;
  }

  /**
   * Starts `op` on the thread: a vectored read or write of `views` at `position` in `fd`, or an
   * fdatasync. Settles with the bytes moved (fewer than asked only for a read at end of file) or a
   * Node-style system error. Null when the thread cannot take it: do the I/O another way.
   */
  submit(op: IoOpCode, fd: number, position: number, views: readonly Uint8Array[]): Promise<number> | null {
    if (this.failure !== null || this.pending >= RING_SLOTS || views.length > MAX_SEGMENTS) return null;
    const bytes = totalLength(views);
    if (bytes > LARGE_REQUEST_BYTES) return null;
    const staged = views.some((view) => !(view.buffer instanceof SharedArrayBuffer));
    if (staged && bytes > STAGING_BYTES) return null;

    const slot = this.submitted & (RING_SLOTS - 1);
    const base = slot * SLOT_FLOATS;
    const slots = this.slots;
    slots[base + SLOT_OP] = op;
    slots[base + SLOT_FD] = fd;
    slots[base + SLOT_POSITION] = position;
    if (staged) {
      const staging = STAGING_OFFSET + slot * STAGING_BYTES;
      if (op === IoOp.write) {
        let at = staging;
        for (const view of views) {
          new Uint8Array(this.ring, at, view.length).set(view);
          at += view.length;
        }
      }
      slots[base + SLOT_SEGMENTS] = 1;
      slots[base + SLOT_SEGMENT_BASE] = RING_BUFFER_ID;
      slots[base + SLOT_SEGMENT_BASE + 1] = staging;
      slots[base + SLOT_SEGMENT_BASE + 2] = bytes;
    } else {
      slots[base + SLOT_SEGMENTS] = views.length;
      for (let i = 0; i < views.length; i++) {
        const view = views[i]!;
        const at = base + SLOT_SEGMENT_BASE + 3 * i;
        slots[at] = this.bufferId(view.buffer as SharedArrayBuffer);
        slots[at + 1] = view.byteOffset;
        slots[at + 2] = view.length;
      }
    }
    const promise = new Promise<number>((resolve, reject) => {
      this.waiters[slot] = { op, fd, position, views, resolve, reject, staged, doneHere: false };
    });
    if (this.pending === 0) this.worker.ref();
    this.submitted = (this.submitted + 1) | 0;
    Atomics.store(this.header, HEADER_SUBMITTED, this.submitted);
    Atomics.notify(this.header, HEADER_SUBMITTED);
    this.armWait();
    return promise;
  }

  /** Settles the promises of finished requests, in the order they were submitted; returns how many. */
  poll(): number {
    this.completedSeen = Atomics.load(this.header, HEADER_COMPLETED);
    let count = 0;
    while (this.delivered !== this.submitted) {
      const slot = this.delivered & (RING_SLOTS - 1);
      if (Atomics.load(this.header, HEADER_DONE_BASE + slot) !== ((this.delivered + 1) | 0)) break;
      const waiter = this.waiters[slot]!;
      this.waiters[slot] = undefined;
      const result = this.slots[slot * SLOT_FLOATS + SLOT_RESULT]!;
      this.delivered = (this.delivered + 1) | 0;
      count++;
      if (result < 0) {
        waiter.reject(systemError(result, OP_NAMES[waiter.op]));
        continue;
      }
      if (waiter.staged && !waiter.doneHere && waiter.op === IoOp.read) {
        let at = STAGING_OFFSET + slot * STAGING_BYTES;
        let left = result;
        for (const view of waiter.views) {
          if (left <= 0) break;
          const n = Math.min(left, view.length);
          view.set(new Uint8Array(this.ring, at, n));
          at += n;
          left -= n;
        }
      }
      waiter.resolve(result);
    }
    if (count > 0 && this.pending === 0) this.worker.unref();
    return count;
  }

  /**
   * Does the next request the worker has not taken here, synchronously; false if there is none. For a
   * VMM whose only hart waits for that request: doing it costs a few µs, where the worker, asleep, would
   * take tens of µs to wake. An fdatasync stays the worker's: it can take as long as the disk likes, and
   * this thread has the console and timers to serve. Deliver it with poll().
   */
  performOne(): boolean {
    const taken = Atomics.load(this.header, HEADER_TAKEN);
    if (taken === this.submitted || this.failure !== null) return false;
    const slot = taken & (RING_SLOTS - 1);
    const waiter = this.waiters[slot]!;
    if (waiter.op === IoOp.sync) return false;
    if (Atomics.compareExchange(this.header, HEADER_TAKEN, taken, (taken + 1) | 0) !== taken) return false;
    waiter.doneHere = true;
    // A staged write goes from its staging copy, as the worker's would: the caller's buffer may change.
    const views = waiter.staged && waiter.op === IoOp.write
      ? [new Uint8Array(this.ring, STAGING_OFFSET + slot * STAGING_BYTES, totalLength(waiter.views))]
      : waiter.views;
    this.slots[slot * SLOT_FLOATS + SLOT_RESULT] = performIo(waiter.op, waiter.fd, waiter.position, views);
    Atomics.store(this.header, HEADER_DONE_BASE + slot, (taken + 1) | 0);
    Atomics.add(this.header, HEADER_COMPLETED, 1);
    Atomics.notify(this.header, HEADER_COMPLETED); // an armed waitAsync delivers it if nobody polls
    return true;
  }

  /** Stops the thread; requests it had not finished reject. */
  async close(): Promise<void> {
    if (this.failure !== null) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    Atomics.store(this.header, HEADER_STOP, 1);
    Atomics.notify(this.header, HEADER_SUBMITTED);
    this.worker.ref();
    await exited;
  }

  private bufferId(buffer: SharedArrayBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
      this.forget.register(buffer, id);
      const registration: BufferRegistration = { id, buffer };
      this.registrations.postMessage(registration);
    }
    return id;
  }

  /** Without a poller the worker's notify wakes the event loop, which delivers. */
  private armWait(): void {
    if (this.waitArmed || this.pending === 0) return;
    // Wakes when a request finishes after the last poll looked (requests may finish out of order, when
    // the VMM does one itself, so the count of finished ones is not the count delivered).
    const wait = Atomics.waitAsync(this.header, HEADER_COMPLETED, this.completedSeen);
    if (!wait.async) {
      queueMicrotask(() => {
        this.poll();
        this.armWait();
      });
      return;
    }
    this.waitArmed = true;
    void wait.value.then(() => {
      this.waitArmed = false;
      this.poll();
      this.armWait();
    });
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.poll();
    for (let slot = 0; slot < RING_SLOTS; slot++) {
      this.waiters[slot]?.reject(error);
      this.waiters[slot] = undefined;
    }
    this.delivered = this.submitted;
    if (BlockIoThread.sharedThread === this) {
      BlockIoThread.sharedThread = null;
      registerBlockIoPoller(null);
    }
  }
}

function systemError(errno: number, syscall: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(errno);
  } catch {
    code = `errno ${-errno}`;
  }
  return Object.assign(new Error(`${code}: ${syscall} failed`), { errno, code, syscall });
}
