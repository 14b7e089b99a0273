// MemoryBlockFile: a disk image file in memory (a browser page's fetched image), under the raw backend.
import { describe, expect, it } from 'vitest';
import { MemoryBlockFile } from '../../../host/block/memory_file.js';
import { RawDiskImage } from '../../../host/block/raw.js';

describe('MemoryBlockFile', () => {
  it('reads what it holds, and fewer bytes at the end of the file', async () => {
    const file = new MemoryBlockFile(Uint8Array.from([1, 2, 3, 4, 5]));
    expect(await file.size()).toBe(5);
    const dst = new Uint8Array(4).fill(0xee);
    expect(await file.read(3, dst)).toBe(2);
    expect([...dst]).toEqual([4, 5, 0xee, 0xee]);
    expect(await file.read(9, dst)).toBe(0);
  });

  it('writes in place without copying the caller\'s bytes, and grows past the end with a zeroed hole', async () => {
    const bytes = new Uint8Array(8);
    const file = new MemoryBlockFile(bytes);
    await file.write(2, Uint8Array.from([7, 7]));
    expect(bytes[2]).toBe(7);
    await file.write(12, Uint8Array.from([9]));
    expect(await file.size()).toBe(13);
    expect([...file.contents()]).toEqual([0, 0, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
  });

  it('reads and writes vectors in order, stopping a read at the end of the file', async () => {
    const file = new MemoryBlockFile();
    await file.writev(0, [Uint8Array.from([1, 2]), Uint8Array.from([3]), Uint8Array.from([4, 5, 6])]);
    const parts = [new Uint8Array(4), new Uint8Array(4)];
    expect(await file.readv(1, parts)).toBe(5);
    expect([...parts[0]!, ...parts[1]!]).toEqual([2, 3, 4, 5, 6, 0, 0, 0]);
  });

  it('refuses use after close and negative positions', async () => {
    const file = new MemoryBlockFile(new Uint8Array(4));
    await expect(file.read(-1, new Uint8Array(1))).rejects.toThrow(/bad position/);
    await file.close();
    await expect(file.read(0, new Uint8Array(1))).rejects.toThrow(/after close/);
  });

  it('backs a raw disk image: sector-rounded size, zeros past the end, writes that land in the bytes', async () => {
    const file = new MemoryBlockFile(new Uint8Array(1000).fill(0xa5));
    const disk = await RawDiskImage.open(file, 'memory.img', { readOnly: false, cache: 'writeback' });
    expect(disk.size).toBe(1024);
    const sector = new Uint8Array(512);
    await disk.read(512, sector);
    expect(sector[487]).toBe(0xa5);
    expect(sector[488]).toBe(0);
    await disk.writev!(0, [new Uint8Array(256).fill(1), new Uint8Array(256).fill(2)]);
    expect(file.contents()[255]).toBe(1);
    expect(file.contents()[256]).toBe(2);
    await disk.close();
  });
});
