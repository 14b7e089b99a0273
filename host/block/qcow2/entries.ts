// Decoding of L1 and L2 table entries. Entries are big-endian u64; they are handled as two u32 halves so
// the common path never needs BigInt. Every field that will be used as a file offset is validated here.

import { CorruptImageError } from '../errors.js';
import { MAX_OFFSET } from './limits.js';

const TWO_32 = 2 ** 32;
/** Bit 63 of L1/L2 entries: refcount is exactly one, so the cluster may be written in place. */
export const COPIED_HI = 0x80000000;
/** Bit 62 of L2 entries: compressed cluster. */
export const COMPRESSED_HI = 0x40000000;
/** Bit 0 of standard L2 entries (version 3): the cluster reads as zeros. */
export const ZERO_LO = 1;

export type ClusterMapping =
  | { kind: 'unallocated' }
  /** Reads as zeros; hostOffset is a preallocated cluster or 0. */
  | { kind: 'zero'; hostOffset: number; copied: boolean }
  | { kind: 'normal'; hostOffset: number; copied: boolean }
  /** compressedSize counts from hostOffset to the end of the last sector the descriptor names. */
  | { kind: 'compressed'; hostOffset: number; compressedSize: number };

export const UNALLOCATED: ClusterMapping = { kind: 'unallocated' };

export interface TableGeometry {
  clusterBits: number;
  clusterSize: number;
  version: number;
}

/** Bits of a standard L2 entry that must be zero: 56-61 (high word) and 1-8 (low word). */
export const L2_RESERVED_HI = 0x3f000000;
export const L2_RESERVED_LO = 0x1fe;
/** Bits of an L1 entry that must be zero: 56-62 and 0-8. */
export const L1_RESERVED_HI = 0x7f000000;
export const L1_RESERVED_LO = 0x1ff;

/** Offset bits 9-55 of a standard entry. */
export function standardOffset(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * TWO_32 + ((lo & 0xfffffe00) >>> 0);
}

function checkClusterOffset(offset: number, geometry: TableGeometry, what: string): void {
  if (offset % geometry.clusterSize !== 0) {
    throw new CorruptImageError(`${what} offset 0x${offset.toString(16)} is not aligned to a cluster`);
  }
  if (offset < geometry.clusterSize) {
    throw new CorruptImageError(`${what} offset 0x${offset.toString(16)} points into the image header`);
  }
  if (offset > MAX_OFFSET - geometry.clusterSize) {
    throw new CorruptImageError(`${what} offset 0x${offset.toString(16)} is beyond the supported file size`);
  }
}

/** Returns the L2 table offset of an L1 entry (0 = no table) and whether it may be written in place. */
export function decodeL1Entry(view: DataView, index: number, geometry: TableGeometry): { l2Offset: number; copied: boolean } {
  const hi = view.getUint32(index * 8);
  const lo = view.getUint32(index * 8 + 4);
  if ((hi & L1_RESERVED_HI) !== 0 || (lo & L1_RESERVED_LO) !== 0) {
    throw new CorruptImageError(`L1 entry ${index} (0x${hex64(hi, lo)}) has reserved bits set`);
  }
  const l2Offset = standardOffset(hi, lo);
  if (l2Offset !== 0) checkClusterOffset(l2Offset, geometry, `L2 table (L1 entry ${index})`);
  return { l2Offset, copied: (hi & COPIED_HI) !== 0 };
}

