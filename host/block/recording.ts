// RecordingDiskImage: a DiskImage that passes every request to another one and keeps a log of what
// the guest changed (write, write-zeroes, discard), so the same changes can be replayed onto a second
// image afterwards. Interop tests need it because two guest runs never write the same bytes (ext4
// stamps mount times), so "an image given the same writes" can only be built from a record.
//
// The log is in issue order: the order the device called the backend, which is the order the qcow2
// driver's request lock serves them. Overlapping requests in flight at the same time have no defined
// order in virtio-blk either; Linux does not issue them.

import type { DiskImage } from './disk.js';
import type { DiskFormat, DiskIoOperation } from './errors.js';
import { gather } from './scatter.js';

export type RecordedChange =
  | { readonly operation: 'write'; readonly offset: number; readonly bytes: Uint8Array; outcome: ChangeOutcome }
  | { readonly operation: 'write-zeroes'; readonly offset: number; readonly length: number; outcome: ChangeOutcome }
  /**
   * DISCARD leaves a range's content to the backend (old data, zeros or backing data), so the record
   * holds what the range reads as once the discard completed: that is the content to replay.
   */
  | { readonly operation: 'discard'; readonly offset: number; readonly length: number; contentAfter: Uint8Array | null; outcome: ChangeOutcome };

/** Pending until the backend answers; a failed change leaves its range in an unknown state. */
export type ChangeOutcome = 'pending' | 'done' | 'failed';

/** Replaying a log that cannot describe the disk exactly (a change failed or never completed). */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
  constructor(
    /** Position of the offending change in the log. */
    readonly index: number,
    readonly operation: DiskIoOperation,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`cannot replay change #${index} (${operation} at ${offset}): ${reason}`);
  }
}

export class RecordingDiskImage implements DiskImage {
  private readonly log: RecordedChange[] = [];
  readonly writeZeroes?: (offset: number, length: number) => Promise<void>;
  readonly discard?: (offset: number, length: number) => Promise<void>;
  readonly readv?: (offset: number, dsts: readonly Uint8Array[]) => Promise<void>;
  readonly writev?: (offset: number, srcs: readonly Uint8Array[]) => Promise<void>;

  constructor(private readonly inner: DiskImage) {
    // virtio-blk offers WRITE_ZEROES and DISCARD only when the backend has them: keep that visible.
    if (inner.writeZeroes) this.writeZeroes = (offset, length) => this.recordWriteZeroes(offset, length);
    if (inner.discard) this.discard = (offset, length) => this.recordDiscard(offset, length);
    // The vectored calls stay vectored, so a recorded run exercises the same backend path as a plain one.
    if (inner.readv) this.readv = (offset, dsts) => inner.readv!(offset, dsts);
    if (inner.writev) this.writev = (offset, srcs) => this.recordWritev(offset, srcs);
  }

  get path(): string { return this.inner.path; }
  get format(): DiskFormat { return this.inner.format; }
  get size(): number { return this.inner.size; }
  get readOnly(): boolean { return this.inner.readOnly; }

  /** Every change requested so far, oldest first. */
  get changes(): readonly RecordedChange[] {
    return this.log;
  }

  read(offset: number, dst: Uint8Array): Promise<void> {
    return this.inner.read(offset, dst);
  }

  private async recordWritev(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    // A copy, as in write(): the views are guest RAM.
    const change: RecordedChange = { operation: 'write', offset, bytes: gather(srcs), outcome: 'pending' };
    this.log.push(change);
    await settle(change, this.inner.writev!(offset, srcs));
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    // A copy: `src` is a view of guest RAM, which the guest reuses once the request completes.
    const change: RecordedChange = { operation: 'write', offset, bytes: src.slice(), outcome: 'pending' };
    this.log.push(change);
    await settle(change, this.inner.write(offset, src));
  }

  private async recordWriteZeroes(offset: number, length: number): Promise<void> {
    const change: RecordedChange = { operation: 'write-zeroes', offset, length, outcome: 'pending' };
    this.log.push(change);
    await settle(change, this.inner.writeZeroes!(offset, length));
  }

  private async recordDiscard(offset: number, length: number): Promise<void> {
    const change: RecordedChange = { operation: 'discard', offset, length, contentAfter: null, outcome: 'pending' };
    this.log.push(change);
    await settle(change, (async () => {
      await this.inner.discard!(offset, length);
      const content = new Uint8Array(length);
      await this.inner.read(offset, content);
      change.contentAfter = content;
    })());
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Applies the recorded changes, in order, to `target` (which must hold the same starting content). */
  async replayOnto(target: DiskImage): Promise<void> {
    for (const [index, change] of this.log.entries()) {
      if (change.outcome !== 'done') {
        throw new ReplayError(index, change.operation, change.offset, change.outcome === 'failed' ? 'the backend failed it, so its range is unknown' : 'it has not completed');
      }
      switch (change.operation) {
        case 'write':
          await target.write(change.offset, change.bytes);
          break;
        case 'write-zeroes':
          await writeZeros(target, change.offset, change.length);
          break;
        case 'discard':
          await target.write(change.offset, change.contentAfter!);
          break;
      }
    }
  }
}

async function settle(change: RecordedChange, request: Promise<void>): Promise<void> {
  try {
    await request;
    change.outcome = 'done';
  } catch (error) {
    change.outcome = 'failed';
    throw error;
  }
}

const ZERO_CHUNK = 1 << 20;

async function writeZeros(target: DiskImage, offset: number, length: number): Promise<void> {
  if (target.writeZeroes) return target.writeZeroes(offset, length);
  const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
  for (let done = 0; done < length; done += zeros.length) {
    await target.write(offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
  }
}
