// The guest recipe's own files (scripts/guest/): the script parses, the kernel fragment is in the
// format build.sh reads, and the script's preflight fails with a clear message. The full build
// (about 5 minutes) is run by hand: npm run guest:build.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from './run_script.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const RECIPE = path.join(REPO, 'scripts', 'guest');
const BUILD_SH = path.join(RECIPE, 'build.sh');

describe('guest recipe', () => {
  it('build.sh is valid bash', async () => {
    const result = await runScript('bash', ['-n', BUILD_SH], { cwd: REPO });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('kernel.fragment holds only SYMBOL=value lines and comments', () => {
    const lines = readFileSync(path.join(RECIPE, 'kernel.fragment'), 'utf8').split('\n');
    const options = lines.map((line) => line.replace(/#.*/, '').trim()).filter((line) => line !== '');
    const malformed = options.filter((line) => !/^[A-Z0-9_]+=(y|n|-?\d+|"[^"]*")$/.test(line));
    expect(malformed).toEqual([]);
    const symbols = options.map((line) => line.split('=')[0]);
    expect(new Set(symbols).size, 'an option is set twice').toBe(symbols.length);
    // What the default guest cannot boot without on the virt machine.
    for (const needed of ['SERIAL_8250_CONSOLE=y', 'BLK_DEV_INITRD=y', 'RD_GZIP=y', 'RISCV_SBI=y', 'VIRTIO_MMIO=y']) {
      expect(options).toContain(needed);
    }
  });

  it('the guest /init is a shell script that reads guest.mode', () => {
    const init = readFileSync(path.join(RECIPE, 'init'), 'utf8');
    expect(init.startsWith('#!/bin/sh\n')).toBe(true);
    expect(init).toContain('guest.mode=*');
    expect(init).toContain('echo GUEST-READY');
  });

  it('build.sh stops with a clear error when the work folder cannot be written', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'wkvm-guest-out-'));
    try {
      const result = await runScript('bash', [BUILD_SH, out], {
        cwd: REPO,
        env: { WKVM_GUEST_WORK: '/proc/wkvm-guest-work' },
      });
      expect(result.stderr).toContain('cannot write to the work folder /proc/wkvm-guest-work');
      expect(result.stderr).toContain('WKVM_GUEST_WORK');
      expect(result.status).toBe(1);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
