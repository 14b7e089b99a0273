// The qcow2 header (docs/interop/qcow2.txt): parsing with validation of every field we rely on, and
// encoding for newly created images. Problems are reported as CorruptImageError (malformed) or
// UnsupportedImageError (valid but using something we do not implement); open() turns both into a
// DiskImageError naming the file.

import { CorruptImageError } from '../errors.js';
import type { BlockFile } from '../file.js';
import { QCOW2_MAGIC } from '../probe.js';
import {
  MAX_BACKING_FILE_NAME,
  MAX_CLUSTER_BITS,
  MAX_L1_BYTES,
  MAX_OFFSET,
  MAX_REFCOUNT_TABLE_BYTES,
  MIN_CLUSTER_BITS,
} from './limits.js';

export const V2_HEADER_LENGTH = 72;
export const V3_HEADER_LENGTH = 104;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_EXTERNAL_DATA = 1n << 2n;
export const INCOMPAT_COMPRESSION_TYPE = 1n << 3n;
export const INCOMPAT_EXTENDED_L2 = 1n << 4n;
/** Compatible feature bit 0: refcounts may be stale while the dirty bit is set. */
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;
/** Autoclear feature bit 0: the bitmaps extension is valid. */
export const AUTOCLEAR_BITMAPS = 1n << 0n;

export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_EXTERNAL_DATA_FILE = 0x44415441;

/** Byte offsets of header fields we rewrite in place. */
export const FIELD_SIZE = 24;
export const FIELD_L1_SIZE = 36;
export const FIELD_REFCOUNT_TABLE_OFFSET = 48;
export const FIELD_AUTOCLEAR_FEATURES = 88;

export class UnsupportedImageError extends Error {
  override readonly name = 'UnsupportedImageError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export interface BitmapsExtension {
  count: number;
  directorySize: number;
  directoryOffset: number;
}

export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  /** Virtual disk size in bytes. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile: string | undefined;
  backingFormat: string | undefined;
  externalDataFile: string | undefined;
  /** The bitmaps extension, when there is one (valid only while the bitmaps autoclear bit is set). */
  bitmaps: BitmapsExtension | undefined;
  /** Names from the feature name table, keyed "type:bit" (type 0 incompatible, 1 compatible, 2 autoclear). */
  featureNames: Map<string, string>;
}

function u64(view: DataView, offset: number, field: string, limit = MAX_OFFSET): number {
  const value = view.getBigUint64(offset);
  if (value > BigInt(limit)) throw new CorruptImageError(`header field ${field} (${value}) is too large`);
  return Number(value);
}

