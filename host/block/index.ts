// Public entry point of the block layer: what virtio-blk and the -drive option parser use.

export { openDiskImage, type DiskImage, type OpenDiskOptions } from './disk.js';
export { CACHE_MODES, type CacheMode } from './cache-mode.js';
export { DiskImageError, DiskIoError, type DiskFormat, type DiskIoOperation } from './errors.js';
export { createQcow2, type CreateQcow2Options } from './qcow2/create.js';
export type { BlockFile, BlockFileOpener } from './file.js';
export { gather, scatterInto, totalLength } from './scatter.js';
export { BlockIoThread } from './io_thread.js';
export { MemoryBlockFile } from './memory_file.js';
export { RawDiskImage } from './raw.js';
export { blockIoSubmitted, performBlockIoHere, pollBlockIo, setBlockIoSpin } from './io_hooks.js';
