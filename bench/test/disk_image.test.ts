// Scratch images for the disk benchmark and the check that a guest's writes really reached them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskImageError, createBlankImage, findContentsMismatch, readGuestView } from '../lib/disk_image.js';
import { findOnPath } from '../lib/paths.js';

const qemuImg = findOnPath('qemu-img');

describe('findContentsMismatch', () => {
  const expected = { fill: 0xa5, patternBytes: 4, totalBytes: 8 };

  it('accepts the pattern followed by zeros', () => {
    expect(findContentsMismatch(Uint8Array.of(0xa5, 0xa5, 0xa5, 0xa5, 0, 0, 0, 0), expected)).toBeNull();
  });

  it('finds the first wrong byte on either side of the pattern end, and a wrong size', () => {
    expect(findContentsMismatch(Uint8Array.of(0xa5, 0xa5, 0, 0xa5, 0, 0, 0, 0), expected)).toBe('byte 2 (0x2) is 0x0, expected 0xa5');
    expect(findContentsMismatch(Uint8Array.of(0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0, 0, 0), expected)).toBe('byte 4 (0x4) is 0xa5, expected 0x0');
    expect(findContentsMismatch(new Uint8Array(7), expected)).toBe('size 7, expected 8');
  });
});

describe('scratch images', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wkvm-disk-image-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a raw image of the asked size and reads it back', () => {
    const image = join(dir, 'd.raw');
    createBlankImage(image, 'raw', 1 << 20, null);
    expect(statSync(image).size).toBe(1 << 20);
    expect(findContentsMismatch(readGuestView(image, 'raw', null, dir), { fill: 1, patternBytes: 0, totalBytes: 1 << 20 })).toBeNull();
  });

  it('needs qemu-img for qcow2', () => {
    expect(() => createBlankImage(join(dir, 'd.qcow2'), 'qcow2', 1 << 20, null)).toThrow(DiskImageError);
  });

  it.skipIf(qemuImg === null)('reads a qcow2 image through qemu-img, written data included', () => {
    const image = join(dir, 'd.qcow2');
    createBlankImage(image, 'qcow2', 1 << 20, qemuImg);
    const pattern = join(dir, 'pattern.raw');
    writeFileSync(pattern, Buffer.concat([Buffer.alloc(65536, 0xa5), Buffer.alloc((1 << 20) - 65536)]));
    execFileSync(qemuImg!, ['convert', '-f', 'raw', '-O', 'qcow2', pattern, image]);
    expect(findContentsMismatch(readGuestView(image, 'qcow2', qemuImg, dir), { fill: 0xa5, patternBytes: 65536, totalBytes: 1 << 20 })).toBeNull();
  });

  it.skipIf(qemuImg === null)('refuses a qcow2 image that qemu-img check rejects', () => {
    const image = join(dir, 'bad.qcow2');
    writeFileSync(image, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(508)]));
    expect(() => readGuestView(image, 'qcow2', qemuImg, dir)).toThrow(/qemu-img check failed/);
  });
});
