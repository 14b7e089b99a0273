// File access for qcow2 metadata: strict reads (a table cut short by the end of the file is corruption,
// not zeros), writes that track how far the file has grown, and ordering barriers whose strength
// depends on the cache mode.

import { CorruptImageError } from '../errors.js';
import type { CachePolicy } from '../cache-mode.js';
import type { BlockFile } from '../file.js';
import { gather, scatterInto, totalLength, zeroPastRead } from '../scatter.js';

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

  /** readData into several buffers filled in order: one vectored read where the file supports it. */
  async readDataV(offset: number, dsts: readonly Uint8Array[]): Promise<void> {
    if (dsts.length <= 1) {
      if (dsts.length === 1) await this.readData(offset, dsts[0]!);
      return;
    }
    if (!this.file.readv) {
      // A file without vectored I/O still gets one request: through a bounce buffer.
      const bounce = new Uint8Array(totalLength(dsts));
      await this.readData(offset, bounce);
      scatterInto(dsts, bounce);
      return;
    }
    zeroPastRead(dsts, await this.file.readv(offset, dsts));
  }

  /** write from several buffers in order: one vectored write where the file supports it. */
  async writeV(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    if (srcs.length === 0) return;
    if (srcs.length === 1) return this.write(offset, srcs[0]!);
    const length = totalLength(srcs);
    if (this.file.writev) await this.file.writev(offset, srcs);
    else await this.file.write(offset, gather(srcs));
    this.fileEnd = Math.max(this.fileEnd, offset + length);
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
