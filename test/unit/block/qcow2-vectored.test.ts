// readv/writev on qcow2: the guest's scattered buffers (here: views of odd sizes into one shared
// "guest RAM", with gaps between them) must read and write exactly what read/write of the same bytes
// laid end to end would, over every kind of cluster, and hand the file views of those buffers
// rather than a bounce buffer.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDiskImage, DiskIoError } from '../../../host/block/disk.js';
import { NodeBlockFile, type BlockFile } from '../../../host/block/file.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { appendView, ScatterList, splitViews } from '../../../host/block/scatter.js';
import { expectQemuAgrees, Prng, qemuImg, qemuIo, requireQemuTools, ScratchDir } from './helpers.js';

const KiB = 1024;
const CLUSTER = 4 * KiB;

/** Guest RAM: views are carved from it one after another, with a gap after each so none are adjacent. */
class GuestRam {
  readonly bytes = new Uint8Array(new SharedArrayBuffer(4 * 1024 * KiB));
  private next = 0;
  constructor(private readonly prng: Prng) {}

  /** Views of odd sizes (1 byte up to about one and a half clusters) totalling `length` bytes. */
  views(length: number): Uint8Array[] {
    this.next = 0;
    const views: Uint8Array[] = [];
    for (let left = length; left > 0; ) {
      const size = Math.min(left, this.prng.int(8) === 0 ? 1 + this.prng.int(7) : 1 + this.prng.int(6000));
      views.push(this.bytes.subarray(this.next, this.next + size));
      this.next += size + 1 + this.prng.int(13);
      left -= size;
    }
    return views;
  }
}

function concat(views: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(views));
}

function scatter(views: readonly Uint8Array[], data: Uint8Array): void {
  let at = 0;
  for (const view of views) {
    view.set(data.subarray(at, at + view.length));
    at += view.length;
  }
}

/** A request that starts anywhere and spans up to five clusters, often starting or ending on a boundary. */
function randomRange(prng: Prng, size: number): { offset: number; length: number } {
  let offset = prng.int(size);
  if (prng.int(3) === 0) offset -= offset % CLUSTER;
  let length = 1 + prng.int(5 * CLUSTER);
  if (prng.int(3) === 0) length += CLUSTER - ((offset + length) % CLUSTER);
  return { offset, length: Math.min(length, size - offset) };
}

/**
 * base.raw (48 KiB of random bytes) <- mid.qcow2 (80 KiB) <- top.qcow2 (80 KiB), 4 KiB clusters. The top
 * image has allocated clusters contiguous and out of order in the file, compressed clusters, zero
 * clusters over backing data, and unallocated clusters reading through mid (itself allocated,
 * compressed or unallocated over base), down to zeros past the end of the 48 KiB base.
 */
function buildChain(scratch: ScratchDir, prng: Prng): string {
  writeFileSync(scratch.file('base.raw'), prng.bytes(48 * KiB));
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'base.raw', '-F', 'raw', scratch.file('mid.qcow2'), '80K');
  qemuIo(scratch.file('mid.qcow2'), 'qcow2', 'write -P 0x41 0 12k', 'write -c -P 0x42 32k 4k', 'write -P 0x43 60k 8k');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'mid.qcow2', '-F', 'qcow2', scratch.file('top.qcow2'), '80K');
  qemuIo(
    scratch.file('top.qcow2'),
    'qcow2',
    'write -P 0x51 4k 8k', // two clusters, contiguous in the file
    'write -c -P 0x52 16k 4k', // compressed
    'write -z 24k 4k', // zero cluster over backing data
    'write -P 0x53 44k 4k', // written before the cluster in front of it: out of order in the file
    'write -P 0x54 40k 4k',
    'write -c -P 0x55 52k 4k', // compressed, past the end of base
    'write -P 0x56 72k 4k',
    'write -P 0x57 41k 1k', // rewritten in place
  );
  return scratch.file('top.qcow2');
}

function rawContent(image: string, scratch: ScratchDir, name: string): Uint8Array {
  const out = scratch.file(`${name}.raw`);
  qemuImg('convert', '-O', 'raw', image, out);
  return new Uint8Array(readFileSync(out));
}

