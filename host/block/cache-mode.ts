// QEMU's -drive cache= modes, reduced to when the backend must call fdatasync.
//
//   writeback     sync on flush() only (the guest's FLUSH request); the default.
//   writethrough  sync after every write, and between the steps of a qcow2 allocation, so each
//                 completed write is durable and the image is consistent after a host crash.
//   none          like writeback: QEMU's `none` adds O_DIRECT (bypass the host page cache), which
//                 Node's fs API cannot request, so only its flush semantics are kept.
//   unsafe        never sync, not even on flush(); for throw-away images.

export type CacheMode = 'writeback' | 'writethrough' | 'none' | 'unsafe';

export const CACHE_MODES: readonly CacheMode[] = ['writeback', 'writethrough', 'none', 'unsafe'];

export class CachePolicy {
  constructor(readonly mode: CacheMode) {}

  /** flush() must reach stable storage. */
  get syncOnFlush(): boolean {
    return this.mode === 'writeback' || this.mode === 'none';
  }

  /** Every completed write must already be on stable storage. */
  get syncEveryWrite(): boolean {
    return this.mode === 'writethrough';
  }

  /**
   * Metadata updates are separated by syncs (data, then refcounts, then L2, then L1), so that an
   * interrupted allocation leaves at worst a leaked cluster, never a pointer to unwritten data.
   */
  get syncBetweenMetadataSteps(): boolean {
    return this.mode === 'writethrough';
  }
}
