// snapshot=on: the guest writes into a temporary qcow2 overlay whose backing file is the image; the
// overlay is deleted on close, so the image never changes.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DiskImage, OpenDiskOptions } from './disk.js';
import { DiskImageError } from './errors.js';
import { createQcow2 } from './qcow2/create.js';

type Opener = (path: string, options: OpenDiskOptions) => Promise<DiskImage>;

export async function openSnapshotOverlay(path: string, options: OpenDiskOptions, open: Opener): Promise<DiskImage> {
  const base = await open(path, { ...options, snapshot: false, readOnly: true });
  // A read-only disk never writes, so there is nothing for an overlay to hold.
  if (options.readOnly) return base;
  const { size, format } = base;
  await base.close();

  const directory = await mkdtemp(join(tmpdir(), 'wkvm-snapshot-'));
  const overlayPath = join(directory, 'overlay.qcow2');
  try {
    await createQcow2(overlayPath, { size, backingFile: resolve(path), backingFormat: format });
    // Overlay data is discarded anyway: never pay for syncing it.
    const overlay = await open(overlayPath, { ...options, snapshot: false, format: 'qcow2', cache: 'unsafe' });
    return new SnapshotDisk(path, format, overlay, directory);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    if (error instanceof DiskImageError) throw error;
    throw new DiskImageError(path, format, `cannot create the snapshot overlay: ${(error as Error).message}`, { cause: error });
  }
}

class SnapshotDisk implements DiskImage {
  readonly size: number;
  readonly readOnly = false;
  private closed = false;
  readonly readv?: (offset: number, dsts: readonly Uint8Array[]) => Promise<void>;
  readonly writev?: (offset: number, srcs: readonly Uint8Array[]) => Promise<void>;

  constructor(
    readonly path: string,
    readonly format: 'raw' | 'qcow2',
    private readonly overlay: DiskImage,
    private readonly directory: string,
  ) {
    this.size = overlay.size;
    if (overlay.readv) this.readv = (offset, dsts) => overlay.readv!(offset, dsts);
    if (overlay.writev) this.writev = (offset, srcs) => overlay.writev!(offset, srcs);
  }

  read(offset: number, dst: Uint8Array): Promise<void> {
    return this.overlay.read(offset, dst);
  }

  write(offset: number, src: Uint8Array): Promise<void> {
    return this.overlay.write(offset, src);
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.overlay.writeZeroes!(offset, length);
  }

  discard(offset: number, length: number): Promise<void> {
    return this.overlay.discard!(offset, length);
  }

  flush(): Promise<void> {
    return this.overlay.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.overlay.close();
    } finally {
      await rm(this.directory, { recursive: true, force: true });
    }
  }
}
