// The disk image interface seen by virtio-blk, and openDiskImage(), which picks the backend (by the
// `format` option or, like QEMU's probing, by magic bytes), opens backing chains and applies
// snapshot=on. Probing a raw image is silent here; note that a guest able to write a qcow2 header into
// a raw image would change how it is probed next time, so pass `format` for images a guest controls.

import { realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CACHE_MODES, type CacheMode } from './cache-mode.js';
import { DiskImageError, type DiskFormat } from './errors.js';
import { openNodeBlockFile, type BlockFile, type BlockFileOpener } from './file.js';
import { probeFormat } from './probe.js';
import { MAX_BACKING_DEPTH } from './qcow2/limits.js';
import { Qcow2DiskImage } from './qcow2/image.js';
import { RawDiskImage } from './raw.js';
import { openSnapshotOverlay } from './snapshot.js';

export type { CacheMode } from './cache-mode.js';
export { DiskImageError, DiskIoError, type DiskFormat } from './errors.js';

export interface DiskImage {
  /** The image file (for snapshot=on: the original image, not the temporary overlay). */
  readonly path: string;
  readonly format: DiskFormat;
  /** Virtual disk size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills `dst` from the virtual disk at `offset`. Rejects with DiskIoError. */
  read(offset: number, dst: Uint8Array): Promise<void>;
  /** Writes `src` to the virtual disk at `offset`. Rejects with DiskIoError (also when read-only). */
  write(offset: number, src: Uint8Array): Promise<void>;
  /** Makes completed writes durable, as the cache mode defines. */
  flush(): Promise<void>;
  /**
   * Optional vectored forms: the same as read/write on the buffers laid end to end, without the caller
   * gathering them into one (virtio-blk passes the guest's scattered pages straight through).
   */
  readv?(offset: number, dsts: readonly Uint8Array[]): Promise<void>;
  writev?(offset: number, srcs: readonly Uint8Array[]): Promise<void>;
  /** Flushes (unless cache=unsafe) and releases the file(s); later requests reject. Idempotent. */
  close(): Promise<void>;
  /** Makes a range read as zeros (VIRTIO_BLK_T_WRITE_ZEROES). */
  writeZeroes?(offset: number, length: number): Promise<void>;
  /**
   * Lets the backend free storage behind a range (VIRTIO_BLK_T_DISCARD). Afterwards the range may read
   * as its old data, zeros or backing data; use writeZeroes when the content matters.
   */
  discard?(offset: number, length: number): Promise<void>;
}

export interface OpenDiskOptions {
  /** Image format; probed from the magic bytes when omitted. */
  format?: DiskFormat;
  readOnly?: boolean;
  /** Default 'writeback'. */
  cache?: CacheMode;
  /** Writes go to a temporary qcow2 overlay deleted on close; the image itself is opened read-only. */
  snapshot?: boolean;
  /** Memory for cached qcow2 L2 tables in bytes (default 4 MiB). */
  l2CacheBytes?: number;
  /** How image files are opened; tests inject counting or recording files here. */
  openFile?: BlockFileOpener;
}

export async function openDiskImage(path: string, options: OpenDiskOptions = {}): Promise<DiskImage> {
  const cache = options.cache ?? 'writeback';
  if (!CACHE_MODES.includes(cache)) throw new DiskImageError(path, options.format, `unknown cache mode '${cache}' (expected ${CACHE_MODES.join(', ')})`);
  if (options.snapshot) {
    return openSnapshotOverlay(path, options, (overlayPath, overlayOptions) => openChain(overlayPath, overlayOptions, []));
  }
  return openChain(path, { ...options, cache }, []);
}

async function openChain(path: string, options: OpenDiskOptions, chain: string[]): Promise<DiskImage> {
  let canonical: string;
  try {
    canonical = await realpath(path);
  } catch (error) {
    throw new DiskImageError(path, options.format, `cannot open: ${(error as Error).message}`, { cause: error });
  }
  // A FIFO would block open() forever and a device has no usable size: a hostile backing file name
  // must not be able to do either.
  const kind = await stat(canonical).then((stats) => (stats.isFile() ? 'file' : 'other'), () => 'other');
  if (kind !== 'file') throw new DiskImageError(path, options.format, 'not a regular file (devices, FIFOs and directories are not supported)');
  if (chain.includes(canonical)) {
    throw new DiskImageError(path, options.format, `backing file loop: ${[...chain, canonical].join(' -> ')}`);
  }
  if (chain.length > MAX_BACKING_DEPTH) {
    throw new DiskImageError(path, options.format, `backing chain deeper than ${MAX_BACKING_DEPTH} images`);
  }

  const readOnly = options.readOnly ?? false;
  let file: BlockFile;
  try {
    file = await (options.openFile ?? openNodeBlockFile)(path, !readOnly);
  } catch (error) {
    throw new DiskImageError(path, options.format, `cannot open: ${(error as Error).message}`, { cause: error });
  }
  try {
    let format = options.format;
    if (format === undefined) {
      const probed = await probeFormat(file);
      if ('unsupported' in probed) throw new DiskImageError(path, undefined, `image format '${probed.unsupported}' is not supported (only raw and qcow2)`);
      format = probed.format;
    }
    const cache = options.cache ?? 'writeback';
    if (format === 'raw') return await RawDiskImage.open(file, path, { readOnly, cache });
    return await Qcow2DiskImage.open(file, path, {
      readOnly,
      cache,
      l2CacheBytes: options.l2CacheBytes,
      openBacking: (backingFile, backingFormat) => {
        const backingPath = isAbsolute(backingFile) ? backingFile : resolve(dirname(path), backingFile);
        return openChain(backingPath, { format: backingFormat, readOnly: true, cache, openFile: options.openFile }, [...chain, canonical]);
      },
    });
  } catch (error) {
    await file.close().catch(() => {});
    if (error instanceof DiskImageError) throw error;
    throw new DiskImageError(path, options.format, (error as Error).message, { cause: error });
  }
}
