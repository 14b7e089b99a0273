// Implementation limits. They bound every allocation an image can make us do and keep every file offset
// exactly representable as a JavaScript number.

export const MIN_CLUSTER_BITS = 9;
/** QEMU's limit too (2 MiB clusters). */
export const MAX_CLUSTER_BITS = 21;
/** QEMU's limit on the active L1 table. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** QEMU's limit on the refcount table. */
export const MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024;
/** Host file offsets and virtual sizes stay below 2^52 so that offset + length never loses precision. */
export const MAX_OFFSET = 2 ** 52;
export const MAX_BACKING_FILE_NAME = 1023;
/** How deep a chain of backing files may be before we call it a loop or abuse. */
export const MAX_BACKING_DEPTH = 16;
/** Default memory for cached L2 tables and refcount blocks. */
export const DEFAULT_L2_CACHE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_REFCOUNT_CACHE_BYTES = 1024 * 1024;
export const MIN_CACHED_TABLES = 4;
