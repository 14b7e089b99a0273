// Writes through our qcow2 driver must leave images that qemu-img check finds clean and that
// qemu-img compare finds identical to a raw image given the same writes.

import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDiskImage, type DiskImage } from '../../../host/block/disk.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { expectQemuAgrees, Prng, pattern, qemuImg, qemuImgStatus, qemuIo, requireQemuTools, ScratchDir } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Applies the same random writes to the disk under test and to a raw mirror file. */
async function randomWrites(disk: DiskImage, mirror: string, seed: number, count: number, clusterSize: number): Promise<void> {
  const prng = new Prng(seed);
  const fd = openSync(mirror, 'r+');
  try {
    for (let i = 0; i < count; i++) {
      const shape = prng.int(5);
      let length: number;
      let offset: number;
      if (shape === 0) {
        // A whole cluster, cluster aligned.
        length = Math.min(clusterSize, disk.size);
        offset = prng.int(Math.floor(disk.size / clusterSize)) * clusterSize;
      } else if (shape === 1) {
        // Straddling a cluster boundary.
        length = 1 + prng.int(Math.min(2 * clusterSize, 8 * KiB));
        const boundary = (1 + prng.int(Math.floor(disk.size / clusterSize) - 1)) * clusterSize;
        offset = Math.max(0, boundary - prng.int(length));
      } else if (shape === 2) {
        // Sector-aligned, like a guest.
        length = 512 * (1 + prng.int(64));
        offset = prng.int(Math.floor(disk.size / 512)) * 512;
      } else {
        length = 1 + prng.int(3 * clusterSize);
        offset = prng.int(disk.size);
      }
      length = Math.min(length, disk.size - offset);
      if (length === 0) continue;
      if (prng.int(8) === 0 && disk.writeZeroes) {
        await disk.writeZeroes(offset, length);
        writeSync(fd, new Uint8Array(length), 0, length, offset);
      } else {
        const data = prng.bytes(length);
        await disk.write(offset, data);
        writeSync(fd, data, 0, length, offset);
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function expectContent(disk: DiskImage, expected: Uint8Array): Promise<void> {
  const actual = new Uint8Array(disk.size);
  await disk.read(0, actual);
  expect(actual.length).toBe(expected.length);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

/** Writes, verifies in place, reopens and verifies, then lets qemu-img judge. */
async function exercise(image: string, mirror: string, seed: number, count: number, clusterSize: number): Promise<void> {
  const disk = await openDiskImage(image);
  expect(disk.format).toBe('qcow2');
  await randomWrites(disk, mirror, seed, count, clusterSize);
  const expected = new Uint8Array(readFileSync(mirror));
  await expectContent(disk, expected);
  await disk.close();
  const reopened = await openDiskImage(image, { readOnly: true });
  await expectContent(reopened, expected);
  await reopened.close();
  expectQemuAgrees(image, mirror);
}

function rawMirrorOf(image: string, mirror: string): void {
  qemuImg('convert', '-O', 'raw', image, mirror);
}

describe('writing qcow2 images', () => {
  let scratch: ScratchDir;
  beforeAll(() => {
    requireQemuTools();
    scratch = new ScratchDir();
  });
  afterAll(() => scratch.remove());

  it.each([
    ['compat=1.1', 64 * KiB],
    ['compat=0.10', 64 * KiB],
    ['refcount_bits=1', 64 * KiB],
    ['refcount_bits=64,cluster_size=512', 512],
    ['refcount_bits=2,cluster_size=4k', 4 * KiB],
    ['refcount_bits=8,cluster_size=2k', 2 * KiB],
    ['refcount_bits=32', 64 * KiB],
    ['preallocation=metadata', 64 * KiB],
  ])('random writes to an image created with -o %s', async (options, clusterSize) => {
    const image = scratch.file(`w-${options.replace(/[=,.]/g, '_')}.qcow2`);
    const mirror = `${image}.mirror.raw`;
    qemuImg('create', '-q', '-f', 'qcow2', '-o', options, image, '4M');
    qemuIo(image, 'qcow2', 'write -P 0xa5 64k 200k', 'write -z 128k 64k');
    rawMirrorOf(image, mirror);
    await exercise(image, mirror, options.length, 300, clusterSize);
  });

  it('grows the refcount table when the image outgrows it', async () => {
    // 512-byte clusters with 64-bit refcounts: one refcount block covers 64 clusters (32 KiB) and the
    // initial one-cluster table 64 blocks (2 MiB), so filling 6 MiB needs a bigger table.
    const image = scratch.file('grow.qcow2');
    const mirror = `${image}.mirror.raw`;
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512,refcount_bits=64', image, '6M');
    rawMirrorOf(image, mirror);
    const disk = await openDiskImage(image);
    const fd = openSync(mirror, 'r+');
    for (let offset = 0; offset < disk.size; offset += 96 * KiB) {
      const data = pattern(Math.min(64 * KiB, disk.size - offset), offset / 1024);
      await disk.write(offset, data);
      writeSync(fd, data, 0, data.length, offset);
    }
    closeSync(fd);
    await disk.close();
    const info = readFileSync(image);
    const tableClusters = info.readUInt32BE(56);
    expect(tableClusters).toBeGreaterThan(1);
    expectQemuAgrees(image, mirror);
  });

  it('copies backing data on partial writes to an overlay over raw', async () => {
    const base = scratch.file('backing.raw');
    writeFileSync(base, pattern(3 * MiB, 3));
    const image = scratch.file('overlay-raw.qcow2');
    const mirror = `${image}.mirror.raw`;
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'backing.raw', '-F', 'raw', image, '4M');
    rawMirrorOf(image, mirror);
    await exercise(image, mirror, 11, 300, 64 * KiB);
    expect(Buffer.compare(readFileSync(base), Buffer.from(pattern(3 * MiB, 3)))).toBe(0);
  });

  it('copies backing data on partial writes to an overlay over qcow2', async () => {
    const base = scratch.file('backing.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '4M');
    qemuIo(base, 'qcow2', 'write -P 0x17 0 1M', 'write -P 0x29 1500k 700k', 'write -P 0x3b 3M 1M');
    const image = scratch.file('overlay-qcow2.qcow2');
    const mirror = `${image}.mirror.raw`;
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'backing.qcow2', '-F', 'qcow2', image, '4M');
    rawMirrorOf(image, mirror);
    await exercise(image, mirror, 12, 300, 64 * KiB);
  });

  it('rewrites compressed clusters as normal clusters', async () => {
    const source = scratch.file('compressible.raw');
    const content = new Uint8Array(4 * MiB);
    for (let i = 0; i < content.length; i++) content[i] = (i >> 10) & 0xff;
    writeFileSync(source, content);
    const image = scratch.file('compressed.qcow2');
    const mirror = `${image}.mirror.raw`;
    qemuImg('convert', '-c', '-O', 'qcow2', source, image);
    writeFileSync(mirror, content);
    await exercise(image, mirror, 13, 300, 64 * KiB);
  });

  it('writes copy-on-write around clusters shared with an internal snapshot', async () => {
    const image = scratch.file('snapshotted.qcow2');
    const mirror = `${image}.mirror.raw`;
    qemuImg('create', '-q', '-f', 'qcow2', image, '4M');
    qemuIo(image, 'qcow2', 'write -P 0x42 0 4M');
    qemuImg('snapshot', '-c', 'before', image);
    rawMirrorOf(image, mirror);
    await exercise(image, mirror, 14, 200, 64 * KiB);
    // The snapshot still holds the old data.
    const snapshotView = scratch.file('snapshot-view.raw');
    qemuImg('convert', '-l', 'snapshot.name=before', '-O', 'raw', image, snapshotView);
    expect(readFileSync(snapshotView).every((b) => b === 0x42)).toBe(true);
  });

  it.each([0, 1, 2, 3, 4, 5, 6])('creates images qemu-img accepts (refcount order %i, 512-byte clusters)', async (refcountOrder) => {
    const image = scratch.file(`created-${refcountOrder}.qcow2`);
    const mirror = `${image}.mirror.raw`;
    await createQcow2(image, { size: 3 * MiB, clusterBits: 9, refcountOrder });
    expect(qemuImgStatus('check', image).status).toBe(0);
    expect(qemuImg('info', image)).toMatch(new RegExp(`refcount bits: ${2 ** refcountOrder}\\b`));
    writeFileSync(mirror, new Uint8Array(3 * MiB));
    await exercise(image, mirror, 20 + refcountOrder, 150, 512);
  });

  it('creates an overlay with a backing file that qemu-img reads the same way', async () => {
    const base = scratch.file('created-base.raw');
    writeFileSync(base, pattern(2 * MiB, 8));
    const image = scratch.file('created-overlay.qcow2');
    const mirror = `${image}.mirror.raw`;
    await createQcow2(image, { size: 2 * MiB, backingFile: 'created-base.raw', backingFormat: 'raw' });
    expect(qemuImg('info', image)).toMatch(/backing file: created-base\.raw/);
    rawMirrorOf(image, mirror);
    await exercise(image, mirror, 30, 200, 64 * KiB);
  });
});
