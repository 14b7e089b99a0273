// The qcow2 consistency check on its own, without Node's file system (images held in MemoryBlockFile,
// as a browser would hold them): clean images written by our own writer, and damage planted by editing
// their bytes. test/integration/img.test.ts compares the same check with qemu-img's.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskImageError } from '../../../host/block/errors.js';
import { MemoryBlockFile } from '../../../host/block/memory_file.js';
import { checkQcow2 } from '../../../host/block/qcow2/check.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { deflateCluster } from '../../../host/block/qcow2/deflate.js';
import { Qcow2DiskImage } from '../../../host/block/qcow2/image.js';
import { checkStatus } from '../../../host/cli/img/check.js';

const CLUSTER = 65536;

/** An image made by createQcow2 and written through Qcow2DiskImage, as bytes. */
async function writtenImage(write: (image: Qcow2DiskImage) => Promise<void>, options: { size?: number; version?: 2 | 3 } = {}): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'wkvm-check-'));
  try {
    const path = join(dir, 'image.qcow2');
    await createQcow2(path, { size: options.size ?? 8 * 1024 * 1024, version: options.version });
    const file = new MemoryBlockFile(new Uint8Array(readFileSync(path)));
    const image = await Qcow2DiskImage.open(file, path, { readOnly: false, cache: 'unsafe', openBacking: () => Promise.reject(new Error('no backing file')) });
    await write(image);
    const bytes = file.contents().slice();
    await image.close();
    return bytes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const check = (bytes: Uint8Array) => checkQcow2(new MemoryBlockFile(bytes.slice()), 'image.qcow2');

function setU16(bytes: Uint8Array, offset: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint16(offset, value);
}

describe('checkQcow2', () => {
  it('finds the images our writer makes clean, and counts what they allocate', async () => {
    const bytes = await writtenImage(async (image) => {
      await image.write(0, new Uint8Array(3 * CLUSTER).fill(1));
      await image.write(5 * 1024 * 1024, new Uint8Array(100).fill(2));
      await image.writeZeroes(CLUSTER, CLUSTER);
    });
    const report = await check(bytes);
    expect(report.problems).toEqual([]);
    expect(checkStatus(report)).toBe(0);
    expect(report.totalClusters).toBe(128);
    // Cluster 1 became a preallocated zero cluster: still allocated.
    expect(report.allocatedClusters).toBe(4);
    expect(report.imageEndOffset).toBe(bytes.length);
  });

  it('counts compressed clusters (each one fragmented) and their shared host clusters', async () => {
    const bytes = await writtenImage(async (image) => {
      for (let cluster = 0; cluster < 4; cluster++) {
        await image.writeCompressedCluster(cluster, await deflateCluster(new Uint8Array(CLUSTER).fill(cluster + 1)));
      }
      await image.write(4 * CLUSTER, new Uint8Array(CLUSTER).fill(9));
    });
    const report = await check(bytes);
    expect(report.problems).toEqual([]);
    expect(report.compressedClusters).toBe(4);
    expect(report.fragmentedClusters).toBe(4);
    expect(report.allocatedClusters).toBe(5);
  });

  it('checks version 2 images, where bit 0 of an L2 entry is reserved', async () => {
    const bytes = await writtenImage((image) => image.write(0, new Uint8Array(CLUSTER).fill(7)), { version: 2 });
    expect((await check(bytes)).problems).toEqual([]);
    // createQcow2's layout: header, refcount table, refcount block (cluster 2), L1 (3), then L2 (4), data (5).
    const l2Entry = 4 * CLUSTER;
    bytes[l2Entry + 7]! |= 1;
    const report = await check(bytes);
    expect(report.problems).toContain('ERROR found l2 entry with reserved bits set: 8000000000050001');
    expect(checkStatus(report)).toBe(2);
  });

  it('reports a leak (status 3) and a corruption (status 2) planted in the refcounts', async () => {
    const bytes = await writtenImage((image) => image.write(0, new Uint8Array(2 * CLUSTER).fill(3)));
    const refcountBlock = 2 * CLUSTER;
    const leaked = bytes.slice();
    setU16(leaked, refcountBlock + 5 * 2, 2);
    let report = await check(leaked);
    expect(report.problems).toEqual(['Leaked cluster 5 refcount=2 reference=1', 'ERROR OFLAG_COPIED data cluster: l2_entry=8000000000050000 refcount=2']);
    expect([report.leaks, report.corruptions]).toEqual([1, 1]);

    const grown = new Uint8Array(bytes.length + CLUSTER);
    grown.set(bytes);
    setU16(grown, refcountBlock + (bytes.length / CLUSTER) * 2, 1);
    report = await check(grown);
    expect(report.problems).toEqual([`Leaked cluster ${bytes.length / CLUSTER} refcount=1 reference=0`]);
    expect(checkStatus(report)).toBe(3);

    const corrupt = bytes.slice();
    setU16(corrupt, refcountBlock + 6 * 2, 0);
    report = await check(corrupt);
    expect(report.problems).toEqual(['ERROR cluster 6 refcount=0 reference=1', 'ERROR OFLAG_COPIED data cluster: l2_entry=8000000000060000 refcount=0']);
    expect(checkStatus(report)).toBe(2);
  });

  it('refuses a header it cannot parse with a DiskImageError', async () => {
    const bytes = await writtenImage(async () => {});
    bytes[0] = 0;
    await expect(check(bytes)).rejects.toBeInstanceOf(DiskImageError);
  });
});

describe('Qcow2DiskImage.grow', () => {
  it('grows in place when the L1 table has room and by moving it when not; the image stays clean and keeps its data', async () => {
    const data = new Uint8Array(CLUSTER).map((_, i) => i & 0xff);
    const bytes = await writtenImage(async (image) => {
      await image.write(CLUSTER, data);
      await image.grow(64 * 1024 * 1024 * 1024); // 64 GiB: 128 L1 entries, still one cluster
      await image.write(60 * 1024 * 1024 * 1024, data);
      await image.grow(8 * 1024 * 1024 * 1024 * 1024); // 8 TiB: 16384 entries, two clusters, so it moves
      const back = new Uint8Array(CLUSTER);
      await image.read(60 * 1024 * 1024 * 1024, back);
      expect(back).toEqual(data);
      await expect(image.grow(1024)).rejects.toThrow(/cannot grow/);
    });
    const report = await check(bytes);
    expect(report.problems).toEqual([]);
    expect(report.header.size).toBe(8 * 1024 * 1024 * 1024 * 1024);
    expect(report.header.l1Size).toBe(16384);
  });
});
