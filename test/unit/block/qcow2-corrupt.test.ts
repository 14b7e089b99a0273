// Hostile and damaged images: every failure must be a DiskImageError at open or a DiskIoError for the
// request, never another exception, a hang, or a write beyond the image file.

import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskImageError, DiskIoError, openDiskImage } from '../../../host/block/disk.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { Prng, qemuImg, qemuIo, requireQemuTools, ScratchDir } from './helpers.js';

const KiB = 1024;

type Outcome = { opened: boolean; ioErrors: number };

/**
 * Opens the image read-only and read-write and drives a few reads and writes. Returns what happened;
 * fails the test on any error that is not one of ours, and on file growth beyond what the writes
 * could legitimately allocate.
 */
async function drive(path: string, prng: Prng): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const readOnly of [true, false]) {
    const sizeBefore = statSync(path).size;
    let disk;
    try {
      disk = await openDiskImage(path, { readOnly, format: 'qcow2' });
    } catch (error) {
      if (!(error instanceof DiskImageError)) throw error;
      expect(error.reason.length).toBeGreaterThan(0);
      outcomes.push({ opened: false, ioErrors: 0 });
      continue;
    }
    let ioErrors = 0;
    const attempt = async (operation: () => Promise<void>): Promise<void> => {
      try {
        await operation();
      } catch (error) {
        if (!(error instanceof DiskIoError)) throw error;
        ioErrors++;
      }
    };
    const span = Math.min(disk.size, 4 * 1024 * 1024);
    const offsets = [0, 65536 - 100, 1024 * KiB, Math.max(0, span - 4096), prng.int(Math.max(1, span))];
    for (const offset of offsets) {
      const length = Math.min(8 * KiB, disk.size - offset);
      if (length <= 0) continue;
      await attempt(() => disk.read(offset, new Uint8Array(length)));
      if (!readOnly) await attempt(() => disk.write(offset, new Uint8Array(length).fill(0xee)));
    }
    await attempt(() => disk.flush());
    await attempt(() => disk.close());
    // Four small writes may allocate a few data clusters, L2 tables and refcount blocks, and at most
    // one refcount table growth; nothing like a sparse file at a hostile offset.
    expect(statSync(path).size).toBeLessThanOrEqual(sizeBefore + 64 * 2 * 1024 * 1024);
    outcomes.push({ opened: true, ioErrors });
  }
  return outcomes;
}

function setU32(path: string, offset: number, value: number): void {
  const bytes = readFileSync(path);
  bytes.writeUInt32BE(value >>> 0, offset);
  writeFileSync(path, bytes);
}

function setU64(path: string, offset: number, value: bigint): void {
  const bytes = readFileSync(path);
  bytes.writeBigUInt64BE(value, offset);
  writeFileSync(path, bytes);
}

