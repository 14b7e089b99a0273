// The file underneath an image, reduced to positional I/O. Backends never touch node:fs directly, so tests
// can inject a file that counts syncs or records the order of writes.

import { open, type FileHandle } from 'node:fs/promises';
import { totalLength } from './scatter.js';

export interface BlockFile {
  /** Reads up to dst.length bytes at `position`; returns how many were read (fewer only at end of file). */
  read(position: number, dst: Uint8Array): Promise<number>;
  /** Writes all of `src` at `position`, growing the file if needed. */
  write(position: number, src: Uint8Array): Promise<void>;
  /** Like read, into several buffers filled in order (one system call where the OS allows). */
  readv?(position: number, dsts: readonly Uint8Array[]): Promise<number>;
  /** Like write, from several buffers in order. */
  writev?(position: number, srcs: readonly Uint8Array[]): Promise<void>;
  /** Makes written data durable (fdatasync). */
  sync(): Promise<void>;
  /** Current length of the file in bytes. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export type BlockFileOpener = (path: string, writable: boolean) => Promise<BlockFile>;

export class NodeBlockFile implements BlockFile {
  private constructor(private readonly handle: FileHandle) {}

  static async open(path: string, writable: boolean): Promise<NodeBlockFile> {
    return new NodeBlockFile(await open(path, writable ? 'r+' : 'r'));
  }

  async read(position: number, dst: Uint8Array): Promise<number> {
    let done = 0;
    while (done < dst.length) {
      const { bytesRead } = await this.handle.read(dst, done, dst.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async write(position: number, src: Uint8Array): Promise<void> {
    let done = 0;
    while (done < src.length) {
      const { bytesWritten } = await this.handle.write(src, done, src.length - done, position + done);
      done += bytesWritten;
    }
  }

  async readv(position: number, dsts: readonly Uint8Array[]): Promise<number> {
    const total = totalLength(dsts);
    const { bytesRead } = await this.handle.readv(dsts as Uint8Array[], position);
    if (bytesRead >= total || bytesRead === 0) return bytesRead;
    // A short read (end of file, or the OS stopped early): finish buffer by buffer.
    let done = bytesRead;
    let skip = bytesRead;
    for (const dst of dsts) {
      if (skip >= dst.length) { skip -= dst.length; continue; }
      const got = await this.read(position + done, dst.subarray(skip));
      done += got;
      if (got < dst.length - skip) break;
      skip = 0;
    }
    return done;
  }

  async writev(position: number, srcs: readonly Uint8Array[]): Promise<void> {
    const total = totalLength(srcs);
    const { bytesWritten } = await this.handle.writev(srcs as Uint8Array[], position);
    if (bytesWritten >= total) return;
    let skip = bytesWritten;
    let at = position + bytesWritten;
    for (const src of srcs) {
      if (skip >= src.length) { skip -= src.length; continue; }
      await this.write(at, src.subarray(skip));
      at += src.length - skip;
      skip = 0;
    }
  }

  async sync(): Promise<void> {
    await this.handle.datasync();
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export const openNodeBlockFile: BlockFileOpener = (path, writable) => NodeBlockFile.open(path, writable);
