import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskIoError, openDiskImage } from '../../../host/block/disk.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { LruCache } from '../../../host/block/qcow2/lru.js';
import { AsyncRwLock } from '../../../host/block/lock.js';
import { readRefcount, writeRefcount } from '../../../host/block/qcow2/refcounts.js';
import { Prng, qemuImg, qemuImgStatus, requireQemuTools, ScratchDir } from './helpers.js';

describe('LruCache', () => {
  it('evicts the least recently used entry beyond capacity', () => {
    const cache = new LruCache<number, string>(2);
    cache.set(1, 'a');
    cache.set(2, 'b');
    expect(cache.get(1)).toBe('a');
    cache.set(3, 'c');
    expect(cache.get(2)).toBeUndefined();
    expect(cache.get(1)).toBe('a');
    expect(cache.get(3)).toBe('c');
    expect(cache.size).toBe(2);
  });

  it('keeps the order right when the newest entry is hit again, deleted or replaced', () => {
    const cache = new LruCache<number, string>(2);
    cache.set(1, 'a');
    cache.set(2, 'b');
    expect(cache.get(2)).toBe('b');
    expect(cache.get(2)).toBe('b');
    cache.set(3, 'c'); // 1 is the least recently used
    expect(cache.get(1)).toBeUndefined();
    cache.delete(3);
    cache.set(4, 'd');
    expect(cache.get(2)).toBe('b'); // 2 becomes the newest again
    cache.set(5, 'e'); // so 4 goes
    expect(cache.get(4)).toBeUndefined();
    expect([cache.get(2), cache.get(5)]).toEqual(['b', 'e']);
  });
});

describe('AsyncRwLock', () => {
  it('runs a body at once when nobody holds or waits for the lock', () => {
    const lock = new AsyncRwLock();
    const started: string[] = [];
    void lock.shared(async () => { started.push('shared'); });
    void lock.shared(async () => { started.push('shared again'); });
    expect(started).toEqual(['shared', 'shared again']);
    const other = new AsyncRwLock();
    void other.exclusive(async () => { started.push('exclusive'); });
    expect(started).toContain('exclusive');
  });

  it('keeps FIFO order: a reader that comes after a waiting writer waits for it', async () => {
    const lock = new AsyncRwLock();
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = lock.shared(() => new Promise<void>((resolve) => { releaseFirst = resolve; }));
    const writer = lock.exclusive(async () => { order.push('writer'); });
    const reader = lock.shared(async () => { order.push('reader'); });
    const second = lock.exclusive(async () => { order.push('second writer'); });
    await Promise.resolve();
    expect(order).toEqual([]);
    releaseFirst();
    await Promise.all([first, writer, reader, second]);
    expect(order).toEqual(['writer', 'reader', 'second writer']);
  });
});

describe('refcount entry packing', () => {
  it.each([1, 2, 4, 8, 16, 32, 64])('round-trips %i-bit refcounts without touching neighbours', (bits) => {
    const block = new Uint8Array(512);
    const entries = (512 * 8) / bits;
    const max = bits >= 53 ? 2 ** 53 - 1 : 2 ** bits - 1;
    const prng = new Prng(bits);
    const expected: number[] = [];
    for (let i = 0; i < entries; i++) {
      const value = i % 7 === 0 ? max : prng.int(Math.min(max, 2 ** 31) + 1);
      expected.push(value);
      writeRefcount(block, i, bits, value);
    }
    for (let i = 0; i < entries; i++) expect(readRefcount(block, i, bits)).toBe(expected[i]);
    // Sub-byte widths: bit 0 is the least significant bit (qcow2 spec).
    if (bits === 1) {
      const single = new Uint8Array(1);
      writeRefcount(single, 0, 1, 1);
      expect(single[0]).toBe(1);
    }
  });
});