type Operation = { kind: 'read' | 'write'; position: number; length: number; views: number; inRam: boolean } | { kind: 'sync' };

/** Records every call; with `vectored` false it has no readv/writev, like a file that cannot do them. */
function recordingFile(inner: NodeBlockFile, log: Operation[], ram: ArrayBufferLike, vectored: boolean): BlockFile {
  const file: BlockFile = {
    read: (position, dst) => {
      log.push({ kind: 'read', position, length: dst.length, views: 1, inRam: dst.buffer === ram });
      return inner.read(position, dst);
    },
    write: (position, src) => {
      log.push({ kind: 'write', position, length: src.length, views: 1, inRam: src.buffer === ram });
      return inner.write(position, src);
    },
    sync: () => {
      log.push({ kind: 'sync' });
      return inner.sync();
    },
    size: () => inner.size(),
    close: () => inner.close(),
  };
  if (vectored) {
    file.readv = (position, dsts) => {
      log.push({ kind: 'read', position, length: dsts.reduce((n, d) => n + d.length, 0), views: dsts.length, inRam: dsts.every((d) => d.buffer === ram) });
      return inner.readv(position, dsts);
    };
    file.writev = (position, srcs) => {
      log.push({ kind: 'write', position, length: srcs.reduce((n, s) => n + s.length, 0), views: srcs.length, inRam: srcs.every((s) => s.buffer === ram) });
      return inner.writev(position, srcs);
    };
  }
  return file;
}

describe('ScatterList', () => {
  it('slices a range across view boundaries as views of the original buffers', () => {
    const ram = new Uint8Array(64).map((_, i) => i);
    const views = [ram.subarray(0, 5), ram.subarray(10, 10), ram.subarray(10, 13), ram.subarray(20, 30)];
    const list = new ScatterList(views);
    expect(list.length).toBe(18);
    const slice = list.slice(3, 12);
    expect(slice.map((v) => [...v])).toEqual([[3, 4], [10, 11, 12], [20, 21, 22, 23, 24, 25, 26]]);
    expect(slice.every((v) => v.buffer === ram.buffer)).toBe(true);
    expect(list.slice(5, 3)[0]).toBe(views[2]); // a whole view is passed as it is
    expect(list.slice(18, 0)).toEqual([]);
    expect(() => list.slice(10, 9)).toThrow(RangeError);
  });

  it('joins adjacent views and splits at a byte position', () => {
    const ram = new Uint8Array(16).map((_, i) => i);
    const parts: Uint8Array[] = [];
    appendView(parts, ram.subarray(0, 4));
    appendView(parts, ram.subarray(4, 6));
    appendView(parts, new Uint8Array(0));
    appendView(parts, ram.subarray(8, 9));
    expect(parts.map((v) => [...v])).toEqual([[0, 1, 2, 3, 4, 5], [8]]);
    appendView(parts, new Uint8Array(16).subarray(9, 10)); // "adjacent", but in another buffer
    expect(parts).toHaveLength(3);
    const [head, tail] = splitViews([ram.subarray(0, 4), ram.subarray(8, 12)], 6);
    expect(head.map((v) => [...v])).toEqual([[0, 1, 2, 3], [8, 9]]);
    expect(tail.map((v) => [...v])).toEqual([[10, 11]]);
  });
});

