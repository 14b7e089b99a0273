// Reference counts of host clusters: the refcount table (kept whole in memory) pointing to refcount
// blocks (cached, written through). Also the cluster allocator, since a cluster is free exactly when its
// refcount is 0.
//
// Invariants kept on disk at every step: a refcount block is written before the table entry pointing to
// it; a new refcount table is complete and described by refcount blocks before the header points to it.
// A new refcount block always describes itself (it lies in the range it covers, which is entirely free
// when the block is missing), so allocating one never recurses.

import { CorruptImageError } from '../errors.js';
import { LruCache } from './lru.js';
import { MAX_OFFSET } from './limits.js';
import type { MetadataIo } from './metadata-io.js';
import { FIELD_REFCOUNT_TABLE_OFFSET } from './header.js';

const TWO_32 = 2 ** 32;

export interface RefcountGeometry {
  clusterBits: number;
  refcountOrder: number;
  tableOffset: number;
  tableClusters: number;
}

export class RefcountStore {
  readonly clusterSize: number;
  readonly refcountBits: number;
  readonly entriesPerBlock: number;
  readonly maxRefcount: number;
  private tableOffset: number;
  private tableClusters: number;
  /** Host offsets of refcount blocks, by refcount table index (0 = not allocated). */
  private table: Float64Array;
  private readonly blockClusters = new Set<number>();
  private readonly blocks: LruCache<number, Uint8Array>;
  /** No cluster below this index is free (a scan starts here). */
  private freeHint = 1;

  private constructor(
    private readonly io: MetadataIo,
    geometry: RefcountGeometry,
    table: Float64Array,
    cachedBlocks: number,
    /** Clusters that hold metadata the refcounts might not know about (defence against corrupt refcounts). */
    private readonly isReservedCluster: (clusterIndex: number) => boolean,
  ) {
    this.clusterSize = 2 ** geometry.clusterBits;
    this.refcountBits = 2 ** geometry.refcountOrder;
    this.entriesPerBlock = (this.clusterSize * 8) / this.refcountBits;
    this.maxRefcount = this.refcountBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.refcountBits - 1;
    this.tableOffset = geometry.tableOffset;
    this.tableClusters = geometry.tableClusters;
    this.table = table;
    this.blocks = new LruCache(cachedBlocks);
    for (const offset of table) if (offset !== 0) this.blockClusters.add(offset / this.clusterSize);
  }

  static async load(
    io: MetadataIo,
    geometry: RefcountGeometry,
    cachedBlocks: number,
    isReservedCluster: (clusterIndex: number) => boolean,
  ): Promise<RefcountStore> {
    const clusterSize = 2 ** geometry.clusterBits;
    const bytes = await io.readExact(geometry.tableOffset, geometry.tableClusters * clusterSize, 'refcount table');
    const view = new DataView(bytes.buffer);
    const table = new Float64Array(bytes.length / 8);
    for (let i = 0; i < table.length; i++) {
      const hi = view.getUint32(i * 8);
      const lo = view.getUint32(i * 8 + 4);
      const offset = hi * TWO_32 + lo;
      if (offset === 0) continue;
      if (offset % clusterSize !== 0) throw new CorruptImageError(`refcount table entry ${i} (0x${offset.toString(16)}) is not aligned to a cluster`);
      if (offset < clusterSize) throw new CorruptImageError(`refcount table entry ${i} points into the image header`);
      if (offset > MAX_OFFSET - clusterSize) throw new CorruptImageError(`refcount table entry ${i} (0x${offset.toString(16)}) is beyond the supported file size`);
      table[i] = offset;
    }
    return new RefcountStore(io, geometry, table, cachedBlocks, isReservedCluster);
  }

  /** The clusters holding the refcount table (they must never be handed out for data). */
  isTableCluster(clusterIndex: number): boolean {
    const first = this.tableOffset / this.clusterSize;
    return clusterIndex >= first && clusterIndex < first + this.tableClusters;
  }

  isBlockCluster(clusterIndex: number): boolean {
    return this.blockClusters.has(clusterIndex);
  }

