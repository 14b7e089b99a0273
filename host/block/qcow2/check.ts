// A read-only consistency check of a qcow2 image, as `qemu-img check` does it: count the references
// every host cluster gets from the metadata (header, L1/L2 tables of the image and of its snapshots,
// the snapshot table, the refcount table and blocks) and compare them with the refcounts stored in the
// file. A stored refcount above the references is a leak (space wasted, data safe); below them is a
// corruption (a later allocation could hand out a cluster still in use), and so are entries that cannot
// be right whatever the refcounts say (reserved bits set, misaligned offsets, references past the end
// of the file, COPIED flags that disagree with the refcount). The problem lines and the counts follow
// qemu-img 7.2's, so the two tools' reports can be compared line by line.
//
// Nothing here writes, and nothing needs Node: the file comes through BlockFile.

import { CachePolicy } from '../cache-mode.js';
import { CorruptImageError, DiskImageError } from '../errors.js';
import type { BlockFile } from '../file.js';
import {
  COMPRESSED_HI,
  COPIED_HI,
  compressedExtent,
  L1_RESERVED_HI,
  L1_RESERVED_LO,
  L2_RESERVED_HI,
  L2_RESERVED_LO,
  standardOffset,
  ZERO_LO,
} from './entries.js';
import { readBitmapDirectory } from './bitmaps.js';
import { readHeader, UnsupportedImageError, type Qcow2Header } from './header.js';
import { MetadataIo } from './metadata-io.js';
import { readRefcount } from './refcounts.js';
import { MAX_L1_BYTES } from './limits.js';
import { readSnapshotTable, type SnapshotTable } from './snapshots.js';

/** A 64-bit entry in hex as qemu-img prints it (%PRIx64: no leading zeros). */
function hex(hi: number, lo: number): string {
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString(16);
}

/** The low 9 bits of a refcount table entry are reserved. */
const REFCOUNT_TABLE_RESERVED = 0x1ffn;

export interface Qcow2CheckReport {
  /** One line per problem, in the order found (qemu-img prints these on stderr). */
  problems: string[];
  /** Refcounts below the references, and metadata that is wrong in itself. */
  corruptions: number;
  /** Clusters whose refcount is above their references. */
  leaks: number;
  /** Parts of the check that could not be done (unreadable metadata). */
  checkErrors: number;
  /** Guest clusters of the virtual disk. */
  totalClusters: number;
  /** Guest clusters the active L2 tables map to host data (normal, compressed or preallocated zero). */
  allocatedClusters: number;
  /** Allocated clusters not right after the previous one of their L2 table in the file; every compressed one. */
  fragmentedClusters: number;
  compressedClusters: number;
  /** End of the last host cluster that is in use or has a refcount (at least the header's). */
  imageEndOffset: number;
  /**
   * Where the check gave up, as qemu-img does ("Check failed"): before counting anything (the snapshot
   * table cannot be read; the counts mean nothing), or in the COPIED flag pass (a refcount could not be
   * read; the counts stand); false when it ran to the end.
   */
  abandoned: 'before-counting' | 'copied-flags' | false;
  /** The header, for the caller's report. */
  header: Qcow2Header;
}

/**
 * COPIED flags to compare with the stored refcounts once all references are counted: triples of the
 * entry's two halves and (L1 index + 1) for an L1 entry, 0 for an L2 entry.
 */
class CopiedFlagRecords {
  private words = new Uint32Array(3 * 1024);
  length = 0;

  push(hi: number, lo: number, l1Index: number | null): void {
    if ((this.length + 1) * 3 > this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    this.words.set([hi, lo, l1Index === null ? 0 : l1Index + 1], this.length * 3);
    this.length++;
  }

  *entries(): Generator<{ hi: number; lo: number; l1Index: number | null }> {
    for (let i = 0; i < this.length; i++) {
      const tag = this.words[i * 3 + 2]!;
      yield { hi: this.words[i * 3]!, lo: this.words[i * 3 + 1]!, l1Index: tag === 0 ? null : tag - 1 };
    }
  }
}

class Qcow2Checker {
  private readonly clusterSize: number;
  private readonly fileClusters: number;
  /** References counted so far, per host cluster inside the file. */
  private readonly references: Uint32Array;
  private readonly copiedFlags = new CopiedFlagRecords();
  /** Host offsets of the refcount blocks the table names validly, by table index. */
  private readonly refcountBlocks = new Map<number, number>();
  /**
   * Table indexes whose block is misaligned or outside the file: their refcounts cannot be read at all.
   * The value is what qemu-img's block layer says the first time it meets a misaligned one.
   */
  private readonly unreadableBlocks = new Map<number, string | null>();