/** Reads just enough of the header to learn the cluster size (so the caller can read the first cluster). */
export function peekClusterBits(head: Uint8Array): number {
  if (head.length < V2_HEADER_LENGTH) throw new CorruptImageError(`file too short for a qcow2 header (${head.length} bytes)`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw new CorruptImageError('not a qcow2 image (bad magic)');
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new UnsupportedImageError(`qcow2 version ${version} is not supported (only 2 and 3)`);
  const clusterBits = view.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new CorruptImageError(`cluster_bits ${clusterBits} is outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  }
  return clusterBits;
}

/**
 * Parses the header from the image's first cluster (or as much of it as the file holds).
 * Refuses features we cannot honour; the dirty and corrupt bits are reported, not refused, since
 * they only forbid writing.
 */
export function parseHeader(firstCluster: Uint8Array): Qcow2Header {
  const clusterBits = peekClusterBits(firstCluster);
  const clusterSize = 2 ** clusterBits;
  const view = new DataView(firstCluster.buffer, firstCluster.byteOffset, firstCluster.byteLength);
  const available = Math.min(firstCluster.length, clusterSize);
  const version = view.getUint32(4) as 2 | 3;

  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let refcountOrder = 4;
  let headerLength = V2_HEADER_LENGTH;
  let compressionType = 0;
  if (version === 3) {
    if (available < V3_HEADER_LENGTH) throw new CorruptImageError(`file too short for a version 3 header (${available} bytes)`);
    incompatibleFeatures = view.getBigUint64(72);
    compatibleFeatures = view.getBigUint64(80);
    autoclearFeatures = view.getBigUint64(88);
    refcountOrder = view.getUint32(96);
    headerLength = view.getUint32(100);
    if (headerLength < V3_HEADER_LENGTH || headerLength % 8 !== 0 || headerLength > available) {
      throw new CorruptImageError(`header_length ${headerLength} is invalid (must be a multiple of 8, at least ${V3_HEADER_LENGTH}, within the first cluster)`);
    }
    if (refcountOrder > 6) throw new CorruptImageError(`refcount_order ${refcountOrder} is greater than 6`);
    if (headerLength > 104) compressionType = firstCluster[104]!;
  }

  const header: Qcow2Header = {
    version,
    clusterBits,
    clusterSize,
    size: u64(view, 24, 'size'),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: u64(view, 40, 'l1_table_offset'),
    refcountTableOffset: u64(view, 48, 'refcount_table_offset'),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: u64(view, 64, 'snapshots_offset'),
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountOrder,
    headerLength,
    compressionType,
    backingFile: undefined,
    backingFormat: undefined,
    externalDataFile: undefined,
    bitmaps: undefined,
    featureNames: new Map(),
  };

  parseExtensions(firstCluster.subarray(0, available), header);
  checkFeatures(header);
  checkTables(header);
  header.backingFile = parseBackingFileName(view, available);
  return header;
}

/**
 * Reads and parses the header of the qcow2 image in `file`: its fixed part first, for the cluster size,
 * then the whole first cluster, where the extensions and the backing file name live.
 */
export async function readHeader(file: BlockFile): Promise<Qcow2Header> {
  const head = new Uint8Array(V3_HEADER_LENGTH);
  const headLength = await file.read(0, head);
  const clusterSize = 2 ** peekClusterBits(head.subarray(0, headLength));
  const first = new Uint8Array(clusterSize);
  const firstLength = await file.read(0, first);
  return parseHeader(first.subarray(0, firstLength));
}

function parseExtensions(area: Uint8Array, header: Qcow2Header): void {
  const view = new DataView(area.buffer, area.byteOffset, area.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let position = header.headerLength;
  // Each extension advances at least 8 bytes and must stay in the first cluster, so this ends.
  while (position + 8 <= area.length) {
    const type = view.getUint32(position);
    const length = view.getUint32(position + 4);
    if (type === EXT_END) return;
    const dataStart = position + 8;
    if (length > area.length - dataStart) {
      throw new CorruptImageError(`header extension 0x${type.toString(16)} at byte ${position} (length ${length}) runs past the first cluster`);
    }
    const data = area.subarray(dataStart, dataStart + length);
    switch (type) {
      case EXT_BACKING_FORMAT:
        header.backingFormat = decoder.decode(data);
        break;
      case EXT_BITMAPS:
        if (length >= 24) {
          const ext = new DataView(data.buffer, data.byteOffset, data.byteLength);
          header.bitmaps = { count: ext.getUint32(0), directorySize: Number(ext.getBigUint64(8)), directoryOffset: Number(ext.getBigUint64(16)) };
        }
        break;
      case EXT_EXTERNAL_DATA_FILE:
        header.externalDataFile = decoder.decode(data);
        break;
      case EXT_FEATURE_TABLE:
        for (let entry = 0; entry + 48 <= data.length; entry += 48) {
          const name = decoder.decode(data.subarray(entry + 2, entry + 48)).replace(/\0.*$/s, '').replace(/[^\x20-\x7e]/g, '?');
          header.featureNames.set(`${data[entry]}:${data[entry + 1]}`, name);
        }
        break;
      default:
        // The encryption header pointer and unknown extensions do not change how we read data.
        break;
    }
    position = dataStart + Math.ceil(length / 8) * 8;
  }
}

function featureName(header: Qcow2Header, type: number, bit: number): string {
  const name = header.featureNames.get(`${type}:${bit}`);
  return name ? `'${name}'` : 'with no name in the feature table';
}

function checkFeatures(header: Qcow2Header): void {
  if (header.cryptMethod !== 0) {
    const method = header.cryptMethod === 1 ? 'AES' : header.cryptMethod === 2 ? 'LUKS' : `method ${header.cryptMethod}`;
    throw new UnsupportedImageError(`encrypted images (${method}) are not supported`);
  }
  const features = header.incompatibleFeatures;
  if (features & INCOMPAT_EXTERNAL_DATA) {
    throw new UnsupportedImageError(`external data files are not supported${header.externalDataFile ? ` (data file '${header.externalDataFile}')` : ''}`);
  }
  if (features & INCOMPAT_COMPRESSION_TYPE) {
    const type = header.compressionType === 1 ? 'zstd' : `type ${header.compressionType}`;
    throw new UnsupportedImageError(`compression ${type} is not supported (only deflate)`);
  }
  if (header.compressionType !== 0) {
    throw new CorruptImageError(`compression_type ${header.compressionType} is set without the compression type feature bit`);
  }
  if (features & INCOMPAT_EXTENDED_L2) {
    throw new UnsupportedImageError('extended L2 entries (subclusters) are not supported');
  }
  const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_EXTERNAL_DATA | INCOMPAT_COMPRESSION_TYPE | INCOMPAT_EXTENDED_L2;
  const unknown = features & ~known;
  if (unknown !== 0n) {
    const bits: string[] = [];
    for (let bit = 0; bit < 64; bit++) {
      if (unknown & (1n << BigInt(bit))) bits.push(`bit ${bit} ${featureName(header, 0, bit)}`);
    }
    throw new UnsupportedImageError(`unknown incompatible feature(s): ${bits.join(', ')}`);
  }
}

function checkTableLocation(offset: number, bytes: number, clusterSize: number, what: string): void {
  if (offset % clusterSize !== 0) throw new CorruptImageError(`${what} offset 0x${offset.toString(16)} is not aligned to a cluster`);
  if (offset < clusterSize) throw new CorruptImageError(`${what} offset 0x${offset.toString(16)} overlaps the image header`);
  if (offset + bytes > MAX_OFFSET) throw new CorruptImageError(`${what} at 0x${offset.toString(16)} is beyond the supported file size`);
}

function checkTables(header: Qcow2Header): void {
  const { clusterSize } = header;
  const l2Entries = clusterSize / 8;
  const neededL1 = Math.ceil(header.size / (clusterSize * l2Entries));
  if (header.l1Size * 8 > MAX_L1_BYTES) throw new CorruptImageError(`L1 table of ${header.l1Size} entries exceeds the ${MAX_L1_BYTES}-byte limit`);
  if (header.l1Size < neededL1) {
    throw new CorruptImageError(`L1 table has ${header.l1Size} entries but the disk size ${header.size} needs ${neededL1}`);
  }
  if (header.l1Size > 0) checkTableLocation(header.l1TableOffset, header.l1Size * 8, clusterSize, 'L1 table');

  const refcountBytes = header.refcountTableClusters * clusterSize;
  if (header.refcountTableClusters === 0) throw new CorruptImageError('the image has no refcount table (refcount_table_clusters is 0)');
  if (refcountBytes > MAX_REFCOUNT_TABLE_BYTES) {
    throw new CorruptImageError(`refcount table of ${header.refcountTableClusters} clusters exceeds the ${MAX_REFCOUNT_TABLE_BYTES}-byte limit`);
  }
  checkTableLocation(header.refcountTableOffset, refcountBytes, clusterSize, 'refcount table');
  if (header.l1Size > 0 && overlaps(header.l1TableOffset, header.l1Size * 8, header.refcountTableOffset, refcountBytes)) {
    throw new CorruptImageError('the L1 table and the refcount table overlap');
  }
  if (header.nbSnapshots > 0 && (header.snapshotsOffset % clusterSize !== 0 || header.snapshotsOffset < clusterSize)) {
    throw new CorruptImageError(`snapshot table offset 0x${header.snapshotsOffset.toString(16)} is invalid`);
  }
}

function overlaps(aStart: number, aLength: number, bStart: number, bLength: number): boolean {
  return aStart < bStart + bLength && bStart < aStart + aLength;
}

function parseBackingFileName(view: DataView, available: number): string | undefined {
  const offset = view.getBigUint64(8);
  if (offset === 0n) return undefined;
  const length = view.getUint32(16);
  if (length === 0) return undefined;
  if (length > MAX_BACKING_FILE_NAME) throw new CorruptImageError(`backing file name is ${length} bytes long (limit ${MAX_BACKING_FILE_NAME})`);
  if (offset + BigInt(length) > BigInt(available)) {
    throw new CorruptImageError(`backing file name at byte ${offset} (length ${length}) lies outside the first cluster`);
  }
  const start = Number(offset);
  if (start < V2_HEADER_LENGTH) throw new CorruptImageError(`backing file name at byte ${start} overlaps the header`);
  return new TextDecoder().decode(new Uint8Array(view.buffer, view.byteOffset + start, length));
}

export interface NewHeaderFields {
  /** 3 (compat=1.1, the default) or 2 (compat=0.10: no feature bits, 16-bit refcounts only). */
  version?: 2 | 3;
  /** Sets the lazy refcounts compatible feature bit (version 3 only). */
  lazyRefcounts?: boolean;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountOrder: number;
  backingFile?: string;
  backingFormat?: string;
}

/** Encodes a version 3 (or 2) header with its extensions and backing file name into a first cluster. */
export function encodeHeader(fields: NewHeaderFields): Uint8Array {
  const version = fields.version ?? 3;
  if (version === 2 && (fields.refcountOrder !== 4 || fields.lazyRefcounts)) {
    throw new RangeError('a version 2 (compat=0.10) header has 16-bit refcounts and no lazy refcounts');
  }
  const clusterSize = 2 ** fields.clusterBits;
  const cluster = new Uint8Array(clusterSize);
  const view = new DataView(cluster.buffer);
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, version);
  view.setUint32(20, fields.clusterBits);
  view.setBigUint64(FIELD_SIZE, BigInt(fields.size));
  view.setUint32(FIELD_L1_SIZE, fields.l1Size);
  view.setBigUint64(40, BigInt(fields.l1TableOffset));
  view.setBigUint64(FIELD_REFCOUNT_TABLE_OFFSET, BigInt(fields.refcountTableOffset));
  view.setUint32(56, fields.refcountTableClusters);
  if (version === 3) {
    view.setBigUint64(80, fields.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n);
    view.setUint32(96, fields.refcountOrder);
    view.setUint32(100, V3_HEADER_LENGTH);
  }

  const encoder = new TextEncoder();
  let position = version === 3 ? V3_HEADER_LENGTH : V2_HEADER_LENGTH;
  const addExtension = (type: number, data: Uint8Array): void => {
    view.setUint32(position, type);
    view.setUint32(position + 4, data.length);
    cluster.set(data, position + 8);
    position += 8 + Math.ceil(data.length / 8) * 8;
  };
  if (fields.backingFormat !== undefined) addExtension(EXT_BACKING_FORMAT, encoder.encode(fields.backingFormat));
  // Feature bits, and so their names, exist from version 3 on. The names are only a courtesy to tools,
  // so with small clusters they give way to the backing file name, as in QEMU's images.
  const names = featureTable();
  const backingNameLength = fields.backingFile === undefined ? 0 : encoder.encode(fields.backingFile).length;
  if (version === 3 && position + 8 + names.length + 8 + backingNameLength <= clusterSize) addExtension(EXT_FEATURE_TABLE, names);
  position += 8; // end-of-extensions marker (type 0, length 0)

  if (fields.backingFile !== undefined) {
    const name = encoder.encode(fields.backingFile);
    if (name.length > MAX_BACKING_FILE_NAME || position + name.length > clusterSize) {
      throw new RangeError(`backing file name is too long (${name.length} bytes)`);
    }
    view.setBigUint64(8, BigInt(position));
    view.setUint32(16, name.length);
    cluster.set(name, position);
  }
  return cluster;
}

function featureTable(): Uint8Array {
  const names: Array<[number, number, string]> = [
    [0, 0, 'dirty bit'],
    [0, 1, 'corrupt bit'],
    [0, 2, 'external data file'],
    [0, 3, 'compression type'],
    [0, 4, 'extended L2 entries'],
    [1, 0, 'lazy refcounts'],
    [2, 0, 'bitmaps'],
    [2, 1, 'raw external data'],
  ];
  const table = new Uint8Array(names.length * 48);
  names.forEach(([type, bit, name], i) => {
    table[i * 48] = type;
    table[i * 48 + 1] = bit;
    table.set(new TextEncoder().encode(name), i * 48 + 2);
  });
  return table;
}
