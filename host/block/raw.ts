// The raw backend: the virtual disk is the file, byte for byte. Like QEMU, the disk size is the file
// size rounded up to a whole 512-byte sector; the part of that last sector past the end of the file
// (and anything past the end if the file shrinks while open) reads as zeros.

import { CachePolicy, type CacheMode } from './cache-mode.js';
import type { DiskImage } from './disk.js';
import { DiskIoError, type DiskIoOperation } from './errors.js';
import type { BlockFile } from './file.js';
import { checkRequestRange } from './range.js';
import { readEach, totalLength, writeEach, zeroPastRead } from './scatter.js';

const SECTOR_SIZE = 512;
const ZERO_CHUNK = 1 << 20;

export class RawDiskImage implements DiskImage {
  readonly format = 'raw' as const;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly file: BlockFile,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly cache: CachePolicy,
  ) {}

  static async open(file: BlockFile, path: string, options: { readOnly: boolean; cache: CacheMode }): Promise<RawDiskImage> {
    const fileSize = await file.size();
    const size = Math.ceil(fileSize / SECTOR_SIZE) * SECTOR_SIZE;
    return new RawDiskImage(path, file, size, options.readOnly, new CachePolicy(options.cache));
  }

  async read(offset: number, dst: Uint8Array): Promise<void> {
    this.checkOpen('read', offset, dst.length);
    checkRequestRange(this.path, 'read', offset, dst.length, this.size);
    const got = await this.io('read', offset, dst.length, () => this.file.read(offset, dst));
    dst.fill(0, got);
  }

  async readv(offset: number, dsts: readonly Uint8Array[]): Promise<void> {
    const length = totalLength(dsts);
    const readv = this.file.readv?.bind(this.file);
    if (readv === undefined) return readEach(this, offset, dsts);
    this.checkOpen('read', offset, length);
    checkRequestRange(this.path, 'read', offset, length, this.size);
    // Past the end of the file reads as zeros.
    zeroPastRead(dsts, await this.io('read', offset, length, () => readv(offset, dsts)));
  }

  async writev(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    const length = totalLength(srcs);
    const writev = this.file.writev?.bind(this.file);
    if (writev === undefined) return writeEach(this, offset, srcs);
    this.checkWritable('write', offset, length);
    checkRequestRange(this.path, 'write', offset, length, this.size);
    await this.io('write', offset, length, async () => {
      await writev(offset, srcs);
      if (this.cache.syncEveryWrite) await this.file.sync();
    });
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    this.checkWritable('write', offset, src.length);
    checkRequestRange(this.path, 'write', offset, src.length, this.size);
    await this.io('write', offset, src.length, async () => {
      await this.file.write(offset, src);
      if (this.cache.syncEveryWrite) await this.file.sync();
    });
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkWritable('write-zeroes', offset, length);
    checkRequestRange(this.path, 'write-zeroes', offset, length, this.size);
    const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
    await this.io('write-zeroes', offset, length, async () => {
      for (let done = 0; done < length; done += zeros.length) {
        await this.file.write(offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
      }
      if (this.cache.syncEveryWrite) await this.file.sync();
    });
  }

  async flush(): Promise<void> {
    this.checkOpen('flush', -1, 0);
    if (this.readOnly || !this.cache.syncOnFlush) return;
    await this.io('flush', -1, 0, () => this.file.sync());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.io('close', -1, 0, async () => {
      if (!this.readOnly && this.cache.syncOnFlush) await this.file.sync();
      await this.file.close();
    });
  }

  private checkOpen(operation: DiskIoOperation, offset: number, length: number): void {
    if (this.closed) throw new DiskIoError(this.path, operation, offset, length, 'the image is closed');
  }

  private checkWritable(operation: DiskIoOperation, offset: number, length: number): void {
    this.checkOpen(operation, offset, length);
    if (this.readOnly) throw new DiskIoError(this.path, operation, offset, length, 'the image is read-only');
  }

  private async io<T>(operation: DiskIoOperation, offset: number, length: number, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof DiskIoError) throw error;
      throw new DiskIoError(this.path, operation, offset, length, (error as Error).message, { cause: error });
    }
  }
}
