// The disk I/O thread: takes requests from the ring in order (unless the VMM took one first, see
// HEADER_TAKEN) and does each with one synchronous preadv/pwritev/fdatasync straight into the buffers it
// names (guest RAM for virtio-blk). It looks for
// the next request for up to WORKER_SPIN_MS before sleeping on the ring's doorbell: on a VM, waking a
// sleeping thread costs tens of microseconds, more than a page-cached 4 KiB read.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  HEADER_BYTES, HEADER_COMPLETED, HEADER_DONE_BASE, HEADER_MAX_SPIN_US, HEADER_STOP, HEADER_SUBMITTED, HEADER_TAKEN, RING_BUFFER_ID, RING_SLOTS, SLOT_FD,
  SLOT_FLOATS, SLOT_OP, SLOT_POSITION, SLOT_RESULT, SLOT_SEGMENT_BASE, SLOT_SEGMENTS, SLOTS_OFFSET, type BufferRegistration, type IoOpCode, type IoWorkerData,
} from './io_ring.js';
import { EIO, performIo } from './io_perform.js';

/** Below this the spin is not worth its start; it goes to zero. */
const MIN_SPIN_MS = 0.02;
/** How often a sleeping worker looks at the stop word. */
const STOP_CHECK_MS = 100;

function main(data: IoWorkerData): void {
  const header = new Int32Array(data.ring, 0, HEADER_BYTES >> 2);
  const slots = new Float64Array(data.ring, SLOTS_OFFSET, RING_SLOTS * SLOT_FLOATS);
  const buffers = new Map<number, SharedArrayBuffer>([[RING_BUFFER_ID, data.ring]]);
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
    const taken = Atomics.load(header, HEADER_TAKEN);
    const submitted = Atomics.load(header, HEADER_SUBMITTED);
    if (taken === submitted) {
      const maxSpinMs = Atomics.load(header, HEADER_MAX_SPIN_US) / 1000;
      spinMs = Math.min(spinMs, maxSpinMs);
      const idleSince = performance.now();
      const until = idleSince + spinMs;
      while (Atomics.load(header, HEADER_SUBMITTED) === submitted && performance.now() < until) { /* spin */ }
      if (Atomics.load(header, HEADER_SUBMITTED) !== submitted) continue;
      if (Atomics.load(header, HEADER_STOP) !== 0) break;
      // Idle: let go of the buffers of finished VMs before sleeping.
      while (receiveRegistration()) { /* drain */ }
      // The timeout bounds a stop whose notify came between the check above and the wait.
      Atomics.wait(header, HEADER_SUBMITTED, submitted, STOP_CHECK_MS);
      // QEMU's adaptive polling: spin longer when the next request came soon after the spin gave up,
      // shorter when it came later than the longest spin. Requests further apart than that get no spin,
      // so the cores go to the vCPU and V8's compiler threads.
      const idle = performance.now() - idleSince;
      if (idle > maxSpinMs) spinMs = spinMs < MIN_SPIN_MS ? 0 : spinMs / 2;
      else spinMs = Math.min(maxSpinMs, Math.max(spinMs * 2, MIN_SPIN_MS));
      continue;
    }
    // The VMM may have taken this request itself meanwhile; then look again.
    if (Atomics.compareExchange(header, HEADER_TAKEN, taken, (taken + 1) | 0) !== taken) continue;
    const base = (taken & (RING_SLOTS - 1)) * SLOT_FLOATS;
    let result: number;
    try {
      result = perform(slots, base, bufferFor);
    } catch {
      result = -EIO;
    }
    slots[base + SLOT_RESULT] = result;
    Atomics.store(header, HEADER_DONE_BASE + (taken & (RING_SLOTS - 1)), (taken + 1) | 0);
    Atomics.add(header, HEADER_COMPLETED, 1);
    Atomics.notify(header, HEADER_COMPLETED);
  }
  data.registrations.close(); // an open port would keep the thread alive
}

function perform(slots: Float64Array, base: number, bufferFor: (id: number) => SharedArrayBuffer): number {
  const op = slots[base + SLOT_OP]! as IoOpCode;
  const fd = slots[base + SLOT_FD]!;
  const position = slots[base + SLOT_POSITION]!;
  const count = slots[base + SLOT_SEGMENTS]!;
  const views: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const at = base + SLOT_SEGMENT_BASE + 3 * i;
    views.push(new Uint8Array(bufferFor(slots[at]!), slots[at + 1]!, slots[at + 2]!));
  }
  return performIo(op, fd, position, views);
}

main(workerData as IoWorkerData);
