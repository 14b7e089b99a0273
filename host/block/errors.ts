// Typed errors of the disk image layer. An image that cannot be opened (bad header, unsupported feature,
// missing backing file) raises DiskImageError from openDiskImage(); a request that fails later (I/O error,
// corrupt metadata met while reading or writing, request out of range) raises DiskIoError, which the
// virtio-blk device turns into VIRTIO_BLK_S_IOERR for that one request.

export type DiskFormat = 'raw' | 'qcow2';

export class DiskImageError extends Error {
  override readonly name = 'DiskImageError';
  constructor(
    /** The image file the error is about (for a backing file: the backing file's path). */
    readonly path: string,
    /** The format being opened, or undefined when it was not known yet. */
    readonly format: DiskFormat | undefined,
    /** What is wrong, in words a user can act on. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}${format ? ` (${format})` : ''}: ${reason}`, options);
  }
}

export type DiskIoOperation = 'read' | 'write' | 'flush' | 'discard' | 'write-zeroes' | 'close';

export class DiskIoError extends Error {
  override readonly name = 'DiskIoError';
  constructor(
    readonly path: string,
    readonly operation: DiskIoOperation,
    /** Guest (virtual disk) offset of the request, or -1 when not tied to one (flush). */
    readonly offset: number,
    /** Request length in bytes (0 for flush). */
    readonly length: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${operation} of ${length} bytes at ${offset} failed: ${reason}`, options);
  }
}

/**
 * Raised inside the qcow2 driver when metadata read from the file is invalid. The public read/write
 * paths convert it into a DiskIoError (during a request) or a DiskImageError (during open).
 */
export class CorruptImageError extends Error {
  override readonly name = 'CorruptImageError';
  constructor(readonly reason: string) {
    super(reason);
  }
}
