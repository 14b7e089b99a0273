// Scratch disk images for the disk benchmark, and the host-side check of what the guest wrote to them: a
// throughput figure counts only if the image afterwards holds exactly the bytes the guest was told to write.
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchError } from './errors.js';

export class DiskImageError extends BenchError {
  constructor(readonly image: string, readonly reason: string) {
    super(`${image}: ${reason}`);
  }
}

export type ImageFormat = 'raw' | 'qcow2';

/** A blank image of `bytes` (sparse raw, or `qemu-img create -f qcow2`). */
export function createBlankImage(path: string, format: ImageFormat, bytes: number, qemuImg: string | null): void {
  if (format === 'raw') {
    const fd = openSync(path, 'w');
    try {
      ftruncateSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
    return;
  }
  if (qemuImg === null) throw new DiskImageError(path, 'qemu-img is needed to create a qcow2 image');
  runTool(path, qemuImg, ['create', '-q', '-f', 'qcow2', path, String(bytes)]);
}

/** An ext4 image of `bytes` holding the files of `directory` (mke2fs -d), for the guest to mount. */
export function createFilesImage(path: string, directory: string, bytes: number, mke2fs: string): void {
  runTool(path, mke2fs, ['-q', '-F', '-t', 'ext4', '-d', directory, path, `${Math.ceil(bytes / 1024)}k`]);
}

/**
 * The image's guest-visible contents. A qcow2 image is first checked with `qemu-img check` (leaks,
 * corruptions: a non-zero status) and converted to raw in `scratchDir`.
 */
export function readGuestView(path: string, format: ImageFormat, qemuImg: string | null, scratchDir: string): Buffer {
  if (format === 'raw') return readFileSync(path);
  if (qemuImg === null) throw new DiskImageError(path, 'qemu-img is needed to check a qcow2 image');
  runTool(path, qemuImg, ['check', '-q', '-f', 'qcow2', path]);
  const raw = join(scratchDir, 'guest-view.raw');
  runTool(path, qemuImg, ['convert', '-f', 'qcow2', '-O', 'raw', path, raw]);
  return readFileSync(raw);
}

function runTool(image: string, tool: string, args: readonly string[]): void {
  try {
    execFileSync(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (error) {
    const detail = error as { status?: number; stderr?: Buffer; stdout?: Buffer; message?: string };
    const output = `${detail.stdout?.toString() ?? ''}${detail.stderr?.toString() ?? ''}`.trim();
    throw new DiskImageError(image, `${tool} ${args[0]} failed (status ${detail.status ?? 'none'}): ${output || detail.message}`);
  }
}

/** Bytes [0, patternBytes) must all be `fill` and everything after them zero, up to `totalBytes`. */
export interface ExpectedContents {
  readonly fill: number;
  readonly patternBytes: number;
  readonly totalBytes: number;
}

/** Null when `contents` is as expected, else where and how it differs first. */
export function findContentsMismatch(contents: Uint8Array, expected: ExpectedContents): string | null {
  if (contents.length !== expected.totalBytes) return `size ${contents.length}, expected ${expected.totalBytes}`;
  for (let offset = 0; offset < contents.length; offset++) {
    const want = offset < expected.patternBytes ? expected.fill : 0;
    if (contents[offset] !== want) {
      return `byte ${offset} (0x${offset.toString(16)}) is 0x${contents[offset]!.toString(16)}, expected 0x${want.toString(16)}`;
    }
  }
  return null;
}