describe('qcow2 driver behaviour', () => {
  let scratch: ScratchDir;
  beforeEach(() => {
    scratch = new ScratchDir();
  });
  afterEach(() => scratch.remove());

  it('refuses writes when opened read-only and leaves the file alone', async () => {
    const path = scratch.file('ro.qcow2');
    await createQcow2(path, { size: 1024 * 1024 });
    const disk = await openDiskImage(path, { readOnly: true });
    await expect(disk.write(0, new Uint8Array(512))).rejects.toThrow(/read-only/);
    await expect(disk.read(1024 * 1024 - 100, new Uint8Array(200))).rejects.toBeInstanceOf(DiskIoError);
    await disk.close();
  });

  it('stays correct with an L2 cache far smaller than the working set', async () => {
    // 512-byte clusters: each L2 table covers 32 KiB, so 4 MiB spans 128 tables; the cache holds 4.
    const path = scratch.file('small-cache.qcow2');
    await createQcow2(path, { size: 4 * 1024 * 1024, clusterBits: 9 });
    const disk = await openDiskImage(path, { l2CacheBytes: 1 });
    const expected = new Uint8Array(disk.size);
    const prng = new Prng(77);
    for (let i = 0; i < 400; i++) {
      const offset = prng.int(disk.size - 3000);
      const data = prng.bytes(1 + prng.int(3000));
      await disk.write(offset, data);
      expected.set(data, offset);
    }
    const actual = new Uint8Array(disk.size);
    await disk.read(0, actual);
    expect(Buffer.compare(actual, expected)).toBe(0);
    await disk.close();
    requireQemuTools();
    expect(qemuImgStatus('check', path).status).toBe(0);
  });

  it('serialises concurrent overlapping requests into a consistent image', async () => {
    const path = scratch.file('concurrent.qcow2');
    await createQcow2(path, { size: 2 * 1024 * 1024 });
    const disk = await openDiskImage(path);
    const prng = new Prng(5);
    const expected = new Uint8Array(disk.size);
    const requests: Array<Promise<void>> = [];
    for (let i = 0; i < 200; i++) {
      const offset = prng.int(disk.size - 70_000);
      const data = prng.bytes(1 + prng.int(70_000));
      // Requests are applied in submission order by the FIFO lock, so the expected image follows it.
      expected.set(data, offset);
      requests.push(disk.write(offset, data));
      if (i % 3 === 0) requests.push(disk.read(prng.int(disk.size - 4096), new Uint8Array(4096)));
    }
    await Promise.all(requests);
    const actual = new Uint8Array(disk.size);
    await disk.read(0, actual);
    expect(Buffer.compare(actual, expected)).toBe(0);
    await disk.close();
    requireQemuTools();
    expect(qemuImgStatus('check', path).status).toBe(0);
  });

  it('writeZeroes turns whole clusters into zero clusters without writing data', async () => {
    const path = scratch.file('zeroes.qcow2');
    await createQcow2(path, { size: 1024 * 1024 });
    const disk = await openDiskImage(path);
    await disk.write(0, new Uint8Array(disk.size).fill(0x99));
    await disk.writeZeroes!(1000, 300_000);
    const actual = new Uint8Array(disk.size);
    await disk.read(0, actual);
    expect(actual.subarray(0, 1000).every((b) => b === 0x99)).toBe(true);
    expect(actual.subarray(1000, 301_000).every((b) => b === 0)).toBe(true);
    expect(actual.subarray(301_000).every((b) => b === 0x99)).toBe(true);
    await disk.close();
    requireQemuTools();
    expect(qemuImgStatus('check', path).status).toBe(0);
    // Clusters 1-3 lie wholly inside the range: QEMU sees them as zero, with no data behind them.
    const map = JSON.parse(qemuImg('map', '--output=json', path)) as Array<{ start: number; length: number; zero: boolean; data: boolean }>;
    const zeroed = map.find((extent) => extent.start === 65536);
    expect(zeroed).toMatchObject({ length: 3 * 65536, zero: true, data: false });
  });

  it.each([false, true])('discard frees whole clusters (backing file: %s) and qemu-img check stays clean', async (withBacking) => {
    const base = scratch.file('discard-base.raw');
    writeFileSync(base, new Uint8Array(1024 * 1024).fill(0x44));
    const path = scratch.file('discard.qcow2');
    await createQcow2(path, withBacking ? { size: 1024 * 1024, backingFile: 'discard-base.raw', backingFormat: 'raw' } : { size: 1024 * 1024 });
    const disk = await openDiskImage(path);
    await disk.write(0, new Uint8Array(disk.size).fill(0x99));
    await disk.discard!(65535, 300_000);
    const actual = new Uint8Array(disk.size);
    await disk.read(0, actual);
    await disk.close();
    // Clusters 1-4 lie wholly inside the range; the partial clusters around them keep their data.
    expect(actual.subarray(0, 65536).every((b) => b === 0x99)).toBe(true);
    expect(actual.subarray(65536, 5 * 65536).every((b) => b === 0)).toBe(true);
    expect(actual.subarray(5 * 65536).every((b) => b === 0x99)).toBe(true);
    requireQemuTools();
    const check = qemuImgStatus('check', path);
    expect(check.status).toBe(0);
    expect(check.output).toMatch(/12\/16 = 75\.00% allocated/);
  });
});