describe('qcow2 readv/writev', () => {
  let scratch: ScratchDir;
  beforeAll(() => {
    requireQemuTools();
    scratch = new ScratchDir();
  });
  afterAll(() => scratch.remove());

  it('readv reads what read and qemu-img read, over every kind of cluster and through the backing chain', async () => {
    const prng = new Prng(0x5ca77e4);
    const top = buildChain(scratch, prng);
    const expected = rawContent(top, scratch, 'top');
    const ram = new GuestRam(prng);
    const disk = await openDiskImage(top, { readOnly: true });
    try {
      expect(disk.readv).toBeDefined();
      const ranges = [{ offset: 0, length: disk.size }, ...Array.from({ length: 300 }, () => randomRange(prng, disk.size))];
      for (const { offset, length } of ranges) {
        const views = ram.views(length);
        for (const view of views) view.fill(0xee);
        await disk.readv!(offset, views);
        const plain = new Uint8Array(length);
        await disk.read(offset, plain);
        const context = `readv(${offset}, ${views.length} views, ${length} bytes)`;
        expect(Buffer.compare(concat(views), plain), context).toBe(0);
        expect(Buffer.compare(plain, expected.subarray(offset, offset + length)), context).toBe(0);
      }
    } finally {
      await disk.close();
    }
  });

  it('writev leaves a file byte-identical to write given the same data, and qemu-img agrees', async () => {
    const prng = new Prng(0xfeed);
    const top = buildChain(scratch, prng);
    const viaWrite = scratch.file('via-write.qcow2');
    const viaWritev = scratch.file('via-writev.qcow2');
    copyFileSync(top, viaWrite);
    copyFileSync(top, viaWritev);
    const expected = rawContent(top, scratch, 'start');
    const ram = new GuestRam(prng);
    const a = await openDiskImage(viaWrite);
    const b = await openDiskImage(viaWritev);
    try {
      // Fixed writes first (partial over compressed, zero, backing and past-the-base clusters; whole
      // clusters over allocated and compressed ones), then random ones with reads in between.
      const fixed = [
        { offset: 16 * KiB + 100, length: 300 },
        { offset: 24 * KiB - 7, length: 20 },
        { offset: 30 * KiB, length: 9 * KiB },
        { offset: 52 * KiB, length: 4 * KiB },
        { offset: 47 * KiB, length: 18 * KiB },
        { offset: 0, length: 80 * KiB },
      ];
      const random = Array.from({ length: 120 }, () => randomRange(prng, a.size));
      for (const { offset, length } of [...fixed, ...random]) {
        const data = prng.bytes(length);
        await a.write(offset, data);
        const views = ram.views(length);
        scatter(views, data);
        await b.writev!(offset, views);
        expected.set(data, offset);
        // The whole disk after every write: copy-on-write must keep the rest of each cluster.
        const context = `after writing ${length} bytes at ${offset}`;
        const all = new Uint8Array(a.size);
        await a.read(0, all);
        expect(Buffer.compare(all, expected), context).toBe(0);
        const readViews = ram.views(b.size);
        await b.readv!(0, readViews);
        expect(Buffer.compare(concat(readViews), expected), context).toBe(0);
      }
    } finally {
      await a.close();
      await b.close();
    }
    expect(Buffer.compare(readFileSync(viaWritev), readFileSync(viaWrite))).toBe(0);
    const mirror = scratch.file('mirror.raw');
    writeFileSync(mirror, expected);
    expectQemuAgrees(viaWritev, mirror);
    expectQemuAgrees(viaWrite, mirror);
  });

  it('issues the same file requests in the same order as write, with guest buffers and no bounce buffer', async () => {
    const prng = new Prng(77);
    const ram = new GuestRam(prng);
    const workload = [
      { offset: 100_000, length: 3000 }, // first allocation: new L2 table, copy-on-write of a partial cluster
      { offset: 1024 * KiB, length: 1024 * KiB }, // a run of whole clusters
      { offset: 1024 * KiB + 60_000, length: 200_000 }, // in place, across clusters contiguous in the file
      { offset: 2000 * KiB, length: 300 * KiB }, // in place, then an allocation ending in a partial cluster
      { offset: 2600 * KiB, length: 300 * KiB }, // an allocation with partial clusters at both ends
    ];
    const run = async (vectored: boolean): Promise<{ log: Operation[]; file: Buffer }> => {
      const path = scratch.file(`order-${vectored}.qcow2`);
      await createQcow2(path, { size: 4 * 1024 * KiB });
      const log: Operation[] = [];
      const disk = await openDiskImage(path, {
        cache: 'writethrough',
        openFile: async (p, writable) => recordingFile(await NodeBlockFile.open(p, writable), log, ram.bytes.buffer, vectored),
      });
      log.length = 0;
      for (const [i, { offset, length }] of workload.entries()) {
        const data = new Uint8Array(length).fill(i + 1);
        if (vectored) {
          const views = ram.views(length);
          scatter(views, data);
          await disk.writev!(offset, views);
        } else {
          await disk.write(offset, data);
        }
      }
      if (vectored) await disk.readv!(1024 * KiB, ram.views(1024 * KiB));
      else await disk.read(1024 * KiB, new Uint8Array(1024 * KiB));
      await disk.close();
      return { log, file: readFileSync(path) };
    };
    const plain = await run(false);
    const vectored = await run(true);
    const shape = (log: Operation[]) => log.map((op) => (op.kind === 'sync' ? 'sync' : `${op.kind} ${op.length} at ${op.position}`));
    expect(shape(vectored.log)).toEqual(shape(plain.log));
    expect(Buffer.compare(vectored.file, plain.file)).toBe(0);

    // The 1 MiB run of whole clusters is written from the guest's views themselves, in one request,
    // and the read-back (one run in the file) lands in them directly.
    const big = vectored.log.filter((op) => op.kind === 'write' && op.length === 1024 * KiB);
    expect(big).toHaveLength(1);
    expect(big[0]).toMatchObject({ inRam: true, views: expect.any(Number) });
    expect(big[0]!.kind === 'write' && big[0]!.views).toBeGreaterThan(100);
    expect(vectored.log.filter((op) => op.kind === 'read').at(-1)).toMatchObject({ length: 1024 * KiB, inRam: true });
    // Without readv/writev the same requests go through one buffer each.
    expect(plain.log.some((op) => op.kind !== 'sync' && op.inRam)).toBe(false);
  });

  it('reads the part of a run past the end of a truncated file as zeros', async () => {
    const path = scratch.file('short.qcow2');
    await createQcow2(path, { size: 64 * KiB, clusterBits: 12 });
    const disk = await openDiskImage(path);
    await disk.write(0, new Uint8Array(16 * KiB).fill(0x6b));
    await disk.close();
    // The last data cluster loses its second half; the L2 entry still points at it.
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 2 * KiB));
    const ram = new GuestRam(new Prng(5));
    const truncated = await openDiskImage(path, { readOnly: true });
    const views = ram.views(16 * KiB);
    for (const view of views) view.fill(0xee);
    await truncated.readv!(0, views);
    await truncated.close();
    const expected = new Uint8Array(16 * KiB).fill(0x6b);
    expected.fill(0, 14 * KiB);
    expect(Buffer.compare(concat(views), expected)).toBe(0);
  });

  it('reports errors as DiskIoError with the whole request as context', async () => {
    const path = scratch.file('errors.qcow2');
    await createQcow2(path, { size: 64 * KiB });
    const views = [new Uint8Array(1000), new Uint8Array(3000)];
    const readOnly = await openDiskImage(path, { readOnly: true });
    await expect(readOnly.writev!(0, views)).rejects.toMatchObject({ name: 'DiskIoError', operation: 'write', offset: 0, length: 4000 });
    await expect(readOnly.readv!(62 * KiB, views)).rejects.toMatchObject({ operation: 'read', offset: 62 * KiB, length: 4000 });
    await readOnly.close();
    await expect(readOnly.readv!(0, views)).rejects.toBeInstanceOf(DiskIoError);

    // An L2 entry pointing past the end of the file fails the request that meets it.
    const disk = await openDiskImage(path);
    await disk.writev!(8 * KiB, [new Uint8Array(64 * KiB - 8 * KiB)]);
    await disk.close();
    const bytes = readFileSync(path);
    const l1Offset = Number(bytes.readBigUInt64BE(40));
    const l2Offset = Number(bytes.readBigUInt64BE(l1Offset) & 0x00ff_ffff_ffff_fe00n);
    bytes.writeBigUInt64BE((1n << 63n) | BigInt(bytes.length + 1024 * 1024), l2Offset);
    writeFileSync(path, bytes);
    const corrupt = await openDiskImage(path);
    const error = await corrupt.readv!(0, views).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiskIoError);
    expect(error).toMatchObject({ operation: 'read', offset: 0, length: 4000 });
    expect((error as DiskIoError).reason).toMatch(/corrupt image: .*beyond the end of the file/);
    await expect(corrupt.writev!(0, views)).rejects.toMatchObject({ operation: 'write', length: 4000 });
    await corrupt.close();
  });
});
