// Typed errors of the virtio layer. A VirtqueueError is the guest's fault (a malformed ring) and ends in
// DEVICE_NEEDS_RESET for that one device; a VirtioConfigError is the user's (a bad -device/-drive).
import * as layout from '../../../assembly/abi/layout.js';

/** What each VIRTQ_ERR_* code of the core means, for logs. */
const REASONS = new Map<number, string>([
  [layout.VIRTQ_ERR_NOT_READY, 'the queue is not set up'],
  [layout.VIRTQ_ERR_AVAIL_IDX, 'avail.idx moved more than the queue size ahead'],
  [layout.VIRTQ_ERR_HEAD, 'a head index in the avail ring is beyond the queue size'],
  [layout.VIRTQ_ERR_NEXT, "a descriptor's next index is beyond its table"],
  [layout.VIRTQ_ERR_CHAIN_LENGTH, 'a descriptor chain loops or is longer than its table'],
  [layout.VIRTQ_ERR_BUFFER, 'a buffer is not inside guest RAM (or is device-writable in read-only memory)'],
  [layout.VIRTQ_ERR_INDIRECT_FEATURE, 'an indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC'],
  [layout.VIRTQ_ERR_INDIRECT_NESTED, 'an indirect descriptor inside an indirect table'],
  [layout.VIRTQ_ERR_INDIRECT_SIZE, 'an indirect table of bad length (zero, not a multiple of 16, or too large)'],
  [layout.VIRTQ_ERR_INDIRECT_TABLE, 'an indirect table outside guest RAM'],
  [layout.VIRTQ_ERR_INDIRECT_PLACE, 'an indirect descriptor with NEXT set or not at the head of its chain'],
  [layout.VIRTQ_ERR_ORDER, 'a device-readable descriptor after a device-writable one'],
  [layout.VIRTQ_ERR_SEGMENTS, 'a chain with more segments than the device accepts'],
  [layout.VIRTQ_ERR_USED_ID, 'a used id beyond the queue size'],
  [layout.VIRTQ_ERR_SIZE, 'a queue size that is zero, not a power of two, or too large'],
  [layout.VIRTQ_ERR_RING, 'a ring that is not inside guest RAM'],
  [layout.VIRTQ_ERR_ALIGN, 'a misaligned ring'],
  [layout.VIRTQ_ERR_RECORD, 'no such queue record'],
]);

export function virtqueueErrorReason(code: number): string {
  return REASONS.get(code) ?? `unknown virtqueue error ${code}`;
}

export class VirtqueueError extends Error {
  override readonly name = 'VirtqueueError';
  constructor(
    /** The core's VIRTQ_ERR_* code. */
    readonly code: number,
    /** The queue's index on its device. */
    readonly queueIndex: number,
    /** The descriptor index, length or guest address the error is about. */
    readonly detail: bigint,
  ) {
    super(`queue ${queueIndex}: ${virtqueueErrorReason(code)} (0x${detail.toString(16)})`);
  }
}

/** A request the device model cannot make sense of (e.g. a virtio-blk header in device-writable memory). */
export class VirtioRequestError extends Error {
  override readonly name = 'VirtioRequestError';
  constructor(
    readonly device: string,
    readonly reason: string,
  ) {
    super(`${device}: ${reason}`);
  }
}

/** A -device/-drive combination that cannot be built. */
export class VirtioConfigError extends Error {
  override readonly name = 'VirtioConfigError';
  constructor(
    readonly option: string,
    readonly reason: string,
  ) {
    super(`${option}: ${reason}`);
  }
}
