import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskIoError, openDiskImage } from '../../../host/block/disk.js';
import { createQcow2 } from '../../../host/block/qcow2/create.js';
import { pattern, ScratchDir } from './helpers.js';

const overlayDirs = (): string[] => readdirSync(tmpdir()).filter((name) => name.startsWith('wkvm-snapshot-'));

describe('snapshot=on', () => {
  let scratch: ScratchDir;
  beforeEach(() => {
    scratch = new ScratchDir();
  });
  afterEach(() => scratch.remove());

  it.each(['raw', 'qcow2'] as const)('writes to a temporary overlay over a %s image and discards it on close', async (format) => {
    const path = scratch.file(`base.${format}`);
    if (format === 'raw') {
      writeFileSync(path, pattern(512 * 1024, 4));
    } else {
      await createQcow2(path, { size: 512 * 1024 });
      const writer = await openDiskImage(path);
      await writer.write(0, pattern(512 * 1024, 4));
      await writer.close();
    }
    const before = readFileSync(path);
    const dirsBefore = overlayDirs();

    const disk = await openDiskImage(path, { snapshot: true });
    expect(disk.format).toBe(format);
    expect(disk.readOnly).toBe(false);
    expect(disk.size).toBe(512 * 1024);
    expect(overlayDirs().length).toBe(dirsBefore.length + 1);
    const data = new Uint8Array(70_000).fill(0xd1);
    await disk.write(30_000, data);
    await disk.flush();
    const readBack = new Uint8Array(100_000);
    await disk.read(0, readBack);
    const expected = pattern(512 * 1024, 4).slice(0, 100_000);
    expected.set(data, 30_000);
    expect(Buffer.compare(readBack, expected)).toBe(0);
    await disk.close();

    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(overlayDirs()).toEqual(dirsBefore);
  });

  it('passes vectored reads and writes through to the overlay, leaving the image untouched', async () => {
    const path = scratch.file('base-v.raw');
    writeFileSync(path, pattern(256 * 1024, 9));
    const before = readFileSync(path);
    const disk = await openDiskImage(path, { snapshot: true });
    expect(disk.readv).toBeTypeOf('function');
    expect(disk.writev).toBeTypeOf('function');
    const parts = [new Uint8Array(1000).fill(0xa1), new Uint8Array(70_000).fill(0xb2)];
    await disk.writev!(65_000, parts);
    const back = [new Uint8Array(500), new Uint8Array(71_000)];
    await disk.readv!(64_500, back);
    const expected = pattern(256 * 1024, 9).slice(64_500, 64_500 + 71_500);
    expected.set(parts[0]!, 500);
    expected.set(parts[1]!, 1500);
    expect(Buffer.compare(Buffer.concat(back), expected)).toBe(0);
    await disk.close();
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
  });

  it('with readonly=on stays read-only', async () => {
    const path = scratch.file('base.raw');
    writeFileSync(path, new Uint8Array(4096));
    const disk = await openDiskImage(path, { snapshot: true, readOnly: true });
    expect(disk.readOnly).toBe(true);
    await expect(disk.write(0, new Uint8Array(512))).rejects.toBeInstanceOf(DiskIoError);
    await disk.close();
  });
});
