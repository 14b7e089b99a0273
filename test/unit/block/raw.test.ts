import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskImageError, DiskIoError, openDiskImage } from '../../../host/block/disk.js';
import { pattern, ScratchDir } from './helpers.js';

describe('raw disk images', () => {
  let scratch: ScratchDir;
  beforeEach(() => {
    scratch = new ScratchDir();
  });
  afterEach(() => scratch.remove());

  it('is probed as raw and reads the file contents', async () => {
    const path = scratch.file('disk.img');
    const content = pattern(8192, 1);
    writeFileSync(path, content);
    const disk = await openDiskImage(path);
    expect(disk.format).toBe('raw');
    expect(disk.size).toBe(8192);
    const dst = new Uint8Array(1000);
    await disk.read(3000, dst);
    expect(dst).toEqual(content.subarray(3000, 4000));
    await disk.close();
  });

  it('reads and writes scattered buffers (readv/writev) as if laid end to end, over shared memory', async () => {
    const path = scratch.file('disk.img');
    const content = pattern(5000, 3); // not a multiple of 512: the last sector runs past the file's end
    writeFileSync(path, content);
    const disk = await openDiskImage(path, { format: 'raw' });
    expect(disk.size).toBe(5120);
    const shared = new Uint8Array(new SharedArrayBuffer(4096));
    const parts = [shared.subarray(100, 1100), shared.subarray(2000, 2120), shared.subarray(3000, 3000 + 1000)];
    shared.fill(0xee);
    await disk.readv!(4000, parts.slice(0, 2)); // 1120 bytes: 1000 from the file, then 120 of zeros
    expect(parts[0]).toEqual(content.subarray(4000, 5000));
    expect(parts[1]).toEqual(new Uint8Array(120));
    expect(shared[99]).toBe(0xee); // nothing outside the buffers
    parts[2]!.set(pattern(1000, 9));
    await disk.writev!(512, [parts[2]!.subarray(0, 24), parts[2]!.subarray(24)]);
    await disk.close();
    expect(readFileSync(path).subarray(512, 1512)).toEqual(Buffer.from(pattern(1000, 9)));
    expect(readFileSync(path).subarray(0, 512)).toEqual(Buffer.from(content.subarray(0, 512)));
  });

  it('refuses scattered requests past the end of the disk', async () => {
    const path = scratch.file('disk.img');
    writeFileSync(path, new Uint8Array(4096));
    const disk = await openDiskImage(path, { format: 'raw' });
    await expect(disk.readv!(4000, [new Uint8Array(64), new Uint8Array(64)])).rejects.toBeInstanceOf(DiskIoError);
    await disk.close();
  });

  it('writes through to the file at the right offset', async () => {
    const path = scratch.file('disk.img');
    writeFileSync(path, new Uint8Array(16384));
    const disk = await openDiskImage(path, { format: 'raw' });
    const data = pattern(5000, 2);
    await disk.write(7000, data);
    await disk.close();
    const file = readFileSync(path);
    expect(new Uint8Array(file.subarray(7000, 12000))).toEqual(data);
    expect(file.subarray(0, 7000).every((b) => b === 0)).toBe(true);
    expect(file.subarray(12000).every((b) => b === 0)).toBe(true);
  });

  it('rounds the size up to a sector and reads the tail past the end of file as zeros', async () => {
    const path = scratch.file('odd.img');
    writeFileSync(path, new Uint8Array(1000).fill(0x5a));
    const disk = await openDiskImage(path);
    expect(disk.size).toBe(1024);
    const dst = new Uint8Array(1024).fill(0xff);
    await disk.read(0, dst);
    expect(dst.subarray(0, 1000).every((b) => b === 0x5a)).toBe(true);
    expect(dst.subarray(1000).every((b) => b === 0)).toBe(true);
    await disk.close();
  });

  it('reads zeros where the file was truncated while open', async () => {
    const path = scratch.file('shrinks.img');
    writeFileSync(path, new Uint8Array(4096).fill(7));
    const disk = await openDiskImage(path);
    truncateSync(path, 1024);
    const dst = new Uint8Array(2048).fill(0xff);
    await disk.read(512, dst);
    expect(dst.subarray(0, 512).every((b) => b === 7)).toBe(true);
    expect(dst.subarray(512).every((b) => b === 0)).toBe(true);
    await disk.close();
  });

  it('rejects requests outside the disk with DiskIoError', async () => {
    const path = scratch.file('disk.img');
    writeFileSync(path, new Uint8Array(4096));
    const disk = await openDiskImage(path);
    await expect(disk.read(4000, new Uint8Array(200))).rejects.toBeInstanceOf(DiskIoError);
    await expect(disk.write(-1, new Uint8Array(1))).rejects.toBeInstanceOf(DiskIoError);
    await expect(disk.read(1.5, new Uint8Array(1))).rejects.toBeInstanceOf(DiskIoError);
    await disk.close();
    await expect(disk.read(0, new Uint8Array(1))).rejects.toThrow(/closed/);
  });

  it('refuses writes when read-only', async () => {
    const path = scratch.file('disk.img');
    writeFileSync(path, new Uint8Array(4096));
    const disk = await openDiskImage(path, { readOnly: true });
    expect(disk.readOnly).toBe(true);
    const error = await disk.write(0, new Uint8Array(512)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiskIoError);
    expect((error as DiskIoError).reason).toMatch(/read-only/);
    await disk.close();
    expect(readFileSync(path).every((b) => b === 0)).toBe(true);
  });

  it('writeZeroes clears a range', async () => {
    const path = scratch.file('disk.img');
    writeFileSync(path, new Uint8Array(4096).fill(9));
    const disk = await openDiskImage(path);
    await disk.writeZeroes!(1000, 2000);
    await disk.close();
    const file = readFileSync(path);
    expect(file.subarray(1000, 3000).every((b) => b === 0)).toBe(true);
    expect(file[999]).toBe(9);
    expect(file[3000]).toBe(9);
  });

  it('gives DiskImageError for a missing file and for formats it does not support', async () => {
    await expect(openDiskImage(scratch.file('missing.img'))).rejects.toBeInstanceOf(DiskImageError);
    const vmdk = scratch.file('disk.vmdk');
    writeFileSync(vmdk, Buffer.concat([Buffer.from('KDMV'), Buffer.alloc(1020)]));
    await expect(openDiskImage(vmdk)).rejects.toThrow(/vmdk.*not supported/);
    // An explicit format wins over probing, as in QEMU.
    const asRaw = await openDiskImage(vmdk, { format: 'raw' });
    expect(asRaw.format).toBe('raw');
    await asRaw.close();
  });

  it('rejects an unknown cache mode', async () => {
    const path = scratch.file('disk.img');
    writeFileSync(path, new Uint8Array(512));
    await expect(openDiskImage(path, { cache: 'directsync' as never })).rejects.toThrow(/unknown cache mode 'directsync'/);
  });
});
