// Cache modes decide when fdatasync happens; the qcow2 allocation path must also order its writes
// data → refcount → L2 → L1. Both are observed through an injected file that records every call.

import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CacheMode } from '../../../host/block/cache-mode.js';
import { openDiskImage, type DiskImage } from '../../../host/block/disk.js';
import { NodeBlockFile, type BlockFile } from '../../../host/block/file.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { qemuImgStatus, requireQemuTools, ScratchDir } from './helpers.js';

type Operation = { kind: 'write'; path: string; position: number; length: number } | { kind: 'sync'; path: string };

class RecordingFile implements BlockFile {
  constructor(
    private readonly inner: BlockFile,
    private readonly path: string,
    private readonly log: Operation[],
  ) {}
  read(position: number, dst: Uint8Array): Promise<number> {
    return this.inner.read(position, dst);
  }
  write(position: number, src: Uint8Array): Promise<void> {
    this.log.push({ kind: 'write', path: this.path, position, length: src.length });
    return this.inner.write(position, src);
  }
  sync(): Promise<void> {
    this.log.push({ kind: 'sync', path: this.path });
    return this.inner.sync();
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('cache modes', () => {
  let scratch: ScratchDir;
  let log: Operation[];
  beforeEach(() => {
    scratch = new ScratchDir();
    log = [];
  });
  afterEach(() => scratch.remove());

  const open = (path: string, cache: CacheMode): Promise<DiskImage> =>
    openDiskImage(path, { cache, openFile: async (p, writable) => new RecordingFile(await NodeBlockFile.open(p, writable), p, log) });
  const syncs = (): number => log.filter((op) => op.kind === 'sync').length;

  async function counts(path: string, cache: CacheMode): Promise<{ afterWrites: number; afterFlush: number; afterClose: number; endsWithSync: boolean[] }> {
    const disk = await open(path, cache);
    const endsWithSync: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      await disk.write(i * 70_000, new Uint8Array(5000).fill(i + 1));
      endsWithSync.push(log.at(-1)?.kind === 'sync');
    }
    const afterWrites = syncs();
    await disk.flush();
    const afterFlush = syncs();
    await disk.close();
    return { afterWrites, afterFlush, afterClose: syncs(), endsWithSync };
  }

  describe.each(['raw', 'qcow2'] as const)('%s', (format) => {
    async function image(): Promise<string> {
      const path = scratch.file(`disk.${format}`);
      if (format === 'raw') writeFileSync(path, new Uint8Array(1024 * 1024));
      else await createQcow2(path, { size: 1024 * 1024 });
      return path;
    }

    it('writeback syncs on flush only', async () => {
      const result = await counts(await image(), 'writeback');
      expect(result.afterWrites).toBe(0);
      expect(result.afterFlush).toBe(1);
      expect(result.afterClose).toBe(2);
    });

    it('none behaves as writeback', async () => {
      const result = await counts(await image(), 'none');
      expect(result.afterWrites).toBe(0);
      expect(result.afterFlush).toBe(1);
    });

    it('writethrough syncs before each write completes', async () => {
      const result = await counts(await image(), 'writethrough');
      expect(result.endsWithSync).toEqual([true, true, true]);
      expect(result.afterWrites).toBeGreaterThanOrEqual(3);
      // Everything is already durable: flush and close add nothing.
      expect(result.afterClose).toBe(result.afterWrites);
    });

    it('unsafe never syncs', async () => {
      const result = await counts(await image(), 'unsafe');
      expect(result.afterClose).toBe(0);
    });
  });

  describe('qcow2 allocation order', () => {
    async function firstAllocation(cache: CacheMode): Promise<{ ops: Operation[]; l1Offset: number; path: string }> {
      const path = scratch.file('order.qcow2');
      await createQcow2(path, { size: 4 * 1024 * 1024 });
      const l1Offset = Number(readFileSync(path).readBigUInt64BE(40));
      const disk = await open(path, cache);
      await disk.write(100_000, new Uint8Array(3000).fill(0x77));
      await disk.close();
      return { ops: log.filter((op) => op.path === path), l1Offset, path };
    }

    function analyse(ops: Operation[], l1Offset: number) {
      const writes = ops.map((op, index) => ({ op, index })).filter((e) => e.op.kind === 'write') as Array<{ op: Extract<Operation, { kind: 'write' }>; index: number }>;
      const clusterWrites = writes.filter((w) => w.op.length === 65536);
      // The first whole cluster written is the new L2 table, the second the data cluster (copy-on-write of a partial write).
      const [l2Table, data] = clusterWrites;
      const l1Entry = writes.find((w) => w.op.position === l1Offset && w.op.length === 8)!;
      const l2Entry = writes.find((w) => w.op.length === 8 && w.op.position >= l2Table!.op.position && w.op.position < l2Table!.op.position + 65536)!;
      const refcountWrites = writes.filter((w) => w.op.length === 2);
      return { l2Table: l2Table!, data: data!, l1Entry, l2Entry, refcountWrites };
    }

    it('writes data, then its refcount, then the L2 entry; L2 table before the L1 entry (writethrough: with syncs between)', async () => {
      const { ops, l1Offset, path } = await firstAllocation('writethrough');
      const { l2Table, data, l1Entry, l2Entry, refcountWrites } = analyse(ops, l1Offset);
      const syncBetween = (a: number, b: number): boolean => ops.slice(a + 1, b).some((op) => op.kind === 'sync');
      expect(refcountWrites.length).toBe(2);
      const [l2Refcount, dataRefcount] = refcountWrites;
      expect(l2Table.index).toBeLessThan(l2Refcount!.index);
      expect(syncBetween(l2Refcount!.index, l1Entry.index)).toBe(true);
      expect(l1Entry.index).toBeLessThan(data.index);
      expect(data.index).toBeLessThan(dataRefcount!.index);
      expect(syncBetween(dataRefcount!.index, l2Entry.index)).toBe(true);
      expect(l2Entry.index).toBe(Math.max(...ops.map((op, i) => (op.kind === 'write' ? i : -1))));
      requireQemuTools();
      expect(qemuImgStatus('check', path).status).toBe(0);
    });

    it('allocates a multi-cluster write as one contiguous run', async () => {
      const path = scratch.file('run.qcow2');
      await createQcow2(path, { size: 4 * 1024 * 1024 });
      const disk = await open(path, 'writeback');
      await disk.write(0, new Uint8Array(1024 * 1024).fill(0x31));
      await disk.close();
      const writes = log.filter((op): op is Extract<Operation, { kind: 'write' }> => op.kind === 'write');
      // L2 table, its refcount, the L1 entry; then one data write, one refcount write, one L2 write.
      expect(writes.map((w) => w.length)).toEqual([65536, 2, 8, 1024 * 1024, 32, 128]);
      requireQemuTools();
      expect(qemuImgStatus('check', path).status).toBe(0);
    });

    it('keeps the same order without syncs in writeback mode', async () => {
      const { ops, l1Offset } = await firstAllocation('writeback');
      const { l2Table, data, l1Entry, l2Entry, refcountWrites } = analyse(ops, l1Offset);
      expect(ops.slice(0, l2Entry.index).some((op) => op.kind === 'sync')).toBe(false);
      expect(l2Table.index).toBeLessThan(refcountWrites[0]!.index);
      expect(refcountWrites[0]!.index).toBeLessThan(l1Entry.index);
      expect(l1Entry.index).toBeLessThan(data.index);
      expect(data.index).toBeLessThan(refcountWrites[1]!.index);
      expect(refcountWrites[1]!.index).toBeLessThan(l2Entry.index);
    });
  });
});