  async get(clusterIndex: number): Promise<number> {
    const tableIndex = Math.floor(clusterIndex / this.entriesPerBlock);
    if (tableIndex >= this.table.length || this.table[tableIndex] === 0) return 0;
    const block = await this.loadBlock(tableIndex);
    return readRefcount(block, clusterIndex % this.entriesPerBlock, this.refcountBits);
  }

  /** Picks a free cluster without claiming it, so data can be written there before its refcount. */
  findFree(): Promise<number> {
    return this.findFreeRun(1);
  }

  /** Finds `count` consecutive free clusters (without claiming them); returns the first one's offset. */
  async findFreeRun(count: number): Promise<number> {
    const endCluster = Math.ceil(this.io.fileEnd / this.clusterSize);
    let runStart = -1;
    let firstFree = -1;
    for (let clusterIndex = this.freeHint; ; clusterIndex++) {
      if (clusterIndex * this.clusterSize > MAX_OFFSET - count * this.clusterSize) throw new CorruptImageError('the image file has reached the supported size limit');
      // Past the end of the file nothing can be in use; this also bounds the scan for hostile refcounts.
      const free = !this.isReserved(clusterIndex) && (clusterIndex >= endCluster || (await this.get(clusterIndex)) === 0);
      if (!free) {
        runStart = -1;
        continue;
      }
      if (firstFree < 0) firstFree = clusterIndex;
      if (runStart < 0) runStart = clusterIndex;
      if (clusterIndex - runStart + 1 === count) {
        this.freeHint = firstFree;
        return runStart * this.clusterSize;
      }
    }
  }

  /** Sets the refcount of a cluster found by findFree() to 1. */
  claim(hostOffset: number): Promise<void> {
    return this.claimRun(hostOffset, 1);
  }

  /** Sets the refcounts of `count` clusters from findFreeRun() to 1, with one write per refcount block. */
  async claimRun(hostOffset: number, count: number): Promise<void> {
    const first = hostOffset / this.clusterSize;
    let pending: { blockOffset: number; block: Uint8Array; start: number; end: number; tableIndex: number } | undefined;
    const writePending = async (): Promise<void> => {
      if (!pending) return;
      await this.io.write(pending.blockOffset + pending.start, pending.block.subarray(pending.start, pending.end));
      pending = undefined;
    };
    for (let clusterIndex = first; clusterIndex < first + count; clusterIndex++) {
      const tableIndex = Math.floor(clusterIndex / this.entriesPerBlock);
      // Written before any block allocation or table growth, which may touch the cached blocks.
      if (pending && pending.tableIndex !== tableIndex) await writePending();
      await this.ensureBlock(tableIndex, first, first + count);
      const block = await this.loadBlock(tableIndex);
      const [start, end] = writeRefcount(block, clusterIndex % this.entriesPerBlock, this.refcountBits, 1);
      if (pending) {
        pending.end = end;
      } else {
        pending = { blockOffset: this.table[tableIndex]!, block, start, end, tableIndex };
      }
    }
    await writePending();
    this.freeHint = Math.max(this.freeHint, first + count);
  }

  /** One more reference to an allocated cluster (several compressed clusters share a host cluster). */
  async increment(hostOffset: number): Promise<void> {
    const clusterIndex = Math.floor(hostOffset / this.clusterSize);
    await this.set(clusterIndex, (await this.get(clusterIndex)) + 1);
  }

  async decrement(hostOffset: number): Promise<void> {
    const clusterIndex = Math.floor(hostOffset / this.clusterSize);
    const current = await this.get(clusterIndex);
    if (current === 0) throw new CorruptImageError(`refcount of cluster 0x${(clusterIndex * this.clusterSize).toString(16)} would drop below zero`);
    await this.set(clusterIndex, current - 1);
    if (current === 1) this.freeHint = Math.min(this.freeHint, clusterIndex);
  }

  private isReserved(clusterIndex: number): boolean {
    return clusterIndex === 0 || this.isTableCluster(clusterIndex) || this.blockClusters.has(clusterIndex) || this.isReservedCluster(clusterIndex);
  }

