// The qcow2 backend: guest clusters mapped through the L1 table (in memory) and L2 tables (LRU cache,
// written through) to host clusters, allocation with exact refcounts, copy-on-write from compressed
// clusters, shared clusters and backing files.
//
// Requests are scatter lists (read/write: one buffer; readv/writev: the guest's pages). Each run of
// clusters contiguous in the file moves with one vectored file request over views of those buffers,
// with no bounce buffer; only copy-on-write margins, zero fill and decompressed clusters are copied.
//
// Allocating write order: data → refcount → L2 entry → L1 entry, each step awaited before the next, and
// with fdatasync between the steps in writethrough mode, so an interrupted write leaves at worst a leaked
// cluster, never metadata pointing at unwritten data. A cluster that loses its last reference is freed
// only after the entry pointing at it has been replaced.

import { CachePolicy, type CacheMode } from '../cache-mode.js';
import type { DiskImage } from '../disk.js';
import { CorruptImageError, DiskImageError, DiskIoError, type DiskFormat, type DiskIoOperation } from '../errors.js';
import type { BlockFile } from '../file.js';
import { AsyncRwLock } from '../lock.js';
import { checkRequestRange } from '../range.js';
import { compressedHostClusters, readCompressedCluster } from './compressed.js';
import { decodeL1Entry, decodeL2Entry, encodeCompressedDescriptor, encodeL1Entry, encodeL2Entry, type ClusterMapping, type TableGeometry } from './entries.js';
import {
  FIELD_AUTOCLEAR_FEATURES,
  FIELD_L1_SIZE,
  FIELD_SIZE,
  INCOMPAT_CORRUPT,
  INCOMPAT_DIRTY,
  readHeader,
  UnsupportedImageError,
  type Qcow2Header,
} from './header.js';
import { DEFAULT_L2_CACHE_BYTES, DEFAULT_REFCOUNT_CACHE_BYTES, MAX_L1_BYTES, MAX_OFFSET, MIN_CACHED_TABLES } from './limits.js';
import { LruCache } from './lru.js';
import { MetadataIo } from './metadata-io.js';
import { RefcountStore } from './refcounts.js';
import { appendView, readEach, ScatterList, scatterInto, splitViews, totalLength } from '../scatter.js';

export interface Qcow2OpenOptions {
  readOnly: boolean;
  cache: CacheMode;
  /** Memory for cached L2 tables, in bytes (default 4 MiB). */
  l2CacheBytes?: number;
  /**
   * Opens the backing file the header names (read-only), as it names it: a relative name is relative to
   * this image's own location. Supplied by openDiskImage.
   */
  openBacking: (backingFile: string, format: DiskFormat | undefined) => Promise<DiskImage>;
}

type L2Table = { offset: number; bytes: Uint8Array; view: DataView };
/** The part of a request that falls into one guest cluster; `done` is its position in the request. */
type Piece = { guestCluster: number; inCluster: number; done: number; length: number };

/** Upper bound on one contiguous allocation, which is also the largest buffer a write assembles. */
const MAX_ALLOCATION_RUN_BYTES = 8 * 1024 * 1024;

/** Clusters we own (refcount 1) are written in place; anything else gets a fresh cluster. */
function needsNewCluster(mapping: ClusterMapping): boolean {
  if (mapping.kind === 'normal') return !mapping.copied;
  if (mapping.kind === 'zero') return !(mapping.copied && mapping.hostOffset !== 0);
  return true;
}

const DECOMPRESSED_CACHE_CLUSTERS = 4;

export class Qcow2DiskImage implements DiskImage {
  readonly format = 'qcow2' as const;
  /** Changes only through grow(). */
  size: number;
  readonly clusterSize: number;
  private readonly geometry: TableGeometry;
  private readonly l2Entries: number;
  private l1View: DataView;
  private readonly l2Cache: LruCache<number, L2Table>;
  private readonly decompressed = new LruCache<number, Uint8Array>(DECOMPRESSED_CACHE_CLUSTERS);
  /** Host clusters holding L2 tables referenced by the active L1 table. */
  private readonly l2Clusters = new Set<number>();
  private readonly lock = new AsyncRwLock();
  private refcounts: RefcountStore | undefined;
  private closed = false;
  /** Next free byte after the last compressed cluster written, in a host cluster we allocated for them. */
  private compressedTail = 0;

