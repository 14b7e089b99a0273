// Every bare-metal program in test/guest/manifest.tsv, run as QEMU would run it (`-M virt -bios none`),
// must end with the exit status and last console line the manifest records from QEMU.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { REPO, runWkvm } from '../helpers/wkvm_cli.js';

interface ManifestEntry {
  elf: string;
  status: number;
  lastLine: string;
}

const manifest: ManifestEntry[] = readFileSync(`${REPO}test/guest/manifest.tsv`, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '' && !line.startsWith('#'))
  .map((line) => {
    const [elf, status, , lastLine] = line.split('\t');
    return { elf: elf!, status: Number(status), lastLine: lastLine ?? '-' };
  });

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

describe('bare-metal programs (test/guest/manifest.tsv)', () => {
  it('lists the programs', () => {
    expect(manifest.length).toBeGreaterThanOrEqual(10);
  });

  for (const entry of manifest) {
    it(`${entry.elf} exits ${entry.status}`, async () => {
      const result = await runWkvm(['run', '-M', 'virt', '-m', '128M', '-bios', 'none', '-kernel', entry.elf, '-nographic']);
      const lines = result.stdout.split(/\r?\n/).filter((l) => l !== '');
      if (entry.lastLine === '-') expect(lines).toEqual([]);
      else expect(lines.at(-1)).toMatch(globToRegExp(entry.lastLine));
      expect(result.status, result.stdout + result.stderr).toBe(entry.status);
    });
  }

  it('runs the FP torture program with output byte-identical to QEMU', async () => {
    const result = await runWkvm(['run', '-M', 'virt', '-m', '128M', '-bios', 'none', '-kernel', 'test/guest/fp/fp-torture.elf', '-nographic']);
    expect(result.status).toBe(0);
    const expected = readFileSync(`${REPO}test/guest/fp/expected.txt`, 'latin1');
    expect(result.stdout.length).toBe(expected.length);
    expect(result.stdout === expected).toBe(true);
  });
});