  private unreadableBlockReported = false;
  private snapshotTable: SnapshotTable | null = null;
  private readonly loadedBlocks = new Map<number, Uint8Array>();
  private readonly report: Qcow2CheckReport;

  constructor(private readonly io: MetadataIo, private readonly header: Qcow2Header, private readonly fileSize: number) {
    this.clusterSize = header.clusterSize;
    this.fileClusters = Math.ceil(fileSize / header.clusterSize);
    // One more than the file holds: a region may overhang the end of the file by less than a cluster.
    this.references = new Uint32Array(this.fileClusters + 1);
    this.report = {
      problems: [],
      corruptions: 0,
      leaks: 0,
      checkErrors: 0,
      totalClusters: Math.ceil(header.size / header.clusterSize),
      allocatedClusters: 0,
      fragmentedClusters: 0,
      compressedClusters: 0,
      imageEndOffset: header.clusterSize,
      abandoned: false,
      header,
    };
  }

  async run(): Promise<Qcow2CheckReport> {
    const { header } = this;
    await this.readSnapshots();
    // Without its snapshot table qemu-img checks nothing else ("Check failed"): the report says why.
    if (this.report.abandoned !== false) return this.report;
    this.reference(0, this.clusterSize);
    await this.walkL1(header.l1TableOffset, header.l1Size, true);
    await this.countSnapshots();
    await this.countRefcountMetadata();
    await this.countBitmaps();
    await this.compareRefcounts();
    await this.checkCopiedFlags();
    return this.report;
  }

  private corruption(line: string): void {
    this.report.problems.push(line);
    this.report.corruptions++;
  }

  private checkError(line: string): void {
    this.report.problems.push(line);
    this.report.checkErrors++;
  }

  /**
   * Counts one reference to each host cluster of [offset, offset + length). A region that ends a
   * whole cluster or more past the end of the file is a corruption and counts nothing (a shorter
   * overhang is counted: it reaches at most one cluster past the file's last); returns whether the
   * region was counted.
   */
  private reference(offset: number, length: number): boolean {
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.floor((offset + length - 1) / this.clusterSize);
    if (offset + length - this.fileSize >= this.clusterSize) {
      this.corruption('ERROR: counting reference for region exceeding the end of the file by one cluster or more: ' +
        `offset 0x${offset.toString(16)} size 0x${length.toString(16)}`);
      return false;
    }
    for (let cluster = first; cluster <= last; cluster++) this.references[cluster]!++;
    return true;
  }

  /** Reads a table the caller has already found to lie inside the file; null (a check error) if that fails. */
  private async readTable(offset: number, length: number, what: string): Promise<Uint8Array | null> {
    try {
      return await this.io.readExact(offset, length, what);
    } catch (error) {
      this.checkError(`ERROR: cannot read the ${what} at 0x${offset.toString(16)}: ${(error as Error).message}`);
      return null;
    }
  }