  private constructor(
    readonly path: string,
    private readonly io: MetadataIo,
    readonly header: Qcow2Header,
    l1: Uint8Array,
    readonly readOnly: boolean,
    private readonly cache: CachePolicy,
    l2CacheBytes: number,
    readonly backing: DiskImage | undefined,
  ) {
    this.size = header.size;
    this.clusterSize = header.clusterSize;
    this.geometry = { clusterBits: header.clusterBits, clusterSize: header.clusterSize, version: header.version };
    this.l2Entries = header.clusterSize / 8;
    this.l1View = new DataView(l1.buffer, l1.byteOffset, l1.byteLength);
    this.l2Cache = new LruCache(Math.max(MIN_CACHED_TABLES, Math.floor(l2CacheBytes / header.clusterSize)));
  }

  /** Opens a qcow2 image on an already opened file. The caller closes `file` if this throws. */
  static async open(file: BlockFile, path: string, options: Qcow2OpenOptions): Promise<Qcow2DiskImage> {
    const fail = (reason: string, cause?: unknown): DiskImageError => new DiskImageError(path, 'qcow2', reason, { cause });
    const fileSize = await file.size();
    const cache = new CachePolicy(options.cache);
    const io = new MetadataIo(file, cache, fileSize);

    let header: Qcow2Header;
    let l1: Uint8Array;
    try {
      header = await readHeader(file);
      l1 = await io.readExact(header.l1TableOffset, header.l1Size * 8, 'L1 table');
    } catch (error) {
      if (error instanceof CorruptImageError || error instanceof UnsupportedImageError) throw fail(error.reason, error);
      throw fail(`cannot read the header: ${(error as Error).message}`, error);
    }

    if (!options.readOnly) {
      if (header.incompatibleFeatures & INCOMPAT_DIRTY) {
        throw fail(`the dirty bit is set, so its refcounts may be inconsistent; repair it with \`qemu-img check -r all ${path}\` or open it read-only`);
      }
      if (header.incompatibleFeatures & INCOMPAT_CORRUPT) {
        throw fail(`the image is marked corrupt; repair it with \`qemu-img check -r all ${path}\` or open it read-only`);
      }
    }

    let backing: DiskImage | undefined;
    if (header.backingFile !== undefined) {
      const format = header.backingFormat;
      if (format !== undefined && format !== 'raw' && format !== 'qcow2') {
        throw fail(`backing file '${header.backingFile}' has format '${format}', which is not supported (only raw and qcow2)`);
      }
      backing = await options.openBacking(header.backingFile, format);
    }

    const image = new Qcow2DiskImage(path, io, header, l1, options.readOnly, cache, options.l2CacheBytes ?? DEFAULT_L2_CACHE_BYTES, backing);
    try {
      await image.initialise();
    } catch (error) {
      await backing?.close().catch(() => {});
      if (error instanceof CorruptImageError) throw fail(error.reason, error);
      throw fail((error as Error).message, error);
    }
    return image;
  }

  private async initialise(): Promise<void> {
    const refcountTableEnd = this.header.refcountTableOffset + this.header.refcountTableClusters * this.clusterSize;
    for (let i = 0; i < this.header.l1Size; i++) {
      const { l2Offset } = decodeL1Entry(this.l1View, i, this.geometry);
      if (l2Offset === 0) continue;
      if (this.overlapsL1Table(l2Offset) || (l2Offset >= this.header.refcountTableOffset && l2Offset < refcountTableEnd)) {
        throw new CorruptImageError(`L1 entry ${i} points its L2 table at 0x${l2Offset.toString(16)}, inside the L1 or refcount table`);
      }
      this.l2Clusters.add(l2Offset / this.clusterSize);
    }
    if (this.readOnly) return;
    this.refcounts = await RefcountStore.load(
      this.io,
      {
        clusterBits: this.header.clusterBits,
        refcountOrder: this.header.refcountOrder,
        tableOffset: this.header.refcountTableOffset,
        tableClusters: this.header.refcountTableClusters,
      },
      Math.max(MIN_CACHED_TABLES, Math.floor(DEFAULT_REFCOUNT_CACHE_BYTES / this.clusterSize)),
      (clusterIndex) => this.isMetadataCluster(clusterIndex),
    );
    // We do not maintain bitmaps (or any other auto-clear feature), so their data stops being valid.
    if (this.header.autoclearFeatures !== 0n) {
      await this.io.write(FIELD_AUTOCLEAR_FEATURES, new Uint8Array(8));
      await this.io.file.sync();
      this.header.autoclearFeatures = 0n;
    }
  }

