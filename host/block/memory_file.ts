// A disk image file held in memory, for embedders without a file system (a browser page that fetched
// its image) and for tests. It keeps a file's contract: a read past the end returns fewer bytes, a write
// past the end grows the file. Nothing here needs Node.
import type { BlockFile } from './file.js';

export class MemoryBlockFile implements BlockFile {
  private bytes: Uint8Array;
  private length: number;
  private closed = false;

  /** Uses `bytes` itself, not a copy: writes land in it until the file outgrows it. */
  constructor(bytes: Uint8Array = new Uint8Array(0)) {
    this.bytes = bytes;
    this.length = bytes.length;
  }

  /** The file's current contents (a view; valid until the next write that grows the file). */
  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  async read(position: number, dst: Uint8Array): Promise<number> {
    this.checkOpen(position);
    const count = Math.max(0, Math.min(dst.length, this.length - position));
    dst.set(this.bytes.subarray(position, position + count));
    return count;
  }

  async readv(position: number, dsts: readonly Uint8Array[]): Promise<number> {
    let total = 0;
    for (const dst of dsts) {
      const count = await this.read(position + total, dst);
      total += count;
      if (count < dst.length) break;
    }
    return total;
  }

  async write(position: number, src: Uint8Array): Promise<void> {
    this.checkOpen(position);
    const end = position + src.length;
    // Bytes past `length` are only ever those of a grown buffer, which starts zeroed: a write that starts
    // past the end leaves a hole that reads as zeros.
    if (end > this.bytes.length) {
      const grown = new Uint8Array(Math.max(end, this.bytes.length * 2));
      grown.set(this.contents());
      this.bytes = grown;
    }
    this.bytes.set(src, position);
    this.length = Math.max(this.length, end);
  }

  async writev(position: number, srcs: readonly Uint8Array[]): Promise<void> {
    for (const src of srcs) {
      await this.write(position, src);
      position += src.length;
    }
  }

  async sync(): Promise<void> {
    this.checkOpen(0);
  }

  async size(): Promise<number> {
    this.checkOpen(0);
    return this.length;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(position: number): void {
    if (this.closed) throw new Error('memory file: used after close');
    if (!Number.isSafeInteger(position) || position < 0) throw new RangeError(`memory file: bad position ${position}`);
  }
}