  private async set(clusterIndex: number, value: number): Promise<void> {
    if (value > this.maxRefcount) throw new CorruptImageError(`refcount ${value} does not fit in ${this.refcountBits} bits`);
    const tableIndex = Math.floor(clusterIndex / this.entriesPerBlock);
    await this.ensureBlock(tableIndex, clusterIndex, clusterIndex + 1);
    const block = await this.loadBlock(tableIndex);
    const [start, end] = writeRefcount(block, clusterIndex % this.entriesPerBlock, this.refcountBits, value);
    await this.io.write(this.table[tableIndex]! + start, block.subarray(start, end));
  }

  /**
   * Makes sure refcount block `tableIndex` exists. Clusters [busyStart, busyEnd) hold data whose
   * refcounts are about to be set, so new metadata must not be placed there.
   */
  private async ensureBlock(tableIndex: number, busyStart: number, busyEnd: number): Promise<void> {
    if (tableIndex >= this.table.length) await this.growTable(tableIndex, busyEnd);
    if (this.table[tableIndex] === 0) await this.allocateBlock(tableIndex, busyStart, busyEnd);
  }

  private async loadBlock(tableIndex: number): Promise<Uint8Array> {
    const cached = this.blocks.get(tableIndex);
    if (cached) return cached;
    const block = await this.io.readExact(this.table[tableIndex]!, this.clusterSize, `refcount block ${tableIndex}`);
    this.blocks.set(tableIndex, block);
    return block;
  }

  /** Creates the missing refcount block for `tableIndex` inside the range it covers. */
  private async allocateBlock(tableIndex: number, busyStart: number, busyEnd: number): Promise<void> {
    const first = tableIndex * this.entriesPerBlock;
    let blockCluster = first;
    while ((blockCluster >= busyStart && blockCluster < busyEnd) || this.isReserved(blockCluster)) blockCluster++;
    const block = new Uint8Array(this.clusterSize);
    if (blockCluster >= first + this.entriesPerBlock) {
      blockCluster = await this.claimClusterPast(busyEnd);
    } else {
      writeRefcount(block, blockCluster - first, this.refcountBits, 1);
    }
    const blockOffset = blockCluster * this.clusterSize;
    await this.io.write(blockOffset, block);
    await this.io.barrier();
    await this.writeTableEntry(tableIndex, blockOffset);
    await this.io.barrier();
    this.table[tableIndex] = blockOffset;
    this.blockClusters.add(blockCluster);
    this.blocks.set(tableIndex, block);
  }

  /**
   * For a refcount block whose whole range is busy (a contiguous run longer than one block's range,
   * such as a grown L1 table): a free cluster with refcount 1 in a later range that the run does not
   * reach, so that range's own block, if it must be made, cannot land in the run either.
   */
  private async claimClusterPast(busyEnd: number): Promise<number> {
    let cluster = Math.ceil(busyEnd / this.entriesPerBlock) * this.entriesPerBlock;
    while (this.isReserved(cluster) || (await this.get(cluster)) !== 0) cluster++;
    await this.set(cluster, 1);
    return cluster;
  }

  private async writeTableEntry(tableIndex: number, blockOffset: number): Promise<void> {
    const entry = new Uint8Array(8);
    new DataView(entry.buffer).setBigUint64(0, BigInt(blockOffset));
    await this.io.write(this.tableOffset + tableIndex * 8, entry);
  }