  private overlapsL1Table(clusterOffset: number): boolean {
    const l1End = this.header.l1TableOffset + this.header.l1Size * 8;
    return clusterOffset < l1End && clusterOffset + this.clusterSize > this.header.l1TableOffset;
  }

  /** L1 and L2 tables; the refcount store knows its own clusters. */
  private isMetadataCluster(clusterIndex: number): boolean {
    return this.overlapsL1Table(clusterIndex * this.clusterSize) || this.l2Clusters.has(clusterIndex);
  }

  /**
   * A data cluster named by an L2 entry must start inside the file (QEMU always writes whole clusters)
   * and, when we are about to write it in place, must not be one of the image's own tables.
   */
  private checkDataCluster(hostOffset: number, forWriting: boolean): void {
    if (hostOffset >= this.io.fileEnd) {
      throw new CorruptImageError(`data cluster at 0x${hostOffset.toString(16)} lies beyond the end of the file (${this.io.fileEnd} bytes); the image may be truncated`);
    }
    if (!forWriting) return;
    const clusterIndex = hostOffset / this.clusterSize;
    const refcounts = this.refcounts!;
    if (this.isMetadataCluster(clusterIndex) || refcounts.isTableCluster(clusterIndex) || refcounts.isBlockCluster(clusterIndex)) {
      throw new CorruptImageError(`an L2 entry maps guest data onto metadata at 0x${hostOffset.toString(16)}`);
    }
  }

  // ---- public API ----

  read(offset: number, dst: Uint8Array): Promise<void> {
    return this.readv(offset, [dst]);
  }

  async readv(offset: number, dsts: readonly Uint8Array[]): Promise<void> {
    const length = totalLength(dsts);
    this.checkOpen('read', offset, length);
    checkRequestRange(this.path, 'read', offset, length, this.size);
    await this.lock.shared(() => this.guard('read', offset, length, () => this.readRange(offset, new ScatterList(dsts))));
  }

  write(offset: number, src: Uint8Array): Promise<void> {
    return this.writev(offset, [src]);
  }

  async writev(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    const length = totalLength(srcs);
    this.checkWritable('write', offset, length);
    checkRequestRange(this.path, 'write', offset, length, this.size);
    await this.lock.exclusive(() =>
      this.guard('write', offset, length, async () => {
        await this.writeRange(offset, new ScatterList(srcs));
        if (this.cache.syncEveryWrite) await this.io.file.sync();
      }),
    );
  }

