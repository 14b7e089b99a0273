// The shared-memory layout between BlockIoThread (the VMM's side) and its worker: a ring of request
// slots in one SharedArrayBuffer. Both sides import these numbers; nothing else crosses except the
// SharedArrayBuffers the requests point into, each posted once.
import type { MessagePort } from 'node:worker_threads';

/** Int32 header words. */
export const HEADER_SUBMITTED = 0; // requests the VMM has put in the ring (it alone writes it)
export const HEADER_COMPLETED = 1; // requests finished, by either side (Atomics.add; waited on for wake-ups)
export const HEADER_STOP = 2; // non-zero: the worker returns
export const HEADER_MAX_SPIN_US = 3; // the longest spin, set by the VMM's side (0: sleep at once)
// Requests taken so far, by the worker or by the VMM itself when it has nothing else to do (a halted
// guest waiting for this very request): whoever moves it from n to n + 1 with a compare-and-swap does
// request n. Requests may so finish out of order; each slot's done word says which one finished there.
export const HEADER_TAKEN = 4;
export const HEADER_DONE_BASE = 8; // RING_SLOTS words: request number + 1 of the last one finished in the slot
export const HEADER_BYTES = 128;

/** Requests the ring holds at once; more go to libuv's pool. */
export const RING_SLOTS = 16;
/**
 * Larger requests go to libuv's pool. Up to this size the ring takes them too: a 1 MiB guest request
 * (254 pages, one request) is then done by the VMM itself when its hart waits for it, or by the thread,
 * with no pool thread to wake and no event-loop turn to deliver it (1 MiB dd writes +10 %, reads +6 %,
 * against sending requests over 64 KiB to the pool).
 */
export const LARGE_REQUEST_BYTES = 4 * 1024 * 1024;
/** More segments than this (a request of tiny pieces) goes to libuv's pool. */
export const MAX_SEGMENTS = 1024;

export const IoOp = { read: 0, write: 1, sync: 2 } as const;
export type IoOpCode = (typeof IoOp)[keyof typeof IoOp];

/** Float64 fields of a slot, then MAX_SEGMENTS × (buffer id, byte offset, length). */
export const SLOT_OP = 0;
export const SLOT_FD = 1;
export const SLOT_POSITION = 2;
export const SLOT_SEGMENTS = 3;
/** Bytes moved (all of them, or fewer only at end of file), or a negative errno. */
export const SLOT_RESULT = 4;
export const SLOT_SEGMENT_BASE = 5;
export const SLOT_FLOATS = SLOT_SEGMENT_BASE + 3 * MAX_SEGMENTS;

/**
 * Buffer id 0 is the ring's own SharedArrayBuffer, whose tail holds one staging area per slot: buffers
 * that are not shared (the qcow2 driver's metadata) are copied through it.
 */
export const RING_BUFFER_ID = 0;
export const STAGING_BYTES = 64 * 1024; // larger requests from buffers that are not shared go to the pool

export const SLOTS_OFFSET = HEADER_BYTES;
export const STAGING_OFFSET = SLOTS_OFFSET + RING_SLOTS * SLOT_FLOATS * 8;
export const RING_BYTES = STAGING_OFFSET + RING_SLOTS * STAGING_BYTES;

/** The longest the worker keeps looking for the next request before it sleeps (adaptive, as QEMU's poll). */
export const WORKER_SPIN_MS = 0.5;

export interface IoWorkerData {
  readonly ring: SharedArrayBuffer;
  /** Where BufferRegistrations arrive; the worker reads it synchronously. */
  readonly registrations: MessagePort;
}

/** A message posting a SharedArrayBuffer the worker has not seen, before the first request using it. */
export interface BufferRegistration {
  readonly id: number;
  /** Null: the VMM no longer has this buffer; drop it. */
  readonly buffer: SharedArrayBuffer | null;
}
