import { DiskIoError, type DiskIoOperation } from './errors.js';

/** Rejects a request that is not a whole, non-negative byte range inside a disk of `size` bytes. */
export function checkRequestRange(path: string, operation: DiskIoOperation, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new DiskIoError(path, operation, offset, length, 'offset and length must be non-negative integers');
  }
  if (offset + length > size) {
    throw new DiskIoError(path, operation, offset, length, `request ends at ${offset + length}, beyond the disk size ${size}`);
  }
}