describe('corrupt and hostile qcow2 images', () => {
  let scratch: ScratchDir;
  let pristine: string;
  let l1Offset: number;
  let l2Offset: number;
  let refcountTableOffset: number;

  beforeAll(() => {
    requireQemuTools();
    scratch = new ScratchDir();
    pristine = scratch.file('pristine.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', pristine, '2M');
    qemuIo(pristine, 'qcow2', 'write -P 0x5a 0 100k', 'write -P 0x6b 1M 64k');
    const header = readFileSync(pristine);
    l1Offset = Number(header.readBigUInt64BE(40));
    refcountTableOffset = Number(header.readBigUInt64BE(48));
    l2Offset = Number(header.readBigUInt64BE(l1Offset) & 0x00fffffffffffe00n);
  });
  afterAll(() => scratch.remove());

  function copy(name: string): string {
    const path = scratch.file(name);
    copyFileSync(pristine, path);
    return path;
  }

  async function openError(path: string, readOnly = false): Promise<DiskImageError> {
    const error = await openDiskImage(path, { readOnly, format: 'qcow2' }).then(
      async (disk) => {
        await disk.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DiskImageError);
    return error as DiskImageError;
  }

  it('the pristine image opens and reads', async () => {
    const outcomes = await drive(copy('control.qcow2'), new Prng(1));
    expect(outcomes).toEqual([
      { opened: true, ioErrors: 0 },
      { opened: true, ioErrors: 0 },
    ]);
  });

  it.each([
    ['bad magic', (p: string) => setU32(p, 0, 0x12345678), /bad magic/],
    ['version 4', (p: string) => setU32(p, 4, 4), /version 4 is not supported/],
    ['cluster_bits 8', (p: string) => setU32(p, 20, 8), /cluster_bits 8/],
    ['cluster_bits 40', (p: string) => setU32(p, 20, 40), /cluster_bits 40/],
    ['AES encryption', (p: string) => setU32(p, 32, 1), /encrypted images \(AES\)/],
    // qemu-img's LUKS creation benchmarks PBKDF and fails on a loaded machine, so the field is set by hand.
    ['LUKS encryption', (p: string) => setU32(p, 32, 2), /encrypted images \(LUKS\)/],
    ['L1 too small', (p: string) => setU32(p, 36, 0), /L1 table has 0 entries/],
    ['L1 table misaligned', (p: string) => setU64(p, 40, BigInt(l1Offset + 8)), /L1 table offset .* not aligned/],
    ['L1 table in header', (p: string) => setU64(p, 40, 0n), /L1 table offset 0x0 overlaps the image header/],
    ['L1 table beyond file', (p: string) => setU64(p, 40, 1n << 40n), /L1 table .* beyond the end of the file/],
    ['L1 table enormous', (p: string) => setU32(p, 36, 0xffffffff), /exceeds the 33554432-byte limit/],
    ['size beyond 2^52', (p: string) => setU64(p, 24, 1n << 60n), /size .* too large/],
    ['refcount table misaligned', (p: string) => setU64(p, 48, BigInt(refcountTableOffset + 512)), /refcount table offset .* not aligned/],
    ['refcount table empty', (p: string) => setU32(p, 56, 0), /no refcount table/],
    ['refcount table huge', (p: string) => setU32(p, 56, 1 << 20), /refcount table of .* exceeds/],
    ['refcount table = L1 table', (p: string) => setU64(p, 48, BigInt(l1Offset)), /overlap/],
    ['refcount_order 7', (p: string) => setU32(p, 96, 7), /refcount_order 7/],
    ['header_length odd', (p: string) => setU32(p, 100, 105), /header_length 105/],
    ['header_length past cluster', (p: string) => setU32(p, 100, 1 << 20), /header_length/],
    ['unknown incompatible bit', (p: string) => setU64(p, 72, 1n << 20n), /unknown incompatible feature\(s\): bit 20/],
    ['external data file bit', (p: string) => setU64(p, 72, 1n << 2n), /external data files are not supported/],
    ['extended L2 bit', (p: string) => setU64(p, 72, 1n << 4n), /extended L2 entries/],
    ['zstd compression bit', (p: string) => setU64(p, 72, 1n << 3n), /compression .* not supported/],
    ['L1 entry reserved bits', (p: string) => setU64(p, l1Offset, (1n << 63n) | BigInt(l2Offset) | 1n), /L1 entry 0 .* reserved bits/],
    ['L1 entry misaligned', (p: string) => setU64(p, l1Offset, (1n << 63n) | 0x10200n), /L2 table \(L1 entry 0\) offset 0x10200 is not aligned/],
    ['L1 entry onto the L1 table', (p: string) => setU64(p, l1Offset, (1n << 63n) | BigInt(l1Offset)), /inside the L1 or refcount table/],
    ['refcount table entry misaligned', (p: string) => setU64(p, refcountTableOffset, 0x20200n), /refcount table entry 0 .* not aligned/],
  ])('refuses at open: %s', async (_name, damage, message) => {
    const path = copy(`open-${_name.replace(/\W+/g, '_')}.qcow2`);
    damage(path);
    const error = await openError(path);
    expect(error.reason).toMatch(message);
    expect(error.path).toBe(path);
  });

  it('names an unknown incompatible feature from the feature table', async () => {
    const path = copy('named-feature.qcow2');
    const bytes = readFileSync(path);
    // Rename the feature table's entry for incompatible bit 0 to bit 9, then set bit 9.
    const tableStart = bytes.indexOf(Buffer.from('dirty bit')) - 2;
    expect(tableStart).toBeGreaterThan(0);
    bytes[tableStart + 1] = 9;
    bytes.writeBigUInt64BE(1n << 9n, 72);
    writeFileSync(path, bytes);
    expect((await openError(path, true)).reason).toMatch(/bit 9 'dirty bit'/);
  });

  it('refuses read-write with the dirty bit set, pointing at qemu-img check -r all; read-only works', async () => {
    const path = copy('dirty.qcow2');
    setU64(path, 72, 1n);
    expect((await openError(path)).reason).toMatch(/dirty bit.*qemu-img check -r all/);
    const disk = await openDiskImage(path, { readOnly: true });
    const dst = new Uint8Array(4);
    await disk.read(0, dst);
    expect([...dst]).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    await disk.close();
  });

  it('refuses read-write when marked corrupt', async () => {
    const path = copy('corrupt-bit.qcow2');
    setU64(path, 72, 2n);
    expect((await openError(path)).reason).toMatch(/marked corrupt.*qemu-img check -r all/);
  });

  it('refuses images qemu-img made with features we do not implement', async () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['zstd.qcow2', ['-o', 'compression_type=zstd'], /compression zstd is not supported/],
      ['subclusters.qcow2', ['-o', 'extended_l2=on'], /extended L2 entries/],
      ['datafile.qcow2', ['-o', `data_file=${scratch.file('datafile.raw')}`], /external data files are not supported \(data file '.*datafile\.raw'\)/],
    ];
    for (const [name, args, message] of cases) {
      const path = scratch.file(name);
      qemuImg('create', '-q', '-f', 'qcow2', ...args, path, '1M');
      expect((await openError(path, true)).reason).toMatch(message);
    }
  }, 30_000);

  it('gives DiskIoError for bad L2 entries, and keeps serving other clusters', async () => {
    const entries: Array<[bigint, RegExp]> = [
      [(1n << 63n) | 0x1000n, /not aligned/],
      [(1n << 63n) | 0x200n | 0x2n, /reserved bits/],
      [1n << 63n, /host offset 0/],
      [(1n << 63n) | (1n << 45n), /beyond the end of the file/],
      [(1n << 63n) | BigInt(l1Offset), /metadata/],
      [(1n << 62n) | (0xffn << 54n) | (1n << 50n), /beyond the end of the file/],
      [(1n << 62n) | 0x30000n, /does not decompress|decompresses to/],
    ];
    for (const [index, [entry, message]] of entries.entries()) {
      const path = copy(`l2-${index}.qcow2`);
      setU64(path, l2Offset, entry);
      const disk = await openDiskImage(path);
      const error = await disk.write(0, new Uint8Array(512)).then(
        () => disk.read(0, new Uint8Array(512)),
        (e: unknown) => Promise.reject(e),
      ).catch((e: unknown) => e);
      expect(error, `entry 0x${entry.toString(16)}`).toBeInstanceOf(DiskIoError);
      expect((error as DiskIoError).reason).toMatch(message);
      const other = new Uint8Array(4);
      await disk.read(1024 * KiB, other);
      expect([...other]).toEqual([0x6b, 0x6b, 0x6b, 0x6b]);
      await disk.close();
    }
  });

  it('gives DiskIoError when a refcount block lies beyond the end of the file', async () => {
    const path = copy('refblock-gone.qcow2');
    setU64(path, refcountTableOffset, 1n << 40n);
    const disk = await openDiskImage(path);
    const error = await disk.write(1536 * KiB, new Uint8Array(512)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiskIoError);
    expect((error as DiskIoError).reason).toMatch(/refcount block 0 .* beyond the end of the file/);
    await disk.close();
  });

  it('handles truncation at every interesting length', async () => {
    const size = statSync(pristine).size;
    const lengths = [0, 3, 71, 103, 200, 65535, 65536, 65536 * 2, 65536 * 3, 65536 * 3 + 4, size - 65536, size - 1];
    const seen = new Set<string>();
    for (const length of lengths) {
      const path = copy(`truncated-${length}.qcow2`);
      truncateSync(path, length);
      const outcomes = await drive(path, new Prng(length));
      seen.add(outcomes.map((o) => (o.opened ? (o.ioErrors > 0 ? 'io-error' : 'ok') : 'refused')).join('/'));
    }
    // Truncations range from "no header" to "last data cluster cut short".
    expect(seen.has('refused/refused'), [...seen].join(' ')).toBe(true);
    expect([...seen].some((s) => s.includes('io-error')), [...seen].join(' ')).toBe(true);
  });

  it('detects backing file loops and over-deep chains', async () => {
    const a = scratch.file('loop-a.qcow2');
    const b = scratch.file('loop-b.qcow2');
    await createQcow2(a, { size: 1024 * KiB, backingFile: 'loop-b.qcow2', backingFormat: 'qcow2' });
    await createQcow2(b, { size: 1024 * KiB, backingFile: 'loop-a.qcow2', backingFormat: 'qcow2' });
    expect((await openError(a, true)).reason).toMatch(/backing file loop: .*loop-a\.qcow2 -> .*loop-b\.qcow2 -> .*loop-a\.qcow2/);
    const self = scratch.file('loop-self.qcow2');
    await createQcow2(self, { size: 1024 * KiB, backingFile: 'loop-self.qcow2' });
    expect((await openError(self, true)).reason).toMatch(/backing file loop/);

    writeFileSync(scratch.file('deep-0.raw'), new Uint8Array(4096));
    await createQcow2(scratch.file('deep-1.qcow2'), { size: 4096, backingFile: 'deep-0.raw', backingFormat: 'raw' });
    for (let depth = 2; depth <= 18; depth++) {
      await createQcow2(scratch.file(`deep-${depth}.qcow2`), { size: 4096, backingFile: `deep-${depth - 1}.qcow2`, backingFormat: 'qcow2' });
    }
    const ok = await openDiskImage(scratch.file('deep-16.qcow2'), { readOnly: true });
    await ok.close();
    expect((await openError(scratch.file('deep-18.qcow2'), true)).reason).toMatch(/deeper than 16/);
  });

  it('refuses a backing file that is a FIFO or a device instead of hanging on it', async () => {
    const fifo = scratch.file('backing.fifo');
    execFileSync('mkfifo', [fifo]);
    const overFifo = scratch.file('over-fifo.qcow2');
    await createQcow2(overFifo, { size: 4096, backingFile: 'backing.fifo', backingFormat: 'raw' });
    expect((await openError(overFifo, true)).reason).toMatch(/not a regular file/);
    const overDevice = scratch.file('over-device.qcow2');
    await createQcow2(overDevice, { size: 4096, backingFile: '/dev/zero', backingFormat: 'raw' });
    expect((await openError(overDevice, true)).reason).toMatch(/not a regular file/);
  });

  it('reports a missing backing file and an unsupported backing format', async () => {
    const missing = scratch.file('orphan.qcow2');
    await createQcow2(missing, { size: 4096, backingFile: 'nowhere.raw', backingFormat: 'raw' });
    const error = await openError(missing, true);
    expect(error.path).toMatch(/nowhere\.raw$/);
    expect(error.reason).toMatch(/cannot open/);

    const vmdkBacked = scratch.file('vmdk-backed.qcow2');
    qemuImg('create', '-q', '-f', 'vmdk', scratch.file('base.vmdk'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.vmdk', '-F', 'vmdk', vmdkBacked, '1M');
    expect((await openError(vmdkBacked, true)).reason).toMatch(/format 'vmdk', which is not supported/);
  });

  it('survives a few hundred seeded random corruptions of the metadata', async () => {
    const prng = new Prng(0xc0ffee);
    const original = readFileSync(pristine);
    // Bytes worth hitting: header and extensions, the L1 table, the refcount table and block, an L2 table.
    const regions: Array<[number, number]> = [
      [0, 512],
      [l1Offset, 64],
      [refcountTableOffset, 64],
      [refcountTableOffset + 65536, 64],
      [l2Offset, 256],
      [l2Offset + 16 * 8, 32],
    ];
    let refused = 0;
    let ioErrors = 0;
    let clean = 0;
    const cases = 300;
    for (let i = 0; i < cases; i++) {
      const bytes = Buffer.from(original);
      const mutations = 1 + prng.int(4);
      for (let m = 0; m < mutations; m++) {
        const [start, length] = regions[prng.int(regions.length)]!;
        const at = start + prng.int(length);
        const kind = prng.int(3);
        if (kind === 0) bytes[at] = prng.int(256);
        else if (kind === 1) bytes[at]! ^= 1 << prng.int(8);
        else bytes.writeUInt32BE(prng.int(2 ** 32), at & ~3);
      }
      const path = scratch.file(`fuzz-${i % 8}.qcow2`);
      writeFileSync(path, bytes);
      for (const outcome of await drive(path, prng)) {
        if (!outcome.opened) refused++;
        else if (outcome.ioErrors > 0) ioErrors++;
        else clean++;
      }
    }
    expect(refused + ioErrors + clean).toBe(2 * cases);
    expect(refused).toBeGreaterThan(0);
    expect(ioErrors).toBeGreaterThan(0);
    // Fuzzing must not have created files next to the image (e.g. through a mangled backing name).
    expect(readdirSync(scratch.path).filter((name) => !/\.(qcow2|raw|vmdk|fifo)$/.test(name))).toEqual([]);
  }, 60_000);
});
