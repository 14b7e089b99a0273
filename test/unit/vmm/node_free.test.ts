// What a browser page imports must not import Node's modules: the machine model, virtio-blk over an
// in-memory disk, the KVM-style API. Walks the static import graph of the built modules (dist/, which
// `npm test` builds first); dynamic import() is allowed (Node's worker_threads and file reads load on demand).
// The browser test boots Linux with these modules; this one names the import that would break it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../../helpers/wkvm_cli.js';

const ENTRY_POINTS = [
  'dist/host/kvm/index.js',
  'dist/host/vmm/virt_machine.js',
  'dist/host/vmm/smp_runner.js',
  'dist/host/vmm/vcpu_web_worker.js',
  'dist/host/devices/virtio/blk.js',
  'dist/host/devices/virtio/rng.js',
  'dist/host/devices/virtio/console.js',
  'dist/host/block/raw.js',
  'dist/host/block/memory_file.js',
];

/** `import ... from '...'`, `export ... from '...'` and bare `import '...'` at the start of a line. */
const STATIC_IMPORT = /^\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s)?\s*['"]([^'"]+)['"]/gm;

function nodeImports(entry: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const specifier = match[1]!;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else found.push(`${relative(REPO, file)} imports ${specifier}`);
    }
  };
  visit(resolve(REPO, entry));
  return found;
}

describe('modules a browser page loads', () => {
  it.each(ENTRY_POINTS)('%s imports nothing outside the project', (entry) => {
    expect(existsSync(resolve(REPO, entry)), `${entry} is built`).toBe(true);
    expect(nodeImports(entry)).toEqual([]);
  });

  it('the check sees Node imports where they are', () => {
    expect(nodeImports('dist/host/block/disk.js').some((line) => line.includes('node:fs'))).toBe(true);
    expect(nodeImports('dist/host/vmm/vcpu_worker.js')).toContain('dist/host/vmm/vcpu_worker.js imports node:worker_threads');
  });
});
