// Public entry point of the block layer: what virtio-blk and the -drive option parser use.

export { openDiskImage, type DiskImage, type OpenDiskOptions } from './disk.js';
export { CACHE_MODES, type CacheMode } from './cache-mode.js';
export { DiskImageError, DiskIoError, type DiskFormat, type DiskIoOperation } from './errors.js';
export { createQcow2, type CreateQcow2Options } from './qcow2/create.js';
export type { BlockFile, BlockFileOpener } from './file.js';
export { gather, scatterInto, totalLength } from './scatter.js';
import { BlockIoThread } from './io_thread.js';
import { WORKER_SPIN_MS } from './io_ring.js';

export { BlockIoThread };

/**
 * Delivers finished disk I/O now, for a VMM that polls between vCPU slices instead of waiting for the
 * event loop; returns how many requests finished (their promises settle at the next microtask turns).
 */
export const pollBlockIo = (): number => BlockIoThread.pollShared();

/**
 * Does the disk I/O thread's next request on this thread, if its worker has not taken it (false if
 * there is none): for a VMM with nothing to do but wait for it. Deliver it with pollBlockIo.
 */
export const performBlockIoHere = (): boolean => BlockIoThread.performOneShared();

/** How many requests the disk I/O thread has been given so far: a change shows a request reached it. */
export const blockIoSubmitted = (): number => BlockIoThread.submittedShared();

/** Lets the disk I/O thread spin before sleeping (default) or not: see BlockIoThread.maxSpinMs. */
export const setBlockIoSpin = (allowed: boolean): void => {
  const thread = BlockIoThread.shared();
  if (thread !== null) thread.maxSpinMs = allowed ? WORKER_SPIN_MS : 0;
};