export function decodeL2Entry(view: DataView, index: number, geometry: TableGeometry): ClusterMapping {
  const hi = view.getUint32(index * 8);
  const lo = view.getUint32(index * 8 + 4);
  if (hi === 0 && lo === 0) return UNALLOCATED;
  if ((hi & COMPRESSED_HI) !== 0) return decodeCompressed(hi, lo, index, geometry);
  if ((hi & L2_RESERVED_HI) !== 0 || (lo & L2_RESERVED_LO) !== 0) {
    throw new CorruptImageError(`L2 entry ${index} (0x${hex64(hi, lo)}) has reserved bits set`);
  }
  const copied = (hi & COPIED_HI) !== 0;
  const hostOffset = standardOffset(hi, lo);
  if ((lo & ZERO_LO) !== 0) {
    if (geometry.version < 3) throw new CorruptImageError(`L2 entry ${index} has the zero flag set in a version 2 image`);
    if (hostOffset !== 0) checkClusterOffset(hostOffset, geometry, `preallocated zero cluster (L2 entry ${index})`);
    return { kind: 'zero', hostOffset, copied };
  }
  if (hostOffset === 0) {
    // Only bit 63 can be left here; a host offset of 0 needs an external data file, which we refuse.
    throw new CorruptImageError(`L2 entry ${index} maps a cluster to host offset 0`);
  }
  checkClusterOffset(hostOffset, geometry, `data cluster (L2 entry ${index})`);
  return { kind: 'normal', hostOffset, copied };
}

/**
 * Where a compressed cluster's bytes lie. Descriptor: bits 0..x-1 host offset, bits x..61 additional
 * 512-byte sectors, x = 62 - (cluster_bits - 8); the size runs to the end of the last sector named.
 */
export function compressedExtent(hi: number, lo: number, clusterBits: number): { hostOffset: number; compressedSize: number } {
  const entry = (BigInt(hi & 0x3fffffff) << 32n) | BigInt(lo);
  const offsetBits = BigInt(62 - (clusterBits - 8));
  const hostOffset = Number(entry & ((1n << offsetBits) - 1n));
  const additionalSectors = Number(entry >> offsetBits);
  return { hostOffset, compressedSize: (additionalSectors + 1) * 512 - (hostOffset % 512) };
}

/** The descriptor of compressed data at `hostOffset` (`length` bytes); the inverse of compressedExtent. */
export function encodeCompressedDescriptor(view: DataView, index: number, hostOffset: number, length: number, clusterBits: number): void {
  const offsetBits = BigInt(62 - (clusterBits - 8));
  const additionalSectors = Math.floor((hostOffset + length - 1) / 512) - Math.floor(hostOffset / 512);
  const entry = (1n << 62n) | (BigInt(additionalSectors) << offsetBits) | BigInt(hostOffset);
  view.setBigUint64(index * 8, entry);
}

function decodeCompressed(hi: number, lo: number, index: number, geometry: TableGeometry): ClusterMapping {
  if ((hi & COPIED_HI) !== 0) {
    throw new CorruptImageError(`L2 entry ${index} (0x${hex64(hi, lo)}) is compressed but flagged as copied`);
  }
  const { hostOffset, compressedSize } = compressedExtent(hi, lo, geometry.clusterBits);
  if (hostOffset < geometry.clusterSize) {
    throw new CorruptImageError(`compressed cluster (L2 entry ${index}) at 0x${hostOffset.toString(16)} points into the image header`);
  }
  if (hostOffset + compressedSize > MAX_OFFSET) {
    throw new CorruptImageError(`compressed cluster (L2 entry ${index}) at 0x${hostOffset.toString(16)} is beyond the supported file size`);
  }
  return { kind: 'compressed', hostOffset, compressedSize };
}

export function encodeL2Entry(view: DataView, index: number, mapping: ClusterMapping): void {
  let hi = 0;
  let lo = 0;
  if (mapping.kind === 'normal' || mapping.kind === 'zero') {
    hi = Math.floor(mapping.hostOffset / TWO_32);
    lo = mapping.hostOffset % TWO_32;
    if (mapping.copied) hi = (hi | COPIED_HI) >>> 0;
    if (mapping.kind === 'zero') lo = (lo | ZERO_LO) >>> 0;
  } else if (mapping.kind === 'compressed') {
    throw new Error('writing compressed clusters is not supported');
  }
  view.setUint32(index * 8, hi);
  view.setUint32(index * 8 + 4, lo);
}

export function encodeL1Entry(view: DataView, index: number, l2Offset: number): void {
  const hi = Math.floor(l2Offset / TWO_32);
  view.setUint32(index * 8, l2Offset === 0 ? 0 : (hi | COPIED_HI) >>> 0);
  view.setUint32(index * 8 + 4, l2Offset % TWO_32);
}

export function hex64(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}
