// File access for qcow2 metadata: strict reads (a table cut short by the end of the file is corruption,
// not zeros), writes that track how far the file has grown, and ordering barriers whose strength
// depends on the cache mode.

import { CorruptImageError } from '../errors.js';
import type { CachePolicy } from '../cache-mode.js';
import type { BlockFile } from '../file.js';

export class MetadataIo {
  constructor(
    readonly file: BlockFile,
    private readonly policy: CachePolicy,
    /** Bytes of the file known to exist: its size at open, extended by our writes. */
    public fileEnd: number,
  ) {}

  async readExact(offset: number, length: number, what: string): Promise<Uint8Array> {
    // Checked before allocating, so a hostile size cannot make us allocate what the file cannot hold.
    if (offset + length > this.fileEnd) {
      throw new CorruptImageError(`${what} at 0x${offset.toString(16)} (${length} bytes) extends beyond the end of the file (${this.fileEnd} bytes)`);
    }
    const bytes = new Uint8Array(length);
    const got = await this.file.read(offset, bytes);
    if (got < length) {
      throw new CorruptImageError(`${what} at 0x${offset.toString(16)} (${length} bytes) extends beyond the end of the file (${this.fileEnd} bytes)`);
    }
    return bytes;
  }

  /** Reads data; the part beyond the end of the file reads as zeros, as the protocol layer does in QEMU. */
  async readData(offset: number, dst: Uint8Array): Promise<void> {
    const got = await this.file.read(offset, dst);
    if (got < dst.length) dst.fill(0, got);
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    await this.file.write(offset, bytes);
    this.fileEnd = Math.max(this.fileEnd, offset + bytes.length);
  }

  /** Separates dependent metadata updates; a real sync only where the cache mode promises crash consistency. */
  async barrier(): Promise<void> {
    if (this.policy.syncBetweenMetadataSteps) await this.file.sync();
  }
}