  /**
   * Zeroes a range. Whole clusters become zero clusters (version 3) without writing data; partial
   * clusters, and every cluster of a version 2 image, are written with zeros.
   */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkWritable('write-zeroes', offset, length);
    checkRequestRange(this.path, 'write-zeroes', offset, length, this.size);
    await this.lock.exclusive(() =>
      this.guard('write-zeroes', offset, length, async () => {
        let zeros: Uint8Array | undefined;
        for (const piece of this.clusterPieces(offset, length)) {
          if (this.header.version >= 3 && piece.length === this.clusterSize) {
            await this.zeroCluster(piece.guestCluster);
          } else {
            zeros ??= new Uint8Array(this.clusterSize);
            await this.writeRange(offset + piece.done, new ScatterList([zeros.subarray(0, piece.length)]));
          }
        }
        if (this.cache.syncEveryWrite) await this.io.file.sync();
      }),
    );
  }

  /**
   * Frees whole clusters inside the range (partial clusters are left alone, which DISCARD allows).
   * Without a backing file a freed cluster becomes unallocated; with one it becomes a zero cluster
   * (version 3) so the backing data does not show through, or stays as it is (version 2).
   */
  async discard(offset: number, length: number): Promise<void> {
    this.checkWritable('discard', offset, length);
    checkRequestRange(this.path, 'discard', offset, length, this.size);
    await this.lock.exclusive(() =>
      this.guard('discard', offset, length, async () => {
        for (const piece of this.clusterPieces(offset, length)) {
          if (piece.length !== this.clusterSize) continue;
          if ((await this.lookup(piece.guestCluster)).kind === 'unallocated') continue;
          if (this.backing && this.header.version < 3) continue;
          const table = await this.writableL2(Math.floor(piece.guestCluster / this.l2Entries));
          const l2Index = piece.guestCluster % this.l2Entries;
          const mapping = decodeL2Entry(table.view, l2Index, this.geometry);
          await this.setL2Entry(table, l2Index, this.backing ? { kind: 'zero', hostOffset: 0, copied: false } : { kind: 'unallocated' });
          await this.release(mapping);
        }
        if (this.cache.syncEveryWrite) await this.io.file.sync();
      }),
    );
  }

  /**
   * Writes one whole guest cluster as compressed (raw deflate) bytes, as `qemu-img convert -c` does.
   * Compressed clusters are packed one after another into host clusters we allocate for them; each
   * host cluster holds one reference per compressed cluster that touches it. A cluster's bytes never
   * straddle two host clusters here, which keeps the refcount bookkeeping to one cluster.
   */
  async writeCompressedCluster(guestCluster: number, compressed: Uint8Array): Promise<void> {
    const offset = guestCluster * this.clusterSize;
    this.checkWritable('write', offset, this.clusterSize);
    checkRequestRange(this.path, 'write', offset, Math.min(this.clusterSize, this.size - offset), this.size);
    if (compressed.length === 0 || compressed.length >= this.clusterSize) {
      throw new DiskIoError(this.path, 'write', offset, this.clusterSize, `${compressed.length} compressed bytes do not make a compressed cluster`);
    }
    await this.lock.exclusive(() =>
      this.guard('write', offset, this.clusterSize, async () => {
        const refcounts = this.refcounts!;
        const tail = this.compressedTail;
        const fitsInTail = tail !== 0 && (tail % this.clusterSize) + compressed.length <= this.clusterSize;
        const hostOffset = fitsInTail ? tail : await refcounts.findFree();
        await this.io.write(hostOffset, compressed);
        if (fitsInTail) await refcounts.increment(hostOffset);
        else await refcounts.claim(hostOffset);
        await this.io.barrier();
        const end = hostOffset + compressed.length;
        this.compressedTail = end % this.clusterSize === 0 ? 0 : end;

        const table = await this.writableL2(Math.floor(guestCluster / this.l2Entries));
        const l2Index = guestCluster % this.l2Entries;
        const previous = decodeL2Entry(table.view, l2Index, this.geometry);
        const entry = new Uint8Array(8);
        encodeCompressedDescriptor(new DataView(entry.buffer), 0, hostOffset, compressed.length, this.header.clusterBits);
        await this.io.write(table.offset + l2Index * 8, entry);
        table.bytes.set(entry, l2Index * 8);
        await this.release(previous);
        if (this.cache.syncEveryWrite) await this.io.file.sync();
      }),
    );
  }

  /**
   * Grows the virtual disk to `newSize` bytes (qemu-img resize). The L1 table grows first, in place
   * when its last cluster has room, else as a copy in newly allocated clusters that the header then
   * points to; the new size is written last, so an interrupted grow leaves the old size over a table
   * that is merely larger than it needs to be. Shrinking is refused: it would have to free clusters.
   */
  async grow(newSize: number): Promise<void> {
    this.checkWritable('write', newSize, 0);
    if (!Number.isSafeInteger(newSize) || newSize % 512 !== 0 || newSize < this.size || newSize > MAX_OFFSET) {
      throw new DiskIoError(this.path, 'write', newSize, 0, `cannot grow from ${this.size} to ${newSize} bytes (a larger multiple of 512 up to ${MAX_OFFSET} is needed)`);
    }
    await this.lock.exclusive(() =>
      this.guard('write', newSize, 0, async () => {
        const neededL1 = Math.ceil(newSize / (this.clusterSize * this.l2Entries));
        if (neededL1 > this.header.l1Size) await this.growL1(neededL1);
        const sizeField = new Uint8Array(8);
        new DataView(sizeField.buffer).setBigUint64(0, BigInt(newSize));
        await this.io.write(FIELD_SIZE, sizeField);
        await this.io.file.sync();
        this.header.size = newSize;
        this.size = newSize;
      }),
    );
  }

  private async growL1(entries: number): Promise<void> {
    const { clusterSize, header } = this;
    const bytes = entries * 8;
    if (bytes > MAX_L1_BYTES) throw new CorruptImageError(`the L1 table would need ${bytes} bytes (limit ${MAX_L1_BYTES})`);
    const oldBytes = header.l1Size * 8;
    const oldClusters = Math.ceil(oldBytes / clusterSize);
    const table = new Uint8Array(Math.ceil(bytes / clusterSize) * clusterSize);
    table.set(new Uint8Array(this.l1View.buffer, this.l1View.byteOffset, oldBytes));
    // l1_size (4 bytes) and l1_table_offset (8 bytes) are adjacent: one write switches tables.
    const fields = new Uint8Array(12);
    const fieldsView = new DataView(fields.buffer);
    fieldsView.setUint32(0, entries);
    if (header.l1Size > 0 && bytes <= oldClusters * clusterSize) {
      // The clusters the table has are ours already; the new entries must read as zeros, whatever the
      // file holds (or lacks) there.
      await this.io.write(header.l1TableOffset + oldBytes, table.subarray(oldBytes, bytes));
      await this.io.barrier();
      fieldsView.setBigUint64(4, BigInt(header.l1TableOffset));
      await this.io.write(FIELD_L1_SIZE, fields);
      await this.io.barrier();
    } else {
      const refcounts = this.refcounts!;
      const newClusters = table.length / clusterSize;
      const newOffset = await refcounts.findFreeRun(newClusters);
      await this.io.write(newOffset, table);
      await refcounts.claimRun(newOffset, newClusters);
      await this.io.barrier();
      fieldsView.setBigUint64(4, BigInt(newOffset));
      await this.io.write(FIELD_L1_SIZE, fields);
      await this.io.barrier();
      const oldOffset = header.l1TableOffset;
      header.l1TableOffset = newOffset;
      header.l1Size = entries;
      for (let c = 0; c < oldClusters; c++) await refcounts.decrement(oldOffset + c * clusterSize);
    }
    header.l1Size = entries;
    this.l1View = new DataView(table.buffer, 0, bytes);
  }

  async flush(): Promise<void> {
    this.checkOpen('flush', -1, 0);
    if (this.readOnly || !this.cache.syncOnFlush) return;
    await this.lock.exclusive(() => this.guard('flush', -1, 0, () => this.io.file.sync()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lock.exclusive(() =>
      this.guard('close', -1, 0, async () => {
        try {
          if (!this.readOnly && this.cache.syncOnFlush) await this.io.file.sync();
        } finally {
          await this.io.file.close();
          await this.backing?.close();
        }
      }),
    );
  }

  // ---- reading ----

  private *clusterPieces(offset: number, length: number): Generator<Piece> {
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const guestCluster = Math.floor(position / this.clusterSize);
      const inCluster = position - guestCluster * this.clusterSize;
      const pieceLength = Math.min(this.clusterSize - inCluster, length - done);
      yield { guestCluster, inCluster, done, length: pieceLength };
      done += pieceLength;
    }
  }

  private async readRange(offset: number, dst: ScatterList): Promise<void> {
    // Consecutive pieces that are contiguous in the host file (or all from the backing file) are read
    // with one (vectored) request straight into the destination buffers.
    let run: { kind: 'host' | 'backing'; start: number; hostOffset: number; length: number } | undefined;
    const flushRun = async (): Promise<void> => {
      if (!run) return;
      const targets = dst.slice(run.start, run.length);
      if (run.kind === 'host') await this.io.readDataV(run.hostOffset, targets);
      else await this.readBacking(offset + run.start, targets);
      run = undefined;
    };
    for (const piece of this.clusterPieces(offset, dst.length)) {
      // Without an await when the L2 table is cached, a request reaches its file in the call that started it.
      const mapping = this.lookupCached(piece.guestCluster) ?? await this.lookup(piece.guestCluster);
      if (mapping.kind === 'normal' || mapping.kind === 'unallocated') {
        const kind = mapping.kind === 'normal' ? 'host' : 'backing';
        if (mapping.kind === 'normal') this.checkDataCluster(mapping.hostOffset, false);
        const hostOffset = mapping.kind === 'normal' ? mapping.hostOffset + piece.inCluster : 0;
        if (run && run.kind === kind && (kind === 'backing' || run.hostOffset + run.length === hostOffset)) {
          run.length += piece.length;
          continue;
        }
        await flushRun();
        run = { kind, start: piece.done, hostOffset, length: piece.length };
        continue;
      }
      await flushRun();
      const targets = dst.slice(piece.done, piece.length);
      if (mapping.kind === 'zero') {
        for (const target of targets) target.fill(0);
      } else {
        const cluster = await this.decompress(mapping.hostOffset, mapping.compressedSize);
        scatterInto(targets, cluster.subarray(piece.inCluster, piece.inCluster + piece.length));
      }
    }
    await flushRun();
  }

  /** Backing data for a guest range; zeros without a backing file and past the end of a shorter one. */
  private async readBacking(guestOffset: number, targets: readonly Uint8Array[]): Promise<void> {
    const length = totalLength(targets);
    const available = this.backing ? Math.max(0, Math.min(length, this.backing.size - guestOffset)) : 0;
    const [present, beyond] = splitViews(targets, available);
    const backing = this.backing;
    if (backing?.readv && present.length > 1) await backing.readv(guestOffset, present);
    else if (backing) await readEach(backing, guestOffset, present);
    for (const target of beyond) target.fill(0);
  }

  private async decompress(hostOffset: number, compressedSize: number): Promise<Uint8Array> {
    const cached = this.decompressed.get(hostOffset);
    if (cached) return cached;
    const cluster = await readCompressedCluster(this.io, hostOffset, compressedSize, this.clusterSize);
    this.decompressed.set(hostOffset, cluster);
    return cluster;
  }

  private async lookup(guestCluster: number): Promise<ClusterMapping> {
    const l1Index = Math.floor(guestCluster / this.l2Entries);
    const { l2Offset } = decodeL1Entry(this.l1View, l1Index, this.geometry);
    if (l2Offset === 0) return { kind: 'unallocated' };
    const table = await this.loadL2(l2Offset);
    return decodeL2Entry(table.view, guestCluster % this.l2Entries, this.geometry);
  }

  /** lookup without waiting, when the answer needs no read (no L2 table, or a cached one); else null. */
  private lookupCached(guestCluster: number): ClusterMapping | null {
    const l1Index = Math.floor(guestCluster / this.l2Entries);
    const { l2Offset } = decodeL1Entry(this.l1View, l1Index, this.geometry);
    if (l2Offset === 0) return { kind: 'unallocated' };
    const table = this.l2Cache.get(l2Offset);
    return table ? decodeL2Entry(table.view, guestCluster % this.l2Entries, this.geometry) : null;
  }

  private async loadL2(l2Offset: number): Promise<L2Table> {
    const cached = this.l2Cache.get(l2Offset);
    if (cached) return cached;
    const bytes = await this.io.readExact(l2Offset, this.clusterSize, 'L2 table');
    const table = { offset: l2Offset, bytes, view: new DataView(bytes.buffer) };
    this.l2Cache.set(l2Offset, table);
    return table;
  }

  // ---- writing ----

  /**
   * Writes a range. Consecutive clusters of one L2 table that need new host clusters are allocated as
   * one contiguous run: one data write, one refcount update per block and one L2 write for the run.
   */
  private async writeRange(offset: number, src: ScatterList): Promise<void> {
    const pieces = [...this.clusterPieces(offset, src.length)];
    // A run never fills a whole refcount block's range, so a missing block always finds room in its
    // own range (see RefcountStore.allocateBlock).
    const maxRun = Math.max(1, Math.min(Math.floor(MAX_ALLOCATION_RUN_BYTES / this.clusterSize), this.refcounts!.entriesPerBlock / 2));
    for (let i = 0; i < pieces.length; ) {
      const first = pieces[i]!;
      const l1Index = Math.floor(first.guestCluster / this.l2Entries);
      const table = this.writableL2Cached(l1Index) ?? await this.writableL2(l1Index);
      const firstMapping = decodeL2Entry(table.view, first.guestCluster % this.l2Entries, this.geometry);
      if (firstMapping.kind === 'normal' && !needsNewCluster(firstMapping)) {
        // Clusters we own that follow each other in the file take one write in place.
        this.checkDataCluster(firstMapping.hostOffset, true);
        const hostStart = firstMapping.hostOffset + first.inCluster;
        let length = first.length;
        let j = i + 1;
        for (; j < pieces.length; j++) {
          const piece = pieces[j]!;
          if (Math.floor(piece.guestCluster / this.l2Entries) !== l1Index) break;
          const mapping = decodeL2Entry(table.view, piece.guestCluster % this.l2Entries, this.geometry);
          if (mapping.kind !== 'normal' || needsNewCluster(mapping) || mapping.hostOffset !== hostStart + length) break;
          this.checkDataCluster(mapping.hostOffset, true);
          length += piece.length;
        }
        await this.io.writeV(hostStart, src.slice(first.done, length));
        i = j;
        continue;
      }
      if (!needsNewCluster(firstMapping)) {
        await this.fillPreallocated(table, first, firstMapping, src.slice(first.done, first.length));
        i++;
        continue;
      }
      const run: Array<{ piece: Piece; mapping: ClusterMapping }> = [{ piece: first, mapping: firstMapping }];
      for (let j = i + 1; j < pieces.length && run.length < maxRun; j++) {
        const piece = pieces[j]!;
        if (Math.floor(piece.guestCluster / this.l2Entries) !== l1Index) break;
        const mapping = decodeL2Entry(table.view, piece.guestCluster % this.l2Entries, this.geometry);
        if (!needsNewCluster(mapping)) break;
        run.push({ piece, mapping });
      }
      await this.allocateRun(table, run, src);
      i += run.length;
    }
  }

  /** A preallocated zero cluster we own: fill it in place, then drop the zero flag. */
  private async fillPreallocated(table: L2Table, piece: Piece, mapping: ClusterMapping, data: readonly Uint8Array[]): Promise<void> {
    if (mapping.kind !== 'zero') throw new Error(`unexpected in-place write to a ${mapping.kind} cluster`);
    this.checkDataCluster(mapping.hostOffset, true);
    await this.io.writeV(mapping.hostOffset, this.wholeClusterParts(piece, data, new Uint8Array(this.clusterSize)));
    await this.io.barrier();
    await this.setL2Entry(table, piece.guestCluster % this.l2Entries, { kind: 'normal', hostOffset: mapping.hostOffset, copied: true });
  }

  /** The I/O vector for one whole cluster: `base` around the piece, the request's views inside it. */
  private wholeClusterParts(piece: Piece, data: readonly Uint8Array[], base: Uint8Array, parts: Uint8Array[] = []): Uint8Array[] {
    appendView(parts, base.subarray(0, piece.inCluster));
    for (const view of data) appendView(parts, view);
    appendView(parts, base.subarray(piece.inCluster + piece.length));
    return parts;
  }

  private async allocateRun(table: L2Table, run: Array<{ piece: Piece; mapping: ClusterMapping }>, src: ScatterList): Promise<void> {
    const { clusterSize } = this;
    // Whole clusters come straight from the request's buffers; a partial one is completed from its
    // current content (copy-on-write), read into a buffer of its own.
    const content: Uint8Array[] = [];
    for (const { piece, mapping } of run) {
      const data = src.slice(piece.done, piece.length);
      const base = piece.length === clusterSize ? undefined : await this.copyOnWriteSource(piece.guestCluster, mapping);
      if (base) this.wholeClusterParts(piece, data, base, content);
      else for (const view of data) appendView(content, view);
    }
    const refcounts = this.refcounts!;
    const hostOffset = await refcounts.findFreeRun(run.length);
    await this.io.writeV(hostOffset, content);
    await refcounts.claimRun(hostOffset, run.length);
    await this.io.barrier();

    const firstIndex = run[0]!.piece.guestCluster % this.l2Entries;
    for (let k = 0; k < run.length; k++) {
      encodeL2Entry(table.view, firstIndex + k, { kind: 'normal', hostOffset: hostOffset + k * clusterSize, copied: true });
    }
    await this.io.write(table.offset + firstIndex * 8, table.bytes.subarray(firstIndex * 8, (firstIndex + run.length) * 8));
    for (const { mapping } of run) await this.release(mapping);
  }

  private async zeroCluster(guestCluster: number): Promise<void> {
    // Without a backing file an unallocated cluster already reads as zeros; no need for an L2 table.
    if (!this.backing && (await this.lookup(guestCluster)).kind === 'unallocated') return;
    const l2Index = guestCluster % this.l2Entries;
    const table = await this.writableL2(Math.floor(guestCluster / this.l2Entries));
    const mapping = decodeL2Entry(table.view, l2Index, this.geometry);
    if (mapping.kind === 'zero' && (mapping.copied || mapping.hostOffset === 0)) return;
    if (mapping.kind === 'normal' && mapping.copied) {
      // Keep the cluster as a preallocation; its refcount stays 1.
      await this.setL2Entry(table, l2Index, { kind: 'zero', hostOffset: mapping.hostOffset, copied: true });
      return;
    }
    await this.setL2Entry(table, l2Index, { kind: 'zero', hostOffset: 0, copied: false });
    await this.release(mapping);
  }

  /** The current content of a guest cluster, as a new buffer to merge a partial write into. */
  private async copyOnWriteSource(guestCluster: number, mapping: ClusterMapping): Promise<Uint8Array> {
    const content = new Uint8Array(this.clusterSize);
    switch (mapping.kind) {
      case 'normal':
        this.checkDataCluster(mapping.hostOffset, false);
        await this.io.readData(mapping.hostOffset, content);
        break;
      case 'compressed':
        content.set(await this.decompress(mapping.hostOffset, mapping.compressedSize));
        break;
      case 'unallocated':
        await this.readBacking(guestCluster * this.clusterSize, [content]);
        break;
      case 'zero':
        break;
    }
    return content;
  }

  /** Drops the references a replaced L2 entry held. */
  private async release(mapping: ClusterMapping): Promise<void> {
    const refcounts = this.refcounts!;
    if (mapping.kind === 'compressed') {
      this.decompressed.delete(mapping.hostOffset);
      for (const cluster of compressedHostClusters(mapping.hostOffset, mapping.compressedSize, this.clusterSize)) {
        await refcounts.decrement(cluster);
      }
    } else if ((mapping.kind === 'normal' || mapping.kind === 'zero') && mapping.hostOffset !== 0) {
      await refcounts.decrement(mapping.hostOffset);
    }
  }

  /** writableL2 without waiting, when the table is already ours (COPIED) and cached; else null. */
  private writableL2Cached(l1Index: number): L2Table | null {
    const { l2Offset, copied } = decodeL1Entry(this.l1View, l1Index, this.geometry);
    return l2Offset !== 0 && copied ? this.l2Cache.get(l2Offset) ?? null : null;
  }

  /** The L2 table for an L1 index, allocated (or copied, if shared with a snapshot) so we may modify it. */
  private async writableL2(l1Index: number): Promise<L2Table> {
    const { l2Offset, copied } = decodeL1Entry(this.l1View, l1Index, this.geometry);
    if (l2Offset !== 0 && copied) return this.loadL2(l2Offset);

    const content = l2Offset === 0 ? new Uint8Array(this.clusterSize) : (await this.loadL2(l2Offset)).bytes.slice();
    const refcounts = this.refcounts!;
    const newOffset = await refcounts.findFree();
    await this.io.write(newOffset, content);
    await refcounts.claim(newOffset);
    await this.io.barrier();

    const entry = new Uint8Array(8);
    encodeL1Entry(new DataView(entry.buffer), 0, newOffset);
    await this.io.write(this.header.l1TableOffset + l1Index * 8, entry);
    await this.io.barrier();
    new Uint8Array(this.l1View.buffer, this.l1View.byteOffset).set(entry, l1Index * 8);
    this.l2Clusters.add(newOffset / this.clusterSize);

    const table = { offset: newOffset, bytes: content, view: new DataView(content.buffer) };
    this.l2Cache.set(newOffset, table);
    if (l2Offset !== 0) {
      this.l2Cache.delete(l2Offset);
      this.l2Clusters.delete(l2Offset / this.clusterSize);
      await refcounts.decrement(l2Offset);
    }
    return table;
  }

  private async setL2Entry(table: L2Table, index: number, mapping: ClusterMapping): Promise<void> {
    const entry = new Uint8Array(8);
    encodeL2Entry(new DataView(entry.buffer), 0, mapping);
    await this.io.write(table.offset + index * 8, entry);
    table.bytes.set(entry, index * 8);
  }

  // ---- errors ----

  private checkOpen(operation: DiskIoOperation, offset: number, length: number): void {
    if (this.closed) throw new DiskIoError(this.path, operation, offset, length, 'the image is closed');
  }

  private checkWritable(operation: DiskIoOperation, offset: number, length: number): void {
    this.checkOpen(operation, offset, length);
    if (this.readOnly) throw new DiskIoError(this.path, operation, offset, length, 'the image is read-only');
  }

  private async guard<T>(operation: DiskIoOperation, offset: number, length: number, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof DiskIoError) throw error;
      const reason = error instanceof CorruptImageError ? `corrupt image: ${error.reason}` : (error as Error).message;
      throw new DiskIoError(this.path, operation, offset, length, reason, { cause: error });
    }
  }
}
