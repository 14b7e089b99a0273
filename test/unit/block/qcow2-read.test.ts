// Images made by the real qemu-img/qemu-io must read back exactly what QEMU reads from them. QEMU itself
// is the oracle: every image is also converted to raw by qemu-img and compared byte for byte.

import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDiskImage, type DiskImage } from '../../../host/block/disk.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { Qcow2DiskImage } from '../../../host/block/qcow2/image.js';
import { pattern, qemuImg, qemuIo, requireQemuTools, ScratchDir } from './helpers.js';

const MiB = 1024 * 1024;

async function readAll(disk: DiskImage): Promise<Uint8Array> {
  const out = new Uint8Array(disk.size);
  // Odd-sized chunks so requests straddle cluster boundaries.
  const chunk = 100_000;
  for (let offset = 0; offset < disk.size; offset += chunk) {
    await disk.read(offset, out.subarray(offset, Math.min(disk.size, offset + chunk)));
  }
  return out;
}

function qemuView(scratch: ScratchDir, image: string): Uint8Array {
  const raw = scratch.file(`view-${Math.random().toString(36).slice(2)}.raw`);
  qemuImg('convert', '-O', 'raw', image, raw);
  return new Uint8Array(readFileSync(raw));
}

async function expectSameAsQemu(scratch: ScratchDir, image: string): Promise<DiskImage> {
  const disk = await openDiskImage(image, { readOnly: true });
  expect(disk.format).toBe('qcow2');
  const ours = await readAll(disk);
  const theirs = qemuView(scratch, image);
  expect(ours.length).toBe(theirs.length);
  expect(Buffer.compare(ours, theirs)).toBe(0);
  return disk;
}

describe('qcow2 images made by qemu-img', () => {
  let scratch: ScratchDir;
  beforeAll(() => {
    requireQemuTools();
    scratch = new ScratchDir();
  });
  afterAll(() => scratch.remove());

  const writes = ['write -P 0xab 0 64k', 'write -P 0x11 100k 3k', 'write -P 0x22 1020k 8k', 'write -z 2M 64k', 'write -P 0x33 3M 1M'];

  it('reads a default (version 3) image written by qemu-io', async () => {
    const image = scratch.file('v3.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', image, '4M');
    qemuIo(image, 'qcow2', ...writes);
    const disk = await expectSameAsQemu(scratch, image);
    expect((disk as Qcow2DiskImage).header.version).toBe(3);
    const probe = new Uint8Array(4);
    await disk.read(100 * 1024, probe);
    expect([...probe]).toEqual([0x11, 0x11, 0x11, 0x11]);
    await disk.close();
  });

  it('reads a compat=0.10 (version 2) image', async () => {
    const image = scratch.file('v2.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', image, '4M');
    qemuIo(image, 'qcow2', ...writes);
    const disk = await expectSameAsQemu(scratch, image);
    expect((disk as Qcow2DiskImage).header.version).toBe(2);
    await disk.close();
  });

  it('reads zero clusters (v3 zero flag) over non-zero backing data as zeros', async () => {
    const base = scratch.file('zero-base.raw');
    writeFileSync(base, new Uint8Array(MiB).fill(0x77));
    const image = scratch.file('zero.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', image, '1M');
    qemuIo(image, 'qcow2', 'write -z 64k 128k');
    const disk = await expectSameAsQemu(scratch, image);
    const dst = new Uint8Array(256 * 1024);
    await disk.read(0, dst);
    expect(dst.subarray(0, 65536).every((b) => b === 0x77)).toBe(true);
    expect(dst.subarray(65536, 196608).every((b) => b === 0)).toBe(true);
    expect(dst.subarray(196608).every((b) => b === 0x77)).toBe(true);
    await disk.close();
  });

  it('reads through a backing chain qcow2 -> qcow2 -> raw with relative names', async () => {
    const base = scratch.file('chain-base.raw');
    writeFileSync(base, pattern(2 * MiB, 5));
    const middle = scratch.file('chain-middle.qcow2');
    const top = scratch.file('chain-top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'chain-base.raw', '-F', 'raw', middle, '3M');
    qemuIo(middle, 'qcow2', 'write -P 0x44 512k 100k');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'chain-middle.qcow2', '-F', 'qcow2', top, '3M');
    qemuIo(top, 'qcow2', 'write -P 0x55 560k 4k', 'write -P 0x66 2047k 2k');
    const disk = await expectSameAsQemu(scratch, top);
    const backing = (disk as Qcow2DiskImage).backing;
    expect(backing?.format).toBe('qcow2');
    expect((backing as Qcow2DiskImage).backing?.format).toBe('raw');
    await disk.close();
  });

  it('probes the backing format when the header does not name it', async () => {
    const base = scratch.file('probe-base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '1M');
    qemuIo(base, 'qcow2', 'write -P 0x99 0 1k');
    const top = scratch.file('probe-top.qcow2');
    // qemu-img 7.2 insists on -F, so the header without a backing format extension is written by us.
    await createQcow2(top, { size: MiB, backingFile: 'probe-base.qcow2' });
    const disk = await expectSameAsQemu(scratch, top);
    expect((disk as Qcow2DiskImage).backing?.format).toBe('qcow2');
    await disk.close();
  });

  it('reads compressed clusters made by qemu-img convert -c', async () => {
    const source = scratch.file('compress-src.raw');
    const content = new Uint8Array(3 * MiB + 4096);
    content.set(pattern(MiB, 9), 0);
    content.fill(0x3c, 1536 * 1024, 2 * MiB);
    const random = new Uint8Array(200_000);
    for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
    content.set(random, 2 * MiB + 1000);
    writeFileSync(source, content);
    for (const compat of ['1.1', '0.10']) {
      const image = scratch.file(`compressed-${compat}.qcow2`);
      qemuImg('convert', '-c', '-O', 'qcow2', '-o', `compat=${compat}`, source, image);
      expect(qemuImg('check', image)).toMatch(/[1-9][\d.]*% compressed clusters/);
      const disk = await expectSameAsQemu(scratch, image);
      const all = await readAll(disk);
      expect(Buffer.compare(all, content)).toBe(0);
      await disk.close();
    }
  });

  it.each([
    ['refcount_bits=1', 512 * 1024],
    ['refcount_bits=64', 512 * 1024],
    ['cluster_size=512', 300 * 1024],
    ['cluster_size=2M', 5 * MiB],
    ['cluster_size=4k,refcount_bits=2', 700 * 1024],
  ])('reads images created with -o %s', async (options, size) => {
    const image = scratch.file(`opts-${options.replace(/[=,]/g, '_')}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', options, image, String(size));
    qemuIo(image, 'qcow2', `write -P 0x5e 1000 ${size / 4}`, `write -P 0x6f ${size / 2} 4096`);
    const disk = await expectSameAsQemu(scratch, image);
    await disk.close();
  });
});