  /**
   * Moves the refcount table to a bigger one at the end of the file. The new table and the refcount
   * blocks for its own clusters are placed together in a fresh region that those blocks describe.
   */
  private async growTable(neededIndex: number, busyEnd: number): Promise<void> {
    const { clusterSize, entriesPerBlock } = this;
    const regionStart = Math.max(Math.ceil(this.io.fileEnd / clusterSize), busyEnd);
    let tableClusters = this.tableClusters;
    let blockCount = 1;
    for (;;) {
      const regionEnd = regionStart + blockCount + tableClusters;
      const firstIndex = Math.floor(regionStart / entriesPerBlock);
      const lastIndex = Math.floor((regionEnd - 1) / entriesPerBlock);
      const entries = Math.max(neededIndex, lastIndex, this.table.length - 1) + 1;
      const neededTableClusters = Math.ceil((entries * 8) / clusterSize);
      const neededBlocks = lastIndex - firstIndex + 1;
      if (neededTableClusters <= tableClusters && neededBlocks <= blockCount) break;
      tableClusters = Math.max(tableClusters, neededTableClusters);
      blockCount = Math.max(blockCount, neededBlocks);
    }
    const regionEnd = regionStart + blockCount + tableClusters;
    if (regionEnd * clusterSize > MAX_OFFSET || tableClusters * clusterSize > 8 * 1024 * 1024) {
      throw new CorruptImageError('the refcount table cannot grow any further');
    }

    const firstIndex = Math.floor(regionStart / entriesPerBlock);
    const newTable = new Float64Array((tableClusters * clusterSize) / 8);
    newTable.set(this.table);
    const newBlocks: Array<[number, Uint8Array]> = [];
    for (let i = 0; i < blockCount; i++) {
      const tableIndex = firstIndex + i;
      const block = new Uint8Array(clusterSize);
      const rangeStart = tableIndex * entriesPerBlock;
      for (let c = Math.max(regionStart, rangeStart); c < Math.min(regionEnd, rangeStart + entriesPerBlock); c++) {
        writeRefcount(block, c - rangeStart, this.refcountBits, 1);
      }
      const blockOffset = (regionStart + i) * clusterSize;
      await this.io.write(blockOffset, block);
      newTable[tableIndex] = blockOffset;
      newBlocks.push([tableIndex, block]);
    }
    const newTableOffset = (regionStart + blockCount) * clusterSize;
    const tableBytes = new Uint8Array(tableClusters * clusterSize);
    const tableView = new DataView(tableBytes.buffer);
    newTable.forEach((offset, i) => tableView.setBigUint64(i * 8, BigInt(offset)));
    await this.io.write(newTableOffset, tableBytes);
    await this.io.barrier();

    // offset (8 bytes) and cluster count (4 bytes) are adjacent: one write switches tables.
    const headerFields = new Uint8Array(12);
    const headerView = new DataView(headerFields.buffer);
    headerView.setBigUint64(0, BigInt(newTableOffset));
    headerView.setUint32(8, tableClusters);
    await this.io.write(FIELD_REFCOUNT_TABLE_OFFSET, headerFields);
    await this.io.barrier();

    const oldTableOffset = this.tableOffset;
    const oldTableClusters = this.tableClusters;
    this.table = newTable;
    this.tableOffset = newTableOffset;
    this.tableClusters = tableClusters;
    for (const [tableIndex, block] of newBlocks) {
      this.blocks.set(tableIndex, block);
      this.blockClusters.add(newTable[tableIndex]! / clusterSize);
    }
    for (let i = 0; i < oldTableClusters; i++) await this.decrement(oldTableOffset + i * clusterSize);
  }
}

export function readRefcount(block: Uint8Array, index: number, bits: number): number {
  switch (bits) {
    case 1:
    case 2:
    case 4: {
      const bit = index * bits;
      return (block[bit >> 3]! >> (bit & 7)) & ((1 << bits) - 1);
    }
    case 8:
      return block[index]!;
    case 16:
      return (block[index * 2]! << 8) | block[index * 2 + 1]!;
    case 32:
      return new DataView(block.buffer, block.byteOffset).getUint32(index * 4);
    default: {
      const view = new DataView(block.buffer, block.byteOffset);
      return view.getUint32(index * 8) * TWO_32 + view.getUint32(index * 8 + 4);
    }
  }
}

/** Stores a refcount and returns the byte range of the block that changed. */
export function writeRefcount(block: Uint8Array, index: number, bits: number, value: number): [number, number] {
  const view = new DataView(block.buffer, block.byteOffset);
  switch (bits) {
    case 1:
    case 2:
    case 4: {
      const bit = index * bits;
      const byte = bit >> 3;
      const mask = ((1 << bits) - 1) << (bit & 7);
      block[byte] = (block[byte]! & ~mask) | ((value << (bit & 7)) & mask);
      return [byte, byte + 1];
    }
    case 8:
      block[index] = value;
      return [index, index + 1];
    case 16:
      view.setUint16(index * 2, value);
      return [index * 2, index * 2 + 2];
    case 32:
      view.setUint32(index * 4, value);
      return [index * 4, index * 4 + 4];
    default:
      view.setUint32(index * 8, Math.floor(value / TWO_32));
      view.setUint32(index * 8 + 4, value % TWO_32);
      return [index * 8, index * 8 + 8];
  }
}
