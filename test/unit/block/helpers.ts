// Shared test helpers: the real QEMU tools (required, never silently skipped), scratch directories and a
// seeded PRNG for reproducible random workloads and fuzzing.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Throws a clear error when qemu-img/qemu-io are missing (CI installs Debian's qemu-utils). */
export function requireQemuTools(): void {
  for (const tool of ['qemu-img', 'qemu-io']) {
    const result = spawnSync(tool, ['--version'], { encoding: 'utf8' });
    if (result.error || result.status !== 0) {
      throw new Error(`${tool} is required for the qcow2 interop tests but could not be run (${result.error?.message ?? `exit ${result.status}`}); install it with: apt-get install -y qemu-utils`);
    }
  }
}

export function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

/** Runs qemu-img and returns its exit status and output instead of throwing. */
export function qemuImgStatus(...args: string[]): { status: number; output: string } {
  const result = spawnSync('qemu-img', args, { encoding: 'utf8' });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

/** qemu-img must find the qcow2 image clean and identical to the raw mirror. */
export function expectQemuAgrees(image: string, mirror: string): void {
  const check = qemuImgStatus('check', image);
  expect(check.output).toMatch(/No errors were found/);
  expect(check.status).toBe(0);
  const compare = qemuImgStatus('compare', '-f', 'qcow2', '-F', 'raw', image, mirror);
  expect(compare.output).toMatch(/Images are identical/);
  expect(compare.status).toBe(0);
}

export function qemuIo(image: string, format: 'raw' | 'qcow2', ...commands: string[]): void {
  const args = ['-f', format];
  for (const command of commands) args.push('-c', command);
  const output = execFileSync('qemu-io', [...args, image], { encoding: 'utf8' });
  if (/error|failed/i.test(output)) throw new Error(`qemu-io ${commands.join('; ')} on ${image}: ${output}`);
}

export class ScratchDir {
  readonly path = mkdtempSync(join(tmpdir(), 'wkvm-block-test-'));
  file(name: string): string {
    return join(this.path, name);
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** The mulberry32 generator: small, fast and deterministic for a given seed. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** A byte pattern that differs per offset, so misplaced data is detected. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}
