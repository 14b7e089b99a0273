// The disk I/O thread: takes requests from the ring in order and does each with one synchronous
// preadv/pwritev/fdatasync straight into the buffers it names (guest RAM for virtio-blk). It looks for
// the next request for up to WORKER_SPIN_MS before sleeping on the ring's doorbell: on a VM, waking a
// sleeping thread costs tens of microseconds, more than a page-cached 4 KiB read.
import fs from 'node:fs';
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  HEADER_BYTES, HEADER_COMPLETED, HEADER_MAX_SPIN_US, HEADER_STOP, HEADER_SUBMITTED, IoOp, RING_BUFFER_ID, RING_SLOTS, SLOT_FD, SLOT_FLOATS, SLOT_OP, SLOT_POSITION,
  SLOT_RESULT, SLOT_SEGMENT_BASE, SLOT_SEGMENTS, SLOTS_OFFSET, type BufferRegistration, type IoWorkerData,
} from './io_ring.js';

const EIO = 5;
/** Below this the spin is not worth its start; it goes to zero. */
const MIN_SPIN_MS = 0.02;
/** How often a sleeping worker looks at the stop word. */
const STOP_CHECK_MS = 100;

function main(data: IoWorkerData): void {
  const header = new Int32Array(data.ring, 0, HEADER_BYTES >> 2);
  const slots = new Float64Array(data.ring, SLOTS_OFFSET, RING_SLOTS * SLOT_FLOATS);
  const buffers = new Map<number, SharedArrayBuffer>([[RING_BUFFER_ID, data.ring]]);
  let completed = Atomics.load(header, HEADER_COMPLETED);
  let spinMs = Atomics.load(header, HEADER_MAX_SPIN_US) / 1000;

  /** Takes one registration off the port; false when there is none. */
  const receiveRegistration = (): boolean => {
    const message = receiveMessageOnPort(data.registrations);
    if (message === undefined) return false;
    const registration = message.message as BufferRegistration;
    if (registration.buffer === null) buffers.delete(registration.id);
    else buffers.set(registration.id, registration.buffer);
    return true;
  };
  const bufferFor = (id: number): SharedArrayBuffer => {
    // The VMM posts a buffer before the first request that uses it, so it is waiting on the port.
    for (let buffer = buffers.get(id); ; buffer = buffers.get(id)) {
      if (buffer !== undefined) return buffer;
      if (!receiveRegistration()) throw new Error(`buffer ${id} was never registered`);
    }
  };

  while (Atomics.load(header, HEADER_STOP) === 0) {
    const submitted = Atomics.load(header, HEADER_SUBMITTED);
    if (submitted === completed) {
      const maxSpinMs = Atomics.load(header, HEADER_MAX_SPIN_US) / 1000;
      spinMs = Math.min(spinMs, maxSpinMs);
      const idleSince = performance.now();
      const until = idleSince + spinMs;
      while (Atomics.load(header, HEADER_SUBMITTED) === completed && performance.now() < until) { /* spin */ }
      if (Atomics.load(header, HEADER_SUBMITTED) !== completed) continue;
      if (Atomics.load(header, HEADER_STOP) !== 0) break;
      // Idle: let go of the buffers of finished VMs before sleeping.
      while (receiveRegistration()) { /* drain */ }
      // The timeout bounds a stop whose notify came between the check above and the wait.
      Atomics.wait(header, HEADER_SUBMITTED, completed, STOP_CHECK_MS);
      // QEMU's adaptive polling: spin longer when the next request came soon after the spin gave up,
      // shorter when it came later than the longest spin. Requests 1.7 ms apart (1 MiB reads, whose
      // large halves go to libuv's pool) get no spin, so the pool thread copying has this core.
      const idle = performance.now() - idleSince;
      if (idle > maxSpinMs) spinMs = spinMs < MIN_SPIN_MS ? 0 : spinMs / 2;
      else spinMs = Math.min(maxSpinMs, Math.max(spinMs * 2, MIN_SPIN_MS));
      continue;
    }
    const base = (completed & (RING_SLOTS - 1)) * SLOT_FLOATS;
    let result: number;
    try {
      result = perform(slots, base, bufferFor);
    } catch (error) {
      const errno = (error as NodeJS.ErrnoException).errno;
      result = typeof errno === 'number' && errno < 0 ? errno : -EIO;
    }
    slots[base + SLOT_RESULT] = result;
    completed = (completed + 1) | 0;
    Atomics.store(header, HEADER_COMPLETED, completed);
    Atomics.notify(header, HEADER_COMPLETED);
  }
  data.registrations.close(); // an open port would keep the thread alive
}

function perform(slots: Float64Array, base: number, bufferFor: (id: number) => SharedArrayBuffer): number {
  const op = slots[base + SLOT_OP]!;
  const fd = slots[base + SLOT_FD]!;
  if (op === IoOp.sync) {
    fs.fdatasyncSync(fd);
    return 0;
  }
  const position = slots[base + SLOT_POSITION]!;
  const count = slots[base + SLOT_SEGMENTS]!;
  let views: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = base + SLOT_SEGMENT_BASE + 3 * i;
    const view = new Uint8Array(bufferFor(slots[at]!), slots[at + 1]!, slots[at + 2]!);
    views.push(view);
    total += view.length;
  }
  // The OS may move fewer bytes than asked; go on from where it stopped (a read stops at end of file).
  let done = 0;
  while (done < total) {
    const moved = op === IoOp.read ? fs.readvSync(fd, views, position + done) : fs.writevSync(fd, views, position + done);
    if (moved === 0) {
      if (op === IoOp.read) break;
      throw Object.assign(new Error('write made no progress'), { errno: -EIO });
    }
    done += moved;
    views = dropFront(views, moved);
  }
  return done;
}

function dropFront(views: Uint8Array[], bytes: number): Uint8Array[] {
  let i = 0;
  while (i < views.length && bytes >= views[i]!.length) bytes -= views[i++]!.length;
  const rest = views.slice(i);
  if (bytes > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(bytes);
  return rest;
}

main(workerData as IoWorkerData);