  /** An L1 table and everything it maps; `active` is the image's own (statistics and COPIED flags). */
  private async walkL1(l1Offset: number, l1Size: number, active: boolean): Promise<void> {
    if (l1Size === 0) return;
    if (!this.reference(l1Offset, l1Size * 8)) return;
    const l1 = await this.readTable(l1Offset, l1Size * 8, 'L1 table');
    if (l1 === null) return;
    const view = new DataView(l1.buffer);
    for (let index = 0; index < l1Size; index++) {
      const hi = view.getUint32(index * 8);
      const lo = view.getUint32(index * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      if ((hi & L1_RESERVED_HI) !== 0 || (lo & L1_RESERVED_LO) !== 0) {
        this.corruption(`ERROR found L1 entry with reserved bits set: ${hex(hi, lo)}`);
      }
      const l2Offset = standardOffset(hi, lo);
      if (l2Offset === 0) continue;
      // A misaligned table is still read where the entry says, as qemu-img does, so the two tools
      // report the same consequences.
      if (l2Offset % this.clusterSize !== 0) {
        this.corruption(`ERROR l2_offset=${l2Offset.toString(16)}: Table is not cluster aligned; L1 entry corrupted`);
      }
      if (active) this.copiedFlags.push(hi, lo, index);
      if (!this.reference(l2Offset, this.clusterSize)) continue;
      const l2 = await this.readTable(l2Offset, this.clusterSize, 'L2 table');
      if (l2 !== null) this.walkL2(new DataView(l2.buffer), active);
    }
  }

  private walkL2(view: DataView, active: boolean): void {
    const { clusterSize, report } = this;
    // Contiguity is judged within one L2 table, as qemu-img does.
    let nextContiguous = 0;
    for (let index = 0; index < clusterSize / 8; index++) {
      const hi = view.getUint32(index * 8);
      const lo = view.getUint32(index * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      if ((hi & COMPRESSED_HI) !== 0) {
        const { hostOffset, compressedSize } = compressedExtent(hi, lo, this.header.clusterBits);
        if ((hi & COPIED_HI) !== 0) this.corruption(`ERROR: coffset=0x${hostOffset.toString(16)}: copied flag must never be set for compressed clusters`);
        if (active) {
          report.allocatedClusters++;
          report.compressedClusters++;
          // Neighbouring compressed clusters share sectors, so reading them is never sequential.
          report.fragmentedClusters++;
        }
        this.reference(hostOffset, compressedSize);
        continue;
      }
      // Bit 0 is the zero flag from version 3 on; before that it is reserved like bits 1-8.
      const zeroFlag = this.header.version >= 3 && (lo & ZERO_LO) !== 0;
      const reservedLo = this.header.version >= 3 ? L2_RESERVED_LO : L2_RESERVED_LO | ZERO_LO;
      if ((hi & L2_RESERVED_HI) !== 0 || (lo & reservedLo) !== 0) {
        this.corruption(`ERROR found l2 entry with reserved bits set: ${hex(hi, lo)}`);
      }
      const hostOffset = standardOffset(hi, lo);
      // Unallocated (perhaps flagged zero): nothing in the file.
      if (hostOffset === 0) continue;
      if (hostOffset % clusterSize !== 0) {
        this.corruption(`ERROR offset=${hostOffset.toString(16)}: ${zeroFlag ? 'Preallocated' : 'Data'} cluster is not properly aligned; L2 entry corrupted.`);
      }
      if (active) {
        report.allocatedClusters++;
        if (nextContiguous !== 0 && hostOffset !== nextContiguous) report.fragmentedClusters++;
        nextContiguous = hostOffset + clusterSize;
        this.copiedFlags.push(hi, lo, null);
      }
      // A misaligned entry's cluster-sized region touches two host clusters; both count it.
      this.reference(hostOffset, clusterSize);
    }
  }

  /** The snapshot table is read first, as qemu-img does, so problems with its entries are reported first. */
  private async readSnapshots(): Promise<void> {
    const { header } = this;
    if (header.nbSnapshots === 0) return;
    if (header.snapshotsOffset % this.clusterSize !== 0) {
      this.corruption(`ERROR snapshot table offset 0x${header.snapshotsOffset.toString(16)} is not cluster aligned`);
      return;
    }
    try {
      this.snapshotTable = await readSnapshotTable(this.io, header);
    } catch (error) {
      if (!(error instanceof CorruptImageError)) throw error;
      this.checkError(`ERROR failed to read the snapshot table: ${error.reason}`);
      this.report.abandoned = 'before-counting';
      return;
    }
    this.snapshotTable.snapshots.forEach((snapshot, index) => {
      if (header.version >= 3 && snapshot.extraDataSize < 16) this.corruption(`ERROR snapshot table entry ${index} is incomplete`);
    });
  }

  private async countSnapshots(): Promise<void> {
    const table = this.snapshotTable;
    if (table === null) return;
    for (const snapshot of table.snapshots) {
      if (snapshot.l1Size * 8 > MAX_L1_BYTES) {
        this.corruption(`ERROR snapshot ${snapshot.id} (${snapshot.name}) l1_size=0x${snapshot.l1Size.toString(16)}: ` +
          'L1 table is too large; snapshot table entry corrupted');
        continue;
      }
      if (snapshot.l1TableOffset % this.clusterSize !== 0) {
        this.corruption(`ERROR snapshot ${snapshot.id} (${snapshot.name}) l1_offset=0x${snapshot.l1TableOffset.toString(16)}: ` +
          'L1 table is not cluster aligned; snapshot table entry corrupted');
        continue;
      }
      await this.walkL1(snapshot.l1TableOffset, snapshot.l1Size, false);
    }
    this.reference(this.header.snapshotsOffset, table.byteLength);
  }

  private async countRefcountMetadata(): Promise<void> {
    const { header, clusterSize } = this;
    const tableBytes = header.refcountTableClusters * clusterSize;
    if (!this.reference(header.refcountTableOffset, tableBytes)) return;
    const table = await this.readTable(header.refcountTableOffset, tableBytes, 'refcount table');
    if (table === null) return;
    const view = new DataView(table.buffer);
    for (let index = 0; index < tableBytes / 8; index++) {
      const entry = view.getBigUint64(index * 8);
      const offset = Number(entry & ~REFCOUNT_TABLE_RESERVED);
      if (offset === 0 && entry === 0n) continue;
      if ((entry & REFCOUNT_TABLE_RESERVED) !== 0n) {
        // The block is still where the entry points (its refcounts are read), but the entry is no
        // reference to it: qemu-img's reading, so the two reports agree.
        this.corruption(`ERROR refcount table entry ${index} has reserved bits set`);
        if (offset !== 0 && offset % clusterSize === 0 && offset / clusterSize < this.fileClusters) this.refcountBlocks.set(index, offset);
        continue;
      }
      if (offset % clusterSize !== 0) {
        this.corruption(`ERROR refcount block ${index} is not cluster aligned; refcount table entry corrupted`);
        this.unreadableBlocks.set(index, `qcow2: Image is corrupt: Refblock offset 0x${offset.toString(16)} unaligned (reftable index: ${index}); ` +
          'further non-fatal corruption events will be suppressed');
        continue;
      }
      if (offset / clusterSize >= this.fileClusters) {
        this.corruption(`ERROR refcount block ${index} is outside image`);
        // Past the end of the file a block reads as zeros, unless its offset is not even a file
        // offset (bit 63 set): then reading fails, as it does for qemu-img.
        if (entry >= 1n << 63n) this.unreadableBlocks.set(index, null);
        continue;
      }
      this.reference(offset, clusterSize);
      this.refcountBlocks.set(index, offset);
      // A refcount block is referenced once, by this entry; more means something else uses its cluster.
      const references = this.references[offset / clusterSize]!;
      if (references !== 1) this.corruption(`ERROR refcount block ${index} refcount=${references}`);
    }
  }

  /** Persistent bitmaps: their directory, each bitmap's table and the data clusters the tables name. */
  private async countBitmaps(): Promise<void> {
    let bitmaps;
    try {
      bitmaps = await readBitmapDirectory(this.io, this.header);
    } catch (error) {
      if (!(error instanceof CorruptImageError)) throw error;
      this.checkError(`ERROR: cannot read the bitmap directory: ${error.reason}`);
      return;
    }
    if (bitmaps.length === 0) return;
    const extension = this.header.bitmaps!;
    this.reference(extension.directoryOffset, extension.directorySize);
    for (const bitmap of bitmaps) {
      if (bitmap.tableSize === 0) continue;
      if (!this.reference(bitmap.tableOffset, bitmap.tableSize * 8)) continue;
      const table = await this.readTable(bitmap.tableOffset, bitmap.tableSize * 8, `table of bitmap '${bitmap.name}'`);
      if (table === null) continue;
      const view = new DataView(table.buffer);
      for (let index = 0; index < bitmap.tableSize; index++) {
        const offset = standardOffset(view.getUint32(index * 8), view.getUint32(index * 8 + 4));
        if (offset !== 0) this.reference(offset, this.clusterSize);
      }
    }
  }

  private get refcountBits(): number {
    return 2 ** this.header.refcountOrder;
  }

  /**
   * The refcount the file stores for a cluster; 0 where no refcount block covers it, null where the
   * block's table entry is misaligned (the refcount cannot be had; qemu-img calls that an I/O error).
   */
  private async storedRefcount(cluster: number): Promise<number | null> {
    const entriesPerBlock = (this.clusterSize * 8) / this.refcountBits;
    const tableIndex = Math.floor(cluster / entriesPerBlock);
    if (this.unreadableBlocks.has(tableIndex)) {
      const event = this.unreadableBlocks.get(tableIndex);
      if (event && !this.unreadableBlockReported) {
        this.report.problems.push(event);
        this.unreadableBlockReported = true;
      }
      return null;
    }
    const blockOffset = this.refcountBlocks.get(tableIndex);
    if (blockOffset === undefined) return 0;
    let block = this.loadedBlocks.get(tableIndex);
    if (block === undefined) {
      block = (await this.readTable(blockOffset, this.clusterSize, `refcount block ${tableIndex}`)) ?? new Uint8Array(this.clusterSize);
      this.loadedBlocks.set(tableIndex, block);
    }
    return readRefcount(block, cluster % entriesPerBlock, this.refcountBits);
  }

  private async compareRefcounts(): Promise<void> {
    const { report } = this;
    // Refcounts of clusters past the end of the file are not looked at, but for one that something
    // overhanging the end references: nothing else there can be in use.
    const clusters = this.references[this.fileClusters] !== 0 ? this.fileClusters + 1 : this.fileClusters;
    for (let cluster = 0; cluster < clusters; cluster++) {
      const stored = await this.storedRefcount(cluster);
      if (stored === null) {
        this.checkError(`Can't get refcount for cluster ${cluster}: Input/output error`);
        continue;
      }
      const counted = this.references[cluster]!;
      if (stored !== 0 || counted !== 0) report.imageEndOffset = (cluster + 1) * this.clusterSize;
      if (stored < counted) {
        this.corruption(`ERROR cluster ${cluster} refcount=${stored} reference=${counted}`);
      } else if (stored > counted) {
        report.problems.push(`Leaked cluster ${cluster} refcount=${stored} reference=${counted}`);
        report.leaks++;
      }
    }
  }

  /** COPIED (bit 63) promises a refcount of exactly 1, and its absence promises one that is not 1. */
  private async checkCopiedFlags(): Promise<void> {
    for (const { hi, lo, l1Index } of this.copiedFlags.entries()) {
      const refcount = await this.storedRefcount(Math.floor(standardOffset(hi, lo) / this.clusterSize));
      if (refcount === null) {
        // qemu-img gives up on the rest of the check here ("Check failed"); so do we, to report alike.
        this.report.abandoned = 'copied-flags';
        return;
      }
      if ((refcount === 1) !== ((hi & COPIED_HI) !== 0)) {
        if (l1Index !== null) this.corruption(`ERROR OFLAG_COPIED L2 cluster: l1_index=${l1Index} l1_entry=${hex(hi, lo)} refcount=${refcount}`);
        else this.corruption(`ERROR OFLAG_COPIED data cluster: l2_entry=${hex(hi, lo)} refcount=${refcount}`);
      }

    }
  }
}

/**
 * Checks the qcow2 image in `file` (read-only). A header that cannot be parsed, or features we cannot
 * read, make it throw DiskImageError (qemu-img check cannot open such an image either); everything
 * else is in the report.
 */
export async function checkQcow2(file: BlockFile, path: string): Promise<Qcow2CheckReport> {
  const fileSize = await file.size();
  let header: Qcow2Header;
  try {
    header = await readHeader(file);
  } catch (error) {
    if (error instanceof CorruptImageError || error instanceof UnsupportedImageError) throw new DiskImageError(path, 'qcow2', error.reason, { cause: error });
    throw error;
  }
  const io = new MetadataIo(file, new CachePolicy('unsafe'), fileSize);
  return new Qcow2Checker(io, header, fileSize).run();
}
